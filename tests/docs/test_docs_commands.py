"""The migration docs and the README show only real commands and real files.

- Every line of a ``bash``/``sh``/``console`` code block in ``migration_docs/*.md`` and
  ``README.md`` is a command this kit runs: ``python -m X`` (the module exists and
  ``python -m X <the shown arguments> --help`` exits 0, so the shown flags parse),
  ``python -m pytest <paths>`` / ``python -m pip install -r <file>`` (the paths exist),
  or ``curl`` against a loopback URL, or one of the two Debian programs a fleet runs
  (``redis-server``, ``haproxy``: ``.ci/run`` installs both). Leading ``GENIE_*=value``
  assignments are allowed; a line ending in ``\\`` continues on the next.
- Every file a doc references exists: relative Markdown links, and inline-code paths
  whose first segment is a top-level entry of the project (``fastapi_app/server.py``,
  ``tests/parity``, ``config.py``...).
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from config import Settings

ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted((ROOT / "migration_docs").glob("*.md"))
FILES = [*DOCS, ROOT / "README.md"]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
SHELL_LANGS = {"bash", "sh", "shell", "console"}
ENV_ASSIGN = re.compile(r"^[A-Z_][A-Z0-9_]*=")
INLINE = re.compile(r"(?<!`)`([^`\s<>*]+)`(?!`)")
LINK = re.compile(r"\]\(([^)\s]+)\)")
LOOPBACK = re.compile(r"^'?https?://(127\.0\.0\.1|localhost)(:\d+)?/")
# Debian's programs (.ci/run installs them); Debian puts haproxy in /usr/sbin.
SYSTEM_PROGRAMS = ("redis-server", "haproxy")


def commands(path: Path) -> list[str]:
    out = []
    for lang, body in FENCE.findall(path.read_text(encoding="utf-8")):
        if lang not in SHELL_LANGS:
            continue
        for line in body.replace("\\\n", " ").splitlines():
            line = line.strip().removeprefix("$ ")
            if line and not line.startswith("#"):
                out += [part.strip() for part in line.split("&&")]
    return out


ALL_COMMANDS = [(p.name, c) for p in FILES for c in commands(p)]


@functools.cache
def help_exit(argv: tuple[str, ...]) -> tuple[int, str]:
    result = subprocess.run(
        [sys.executable, "-m", *argv, "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return result.returncode, result.stderr[-1500:]


def _check_python(args: list[str]) -> None:
    assert args[:1] == ["-m"], f"only `python -m <module>` commands: {args}"
    module, rest = args[1], args[2:]
    if module == "pip":
        assert rest[:1] == ["install"], rest
        for i, arg in enumerate(rest):
            if arg == "-r":
                assert (ROOT / rest[i + 1]).is_file(), rest[i + 1]
        return
    assert importlib.util.find_spec(module) is not None, f"no module {module}"
    if module == "pytest":
        for arg in rest:
            if not arg.startswith("-"):
                assert (ROOT / arg.split("::")[0]).exists(), f"no test path {arg}"
        return
    code, err = help_exit((module,))
    assert code == 0, f"python -m {module} --help exited {code}: {err}"
    parse_shown(module, rest)


def parse_shown(module: str, rest: list[str]) -> None:
    """Parse the shown arguments with the module's own parser (``--help`` alone would
    exit 0 before argparse sees an unknown flag). Entry points without ``parse_args``
    take ``config.Settings`` flags (``python -m fastapi_app``)."""
    entry = importlib.import_module(f"{module}.__main__" if is_package(module) else module)
    try:
        parsed = entry.parse_args(rest) if hasattr(entry, "parse_args") else (None, rest)
        if isinstance(parsed, tuple) and parsed[1]:  # flags left for config.Settings
            Settings(_env_file=None, _cli_parse_args=parsed[1])
    except (SystemExit, ValidationError) as exc:
        pytest.fail(f"python -m {module} {' '.join(rest)}: arguments refused ({exc})")


def is_package(module: str) -> bool:
    spec = importlib.util.find_spec(module)
    return spec is not None and spec.submodule_search_locations is not None


def check_command(command: str) -> None:
    words = shlex.split(command, comments=True)
    while words and ENV_ASSIGN.match(words[0]):
        words = words[1:]
    assert words, f"empty command: {command!r}"
    program, args = words[0], words[1:]
    if program == "python":
        _check_python(args)
    elif program in SYSTEM_PROGRAMS:
        found = shutil.which(program) or shutil.which(program, path="/usr/sbin:/sbin")
        assert found, f"{program} is not installed: {command}"
    elif program == "curl":
        urls = [a for a in args if "://" in a]
        assert urls and all(LOOPBACK.match(u) for u in urls), f"curl off loopback: {command}"
    else:
        pytest.fail(f"not a command of this kit: {command!r}")


@pytest.mark.parametrize(("doc", "command"), ALL_COMMANDS)
def test_every_shown_command_is_a_real_cli(doc: str, command: str) -> None:
    check_command(command)


def test_the_docs_show_commands() -> None:
    """The extraction itself works (a broken regex would make the test above vacuous)."""
    per_doc = {doc for doc, _ in ALL_COMMANDS}
    assert {"README.md", "guide.md", "rollout.md"} <= per_doc
    assert any(c.startswith("python -m bench.compare") for _, c in ALL_COMMANDS)


def referenced_paths(path: Path) -> list[tuple[str, Path]]:
    text = FENCE.sub("", path.read_text(encoding="utf-8"))
    top = {entry.name for entry in ROOT.iterdir()}
    out = []
    for link in LINK.findall(text):
        if "://" not in link and not link.startswith(("#", "mailto:")):
            out.append((link, path.parent / link.split("#")[0]))
    for token in INLINE.findall(text):
        first = token.split("/")[0]
        if ("/" in token and first in top) or token in top:
            out.append((token, ROOT / token.split("::")[0]))
    return out


@pytest.mark.parametrize("doc", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_referenced_file_exists(doc: Path) -> None:
    missing = [shown for shown, target in referenced_paths(doc) if not target.exists()]
    assert not missing, f"{doc.name} references missing files: {missing}"


def test_the_checks_can_fail() -> None:
    with pytest.raises(AssertionError):
        check_command("python -m no_such_module_here --flag")
    with pytest.raises(pytest.fail.Exception):
        check_command("python -m bench.compare --no-such-flag")
    with pytest.raises(pytest.fail.Exception):
        check_command("python -m fastapi_app --stage nonsense")
    with pytest.raises(pytest.fail.Exception):
        check_command("rm -rf build")
    with pytest.raises(AssertionError):
        check_command("curl https://example.com/")
