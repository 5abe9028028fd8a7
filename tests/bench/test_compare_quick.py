"""``python -m bench.compare --quick`` produces a well-formed report: files, tables with
the four servers, charts, JSON that parses. Never the numbers (speed goes to bench/)."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.bench.runs import ROOT, run_bench, running_ports

SERVERS = ("flask-threading", "flask-gevent", "fastapi-sio", "fastapi-ws")
SECTIONS = ("Targets", "Latency", "Capacity", "Connections", "Audio endpoint",
            "Realistic mix")  # fmt: skip
CHARTS = ("latency_cdf.png", "throughput_vs_clients.png", "memory_vs_clients.png")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("compare") / "tmp"
    result = run_bench("bench.compare", "--quick", "--out", str(out), timeout=400)
    return out, result.stdout


def _tables(markdown: str) -> list[list[str]]:
    """Each Markdown table as its lines."""
    tables, current = [], []
    for line in markdown.splitlines():
        if line.startswith("|"):
            current.append(line)
        elif current:
            tables.append(current)
            current = []
    return tables + ([current] if current else [])


@pytest.mark.timeout(420)
def test_prints_its_output_folder(quick_run: tuple[Path, str]) -> None:
    out, stdout = quick_run
    assert f"output folder: {out}" in stdout
    assert f"report: {out / 'report.md'}" in stdout


@pytest.mark.timeout(420)
def test_report_has_a_side_by_side_table_per_workload(quick_run: tuple[Path, str]) -> None:
    out, _ = quick_run
    report = (out / "report.md").read_text(encoding="utf-8")
    for section in SECTIONS:
        assert f"## {section}" in report, section
    workload_tables = [t for t in _tables(report) if t[0].startswith("| metric |")]
    assert len(workload_tables) == 5
    for table in workload_tables:
        header = [cell.strip() for cell in table[0].strip("|").split("|")]
        assert header[1:5] == list(SERVERS)
        assert any("/" in cell for cell in header[5:]), "ratio columns"
        assert re.fullmatch(r"\|(---\|)+", table[1])
        assert len(table) > 2, "rows"
        assert all(row.count("|") == table[0].count("|") for row in table)


@pytest.mark.timeout(420)
def test_targets_are_judged(quick_run: tuple[Path, str]) -> None:
    out, _ = quick_run
    report = (out / "report.md").read_text(encoding="utf-8")
    statuses = re.findall(r"\| \*\*(met|missed|inconclusive|n/a)\*\* \|", report)
    assert len(statuses) == 8


@pytest.mark.timeout(420)
def test_raw_json_and_machine_info(quick_run: tuple[Path, str]) -> None:
    out, _ = quick_run
    data = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert set(data["results"]) == {"latency", "capacity", "connections", "audio", "mix"}
    for workload in ("capacity", "connections", "audio", "mix"):
        assert set(data["results"][workload]) == set(SERVERS), workload
    for per_size in data["results"]["latency"].values():
        assert set(per_size) == set(SERVERS)
    machine = json.loads((out / "machine.json").read_text(encoding="utf-8"))
    assert machine["cores"] >= 1 and machine["python"] and machine["packages"]["fastapi"]
    assert "share" in machine["shared"]


@pytest.mark.timeout(420)
def test_charts_are_png(quick_run: tuple[Path, str]) -> None:
    out, _ = quick_run
    for name in CHARTS:
        assert (out / name).read_bytes()[:8] == PNG_MAGIC, name


@pytest.mark.timeout(120)
def test_ctrl_c_stops_every_server_it_started(tmp_path: Path) -> None:
    out = tmp_path / "interrupted"
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.compare", "--quick", "--out", str(out)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(600):  # until its first server is up (its log file exists)
            if list(out.glob("server-*.log")) or proc.poll() is not None:
                break
            time.sleep(0.1)
        time.sleep(2.0)
        ports = {p.stem.removeprefix("server-") for p in out.glob("server-*.log")}
        assert ports, "no server was started"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert running_ports(ports) == set()
    assert not (out / "report.md").exists()
