"""``python -m bench.tts --provider openai --quick`` writes a well-formed report: both
sections with figures in every cell, JSON that parses, no server left running. Never the
speed itself (that is what the bench is for); plus the fake speech server as a process."""

from __future__ import annotations

import json
import math
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from bench.common import free_port
from tests.bench.runs import ROOT, run_bench, running_ports

PATHS = ("provider", "provider_sdk", "engine", "kit")
SETUPS = ("one", "least_busy", "round_robin")
SECTIONS = ("## 1. First byte: the kit's added latency", "## 2. One instance vs two",
            "### burst:", "### staggered:", "## Setup")  # fmt: skip
NUMBER = re.compile(r"[+-]?\d+(\.\d+)?x?")


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("tts-openai") / "report.md"
    result = run_bench(
        "bench.tts", "--provider", "openai", "--quick", "--out", str(out), timeout=240
    )
    return out, result.stdout


def _tables(markdown: str) -> list[list[list[str]]]:
    """Each Markdown table as rows of cells, header first, separator dropped."""
    tables: list[list[list[str]]] = []
    current: list[list[str]] = []
    for line in [*markdown.splitlines(), ""]:
        if line.startswith("|"):
            if not re.fullmatch(r"\|(---\|)+", line):
                current.append([cell.strip() for cell in line.strip("|").split("|")])
        elif current:
            tables.append(current)
            current = []
    return tables


def _is_number(cell: str) -> bool:
    return NUMBER.fullmatch(cell) is not None and not math.isnan(float(cell.rstrip("x")))


@pytest.mark.timeout(300)
def test_prints_figures_and_where_it_wrote(quick_run: tuple[Path, str]) -> None:
    out, stdout = quick_run
    assert f"report: {out} and {out.with_suffix('.json')}" in stdout
    assert "Added by the kit: p50" in stdout
    assert "one / least_busy: first byte p50" in stdout


@pytest.mark.timeout(300)
def test_report_has_both_sections_with_numbers(quick_run: tuple[Path, str]) -> None:
    out, _ = quick_run
    report = out.read_text(encoding="utf-8")
    for section in SECTIONS:
        assert section in report, section
    assert re.search(r"\*\*Added by the kit: p50 [+-]\d+\.\d+ ms, p99 [+-]\d+\.\d+ ms", report)
    assert re.search(r"target p50 <= 2 ms: (met|missed)\)", report)
    tables = _tables(report)
    paths, differences = tables[0], tables[1]
    assert [row[0] for row in paths[1:]] == list(PATHS)
    assert all(_is_number(cell) for row in paths[1:] for cell in row[2:]), paths
    assert len(differences) == 6
    assert all(_is_number(cell) for row in differences[1:] for cell in row[2:]), differences
    capacity = tables[2:]
    assert len(capacity) == 4  # per workload: setups, then ratios
    for setups, ratios in (capacity[0:2], capacity[2:4]):
        assert [row[0] for row in setups[1:]] == list(SETUPS)
        assert all(_is_number(cell) for row in setups[1:] for cell in row[1:6]), setups
        assert [row[0] for row in ratios[1:]] == ["one / least_busy", "one / round_robin"]
        assert all(_is_number(cell) for row in ratios[1:] for cell in row[1:]), ratios


@pytest.mark.timeout(300)
def test_json_twin(quick_run: tuple[Path, str]) -> None:
    out, _ = quick_run
    data = json.loads(out.with_suffix(".json").read_text(encoding="utf-8"))
    assert "--provider openai" in data["command"]
    latency = data["latency"]
    assert set(latency["paths"]) == set(PATHS)
    for stats in latency["paths"].values():
        assert stats["n"] == data["setup"]["runs"]
        assert 0 < stats["p50"] <= stats["p99"] < 10_000
    assert latency["verdict"] in ("met", "missed")
    assert math.isfinite(latency["added_p50_ms"]) and math.isfinite(latency["added_p99_ms"])
    rounds = data["setup"]["rounds"]
    for workload in ("burst", "staggered"):
        setups = data["capacity"][workload]["setups"]
        assert set(setups) == set(SETUPS)
        # Every request was answered, by the instances the setup has.
        assert setups["one"]["requests_per_instance"] == [10 * rounds]
        for two in ("least_busy", "round_robin"):
            shares = setups[two]["requests_per_instance"]
            assert len(shares) == 2 and sum(shares) == 10 * rounds
            ratios: dict[str, Any] = data["capacity"][workload]["ratios_one_over_two"][two]
            assert all(math.isfinite(r) and r > 0 for r in ratios.values())


@pytest.mark.timeout(300)
def test_stops_every_server_it_started(quick_run: tuple[Path, str]) -> None:
    out, _ = quick_run
    setup = json.loads(out.with_suffix(".json").read_text(encoding="utf-8"))["setup"]
    commands = [setup["kit_command"], setup["latency_fake_command"]]
    commands += setup["capacity_fake_commands"]
    ports = {re.search(r"--port (\d+)", command)[1] for command in commands}  # type: ignore[index]
    assert len(ports) == 4
    assert running_ports(ports) == set()


@pytest.mark.timeout(60)
def test_fake_speech_server_runs_as_its_own_process() -> None:
    port = free_port()
    argv = [sys.executable, "-m", "tests.fakes.openai_speech_server", "--port", str(port),
            "--api-key", "k", "--slots", "1", "--first-byte-delay", "0"]  # fmt: skip
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip().endswith(f"http://127.0.0.1:{port}/v1")
        body = json.dumps({"model": "m", "voice": "af_bella", "input": "Hello there."}).encode()
        url = f"http://127.0.0.1:{port}/v1/audio/speech"
        request = urllib.request.Request(url, body, {"Authorization": "Bearer k"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.headers["Content-Type"] == "audio/mpeg"
            assert len(response.read()) > 1000
        wrong = urllib.request.Request(url, body, {"Authorization": "Bearer nope"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(wrong, timeout=10)
        assert refused.value.code == 401
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
