"""``python -m bench.robustness``: flags, the report it writes, skipped and failed parts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.common import ROOT
from bench.robustness import __main__ as runner
from bench.robustness.report import Section, count_of, render


def test_the_documented_command_lines_parse() -> None:
    flags = "--quick --parts http,parsers --http-cases 5 --frames 100 --parser-seconds 2"
    args = runner.parse_args([*flags.split(), "--out", "x.md"])
    assert args.parts == ["http", "parsers"] and args.out == Path("x.md")
    assert runner.options("http", args) == {"scale": 5}
    assert runner.options("parsers", args)["seconds"] == 2
    targets = runner.parse_args(["--parser-targets", "sentences,push_query"])
    assert runner.options("parsers", targets)["targets"] == ["sentences", "push_query"]
    full = runner.parse_args([])
    assert full.parts == list(runner.PARTS)
    assert runner.options("http", full) == {"scale": 200}
    assert runner.options("frames", full) == {"scale": 20_000}
    assert runner.options("parsers", full) == {"seconds": 60}
    for bad in (["--parts", "http,teleport"], ["--parser-targets", "json"]):
        with pytest.raises(SystemExit):
            runner.parse_args(bad)


def test_quick_parsers_write_the_report(tmp_path: Path) -> None:
    out = tmp_path / "robustness.md"
    flags = "--quick --parts parsers --parser-seconds 1 --parser-targets push_query"
    argv = ["-m", "bench.robustness", *flags.split(), "--out", str(out)]
    done = subprocess.run([sys.executable, *argv], cwd=ROOT, capture_output=True, text=True,
                          timeout=180)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "[robustness] parsers:" in done.stdout
    markdown = out.read_text(encoding="utf-8")
    assert "Command: `python -m bench.robustness --quick --parts parsers" in markdown
    assert "## Parsers: coverage-guided fuzzing (atheris)" in markdown
    assert "| push_query | `wire.legacy.parse_push_question` |" in markdown
    assert "## Summary" in markdown and "| parsers |" in markdown
    data = json.loads(out.with_suffix(".json").read_text(encoding="utf-8"))
    section = data["parts"]["parsers"]
    assert section["passed"] and section["count"][1] == "executions" and section["count"][0] > 0
    assert data["versions"]["atheris"] == "3.0.0"


def test_a_part_not_written_yet_is_skipped_and_a_failing_part_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A part not written yet, a module without run() and a run() that raises.
    nowhere = runner.Part("bench.robustness.nowhere", None, "scale", None, None)
    no_run = runner.Part("tests.robustness.broken_parser", None, "scale", None, None)
    monkeypatch.setitem(runner.PARTS, "floods", nowhere)
    monkeypatch.setitem(runner.PARTS, "http", no_run)
    # parsers.run(targets=5): its ThreadPoolExecutor.map raises TypeError.
    raising = runner.Part("bench.robustness.parsers", "frames", "targets", None, None)
    monkeypatch.setitem(runner.PARTS, "frames", raising)
    out = tmp_path / "r.md"
    argv = ["--parts", "floods,http,frames", "--frames", "5", "--out", str(out)]
    assert runner.main(argv) == 1
    markdown = out.read_text(encoding="utf-8")
    assert "- floods: skipped (bench.robustness.nowhere not found)" in markdown
    assert "- http: skipped (tests.robustness.broken_parser has no run() yet)" in markdown
    assert (
        "- frames raised TypeError" in markdown and "| frames | 1 rows | 1 | **no** |" in markdown
    )


def test_the_report_counts_nested_figures_and_keeps_failure_details() -> None:
    section = Section("HTTP", ["stage", "operation"], rows=[["full", "GET /a|b"]])
    section.failures.append("full GET /a: 500\ncurl -X GET 'http://x/a'")
    section.figures.update(mvp={"cases": 3}, full={"cases": 4})
    assert count_of(section) == (7, "cases")
    assert count_of(Section("P", [], figures={"executions": 9})) == (9, "executions")
    lines = render({"http": section}, {}, "python -m bench.robustness")
    assert "| full | GET /a\\|b |" in lines
    assert "- full GET /a: 500" in lines and "  curl -X GET 'http://x/a'" in lines
    assert "| http | 7 cases | 1 | **no** |" in lines
