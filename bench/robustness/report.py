"""The one shape every robustness part returns, and the report that joins them."""

from __future__ import annotations

import contextlib
import json
import platform
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.common import command_line, machine, md_table, write_report


@dataclass
class Section:
    """One part's result: a table (one row per endpoint or target) and what it found.

    ``failures`` lists what broke, in words a user can act on (empty = passed);
    ``figures`` holds the numbers the report and JSON keep (cases, frames, RSS ...).
    """

    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.failures


# --- the report of ``python -m bench.robustness`` ---------------------------------------

TITLE = "Robustness: generated, malformed and hostile input"
# What a part counts, by the name it gives in its figures (top level or per endpoint).
COUNT_KEYS = ("cases", "frames", "executions", "connections_tried")
# Whose versions decide what the parts meet and how they generate input.
PACKAGES = (
    *("fastapi", "starlette", "uvicorn", "websockets", "flask", "flask-socketio"),
    *("python-socketio", "python-engineio", "schemathesis", "hypothesis", "atheris"),
)


def count_of(section: Section) -> tuple[int, str]:
    """How many inputs ``section`` sent, and of what: a top-level figure, else the sum
    of that figure over per-endpoint figures; else its rows."""
    for key in COUNT_KEYS:
        if isinstance(section.figures.get(key), int):
            return section.figures[key], key
    for key in COUNT_KEYS:
        nested = [v[key] for v in section.figures.values() if isinstance(v, dict) and key in v]
        if nested:
            return sum(nested), key
    return len(section.rows), "rows"


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[name] = metadata.version(name)
    return found


def _cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _failure(text: str) -> list[str]:
    """A bullet: the first line, then any detail (a curl command, a traceback) as code."""
    first, *rest = text.splitlines() or [""]
    lines = [f"- {first}"]
    if rest:
        lines += ["", "  ```text", *(f"  {line}" for line in rest), "  ```"]
    return lines


def section_markdown(section: Section) -> list[str]:
    lines = [f"## {section.title}", ""]
    lines += md_table(section.columns, [[_cell(c) for c in row] for row in section.rows])
    lines += ["", f"**Failures: {len(section.failures)}**"]
    if section.failures:
        lines.append("")
    for failure in section.failures:
        lines += _failure(failure)
    if section.notes:
        lines += ["", "Notes:", "", *(f"- {note}" for note in section.notes)]
    return [*lines, ""]


def write_part(name: str, section: Section) -> Path:
    """A part run alone (``python -m bench.robustness.<name>``): its section as
    ``bench/reports/robustness-<name>-<stamp>.md`` and ``.json``; the .md path."""
    data = {"rows": section.rows, "failures": section.failures, "figures": section.figures}
    return write_report(f"robustness-{name}", section.title, section_markdown(section)[2:], data)


def summary_rows(parts: dict[str, Section]) -> list[list[str]]:
    rows = []
    for name, section in parts.items():
        count, unit = count_of(section)
        passed = "yes" if section.passed else "**no**"
        rows.append([name, f"{count:,} {unit}", str(len(section.failures)), passed])
    return rows


def render(parts: dict[str, Section], skipped: dict[str, str], command: str) -> list[str]:
    info, stamp = machine(), datetime.now(UTC).isoformat(timespec="seconds")
    versions_line = ", ".join(f"{k} {v}" for k, v in versions().items())
    lines = [f"# {TITLE}", "",
             f"{stamp} · {info['cpu']} · {info['cores']} cores · {info['platform']}", "",
             f"Command: `{command}`", "", f"Versions: {versions_line}", ""]  # fmt: skip
    for section in parts.values():
        lines += section_markdown(section)
    lines += ["## Summary", ""]
    lines += md_table(["part", "cases / frames / execs", "failures", "passed"], summary_rows(parts))
    if skipped:
        lines += ["", *(f"- {name}: skipped ({why})" for name, why in skipped.items())]
    return [*lines, ""]


def write(
    parts: dict[str, Section], out: Path, skipped: dict[str, str] | None = None
) -> tuple[Path, Path]:
    """``out`` (Markdown) and the same name with ``.json``; both paths."""
    skipped = skipped or {}
    command = command_line()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(render(parts, skipped, command)), encoding="utf-8")
    data = {
        "title": TITLE,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "command": command,
        "versions": versions(),
        "parts": {
            name: {**asdict(section), "passed": section.passed, "count": count_of(section)}
            for name, section in parts.items()
        },
        "skipped": skipped,
    }
    json_path = out.with_suffix(".json")
    json_path.write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")
    return out, json_path
