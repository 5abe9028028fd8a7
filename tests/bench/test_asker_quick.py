"""``python -m bench.asker --quick`` produces a well-formed report: its sections, a row
per target, the workload's event counts, finite figures, targets judged, JSON that
parses. Never how fast anything was (speed goes to bench/)."""

from __future__ import annotations

import json
import math
import re
from typing import Any

import pytest

from tests.bench.runs import run_bench

TARGETS = ("flask-gevent", "fastapi-sio", "fastapi-ws")
SECTIONS = ("Targets", "Latency and CPU", "Ratios vs flask-gevent", "Per run", "Frames by event")
CLIENTS, PUSHES = 50, 8  # what --quick runs
# Per job: 5 count events to every client; the asker's queued + 2 audio_update on /ws,
# 2 audio_update to every client on Socket.IO.
EMITTED = {
    "flask-gevent": 7 * CLIENTS * PUSHES,
    "fastapi-sio": 7 * CLIENTS * PUSHES,
    "fastapi-ws": 5 * CLIENTS * PUSHES + 3 * PUSHES,
}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, Any], str]:
    out = tmp_path_factory.mktemp("asker") / "asker.md"
    result = run_bench("bench.asker", "--quick", "--out", str(out), timeout=240)
    data = json.loads(out.with_suffix(".json").read_text(encoding="utf-8"))
    return out.read_text(encoding="utf-8"), data, result.stdout


def _table_after(markdown: str, heading: str) -> list[list[str]]:
    """The first table under ``## heading``, as rows of cells (header first)."""
    section = markdown.split(f"## {heading}\n", 1)[1]
    lines = section.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    assert len(rows) > 2, heading
    assert all(len(row) == len(rows[0]) for row in rows), heading
    return [rows[0], *rows[2:]]  # without the |---| line


@pytest.mark.timeout(300)
def test_report_has_its_sections(quick_run: tuple[str, dict[str, Any], str]) -> None:
    report, _, stdout = quick_run
    assert report.startswith("# The asker hears first")
    for section in SECTIONS:
        assert f"## {section}\n" in report, section
    assert "report: " in stdout


@pytest.mark.timeout(300)
def test_a_row_per_target_with_finite_figures(
    quick_run: tuple[str, dict[str, Any], str],
) -> None:
    report, _, _ = quick_run
    header, *rows = _table_after(report, "Latency and CPU")
    assert [row[1] for row in rows] == list(TARGETS)
    col = {name: i for i, name in enumerate(header)}
    for row in rows:
        assert row[0] == str(CLIENTS)
        for name in ("job p50 ms", "job p99 ms", "broadcast p50 ms", "broadcast p99 ms",
                     "CPU us / delivered frame", "CPU us / emitted event"):  # fmt: skip
            value = float(row[col[name]])
            assert math.isfinite(value) and value > 0, (row[1], name)
        emitted = int(row[col["events emitted"]].replace(",", ""))
        delivered = int(row[col["frames delivered"]].replace(",", ""))
        assert emitted == EMITTED[row[1]], row[1]
        assert 0 < delivered <= emitted, row[1]


@pytest.mark.timeout(300)
def test_ratios_against_gevent(quick_run: tuple[str, dict[str, Any], str]) -> None:
    report, _, _ = quick_run
    header, *rows = _table_after(report, "Ratios vs flask-gevent")
    assert header[:2] == ["clients", "run"]
    assert "Socket.IO job p50 / gevent's" in header
    assert "/ws broadcast p50 / gevent's" in header
    assert len(rows) == 1  # one client count, one run
    for cell in rows[0][2:]:
        assert re.fullmatch(r"\d+\.\d\dx", cell), cell


@pytest.mark.timeout(300)
def test_targets_are_listed(quick_run: tuple[str, dict[str, Any], str]) -> None:
    report, data, _ = quick_run
    statuses = re.findall(r"\| \*\*(met|missed|n/a)\*\* \|", report)
    assert len(statuses) == 7
    # --quick measures 50 clients only: the 200- and 1,000-client targets cannot be judged.
    assert set(statuses) == {"n/a"}
    assert [v["status"] for v in data["targets"]] == statuses


@pytest.mark.timeout(300)
def test_json_has_every_cell(quick_run: tuple[str, dict[str, Any], str]) -> None:
    _, data, _ = quick_run
    assert data["settings"]["quick"] is True
    assert data["settings"]["clients"] == [CLIENTS] and data["settings"]["pushes"] == PUSHES
    assert data["machine"]["cores"] >= 1
    cells = data["cells"]
    assert sorted(c["target"] for c in cells) == sorted(TARGETS)
    for cell in cells:
        assert "error" not in cell, cell.get("error")
        assert cell["events_emitted"] == sum(cell["events_emitted_by_name"].values())
        assert cell["frames_delivered"] == sum(cell["frames_delivered_by_name"].values())
        assert cell["job_audio_ms"]["n"] == PUSHES
        # One sample per done_update received: fewer if a server conflates counts.
        assert 0 < cell["broadcast_ms"]["n"] <= CLIENTS * PUSHES
        assert 0 <= cell["other_cpu_share"] <= 1 and 0 <= cell["steal_share"] <= 1
    assert set(data["ratios"][str(CLIENTS)]["1"]) >= {"sio_job_ratio", "ws_broadcast_ratio"}
