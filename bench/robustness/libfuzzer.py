"""One atheris target in a subprocess, and what its libFuzzer output says.

libFuzzer prints ``cov:`` (coverage edges) and ``ft:`` (features) on every progress line,
``stat::number_of_executed_units`` at the end (``-print_final_stats=1``), ``Slowest
unit: N s`` for an input slower than ``-report_slow_units``, and on a crash the Python
traceback, a ``SUMMARY:`` line and ``Test unit written to PATH``.

Timeouts: atheris checks its ``-timeout`` with a SIGALRM ticking every timeout/2 + 1
seconds, and a tick that lands while a crashing target exits kills the process with no
report (seen with ``-timeout=10``: 1 run in 4 died of SIGALRM and lost its input). So the
timeout is set past the whole run; a slow input is reported by ``-report_slow_units``
(fuzzing goes on) and a hang by the subprocess outliving its budget.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import ROOT, python

MODULE = "bench.robustness.parsers"
SLOW_INPUT = 5  # seconds: an input this slow is a finding (super-linear work)
GRACE = 60.0  # seconds past the fuzzing time before the subprocess counts as hung


@dataclass
class Finding:
    kind: str  # libFuzzer's summary ("fuzz target exited", ...) or "slow input (N s)"
    error: str  # the Python exception ("ContractError: ..."), when there is one
    input_path: str
    input_preview: str
    traceback: str

    def reproduce(self, target: str) -> str:
        return f"python -m {MODULE} {target} {self.input_path}"


@dataclass
class FuzzRun:
    target: str
    executions: int
    coverage: int
    features: int
    seconds: float
    exit_code: int
    findings: list[Finding] = field(default_factory=list)

    @property
    def crashes(self) -> int:
        return sum(not f.kind.startswith("slow") for f in self.findings)

    @property
    def slow_inputs(self) -> int:
        return len(self.findings) - self.crashes


def _last_int(pattern: str, text: str) -> int:
    found = re.findall(pattern, text)
    return int(found[-1]) if found else 0


def _saved(path: str) -> str:
    return repr(Path(path).read_bytes()[:300]) if path and Path(path).is_file() else ""


def _crash(output: str, exit_code: int) -> Finding:
    tb = re.search(r"=== Uncaught Python exception: ===\n(.*?)\n\n", output, re.S)
    traceback = tb.group(1) if tb else ""
    summary = re.search(r"SUMMARY: libFuzzer: (.+)", output)
    written = re.findall(r"Test unit written to (\S+)", output)
    path = next((p for p in reversed(written) if "slow-unit-" not in p), "")
    return Finding(
        kind=summary.group(1).strip() if summary else f"the fuzzer stopped (exit {exit_code})",
        error=traceback.splitlines()[0] if traceback else "",
        input_path=path,
        input_preview=_saved(path),
        traceback=traceback,
    )


def _slowest(output: str) -> Finding | None:
    found = re.findall(r"Slowest unit: (\d+) s:.*?Test unit written to (\S+)", output, re.S)
    if not found:
        return None
    seconds, path = found[-1]
    return Finding(f"slow input ({seconds} s)", "", path, _saved(path), "")


def parse_output(target: str, output: str, exit_code: int, seconds: float) -> FuzzRun:
    run = FuzzRun(
        target=target,
        executions=_last_int(r"stat::number_of_executed_units:\s*(\d+)", output),
        coverage=_last_int(r"\bcov: (\d+)", output),
        features=_last_int(r"\bft: (\d+)", output),
        seconds=seconds,
        exit_code=exit_code,
    )
    slowest = _slowest(output)
    run.findings = [slowest] if slowest else []
    if exit_code != 0:
        run.findings.append(_crash(output, exit_code))
    return run


def fuzz(
    target: str, *, seconds: float | None, runs: int | None, artifacts: Path
) -> tuple[FuzzRun, str]:
    """Fuzz ``target`` for ``seconds`` or ``runs`` inputs; the run and libFuzzer's output."""
    artifacts.mkdir(parents=True, exist_ok=True)
    limit = [f"--seconds={seconds}"] if seconds is not None else [f"--runs={runs}"]
    budget = (seconds or 120.0) + GRACE
    with tempfile.TemporaryDirectory(prefix=f"fuzz-{target.replace(':', '-')}-") as work:
        argv = [python(), "-m", MODULE, target, *limit, f"--workdir={work}",
                f"-artifact_prefix={artifacts}/parsers-{target.replace(':', '-')}-",
                f"-timeout={round(2 * budget) + 300}", f"-report_slow_units={SLOW_INPUT}",
                "-print_final_stats=1"]  # fmt: skip
        if runs is not None:  # a safety net: a run count never fuzzes for ever
            argv.append(f"-max_total_time={round(budget - GRACE)}")
        started = time.perf_counter()
        try:
            done = subprocess.run(argv, cwd=ROOT, capture_output=True, timeout=budget)
            output = (done.stdout + done.stderr).decode("utf-8", "replace")
            exit_code = done.returncode
        except subprocess.TimeoutExpired as exc:
            output = ((exc.stdout or b"") + (exc.stderr or b"")).decode("utf-8", "replace")
            output += f"\nSUMMARY: libFuzzer: hung past {budget:g} s (killed)\n"
            exit_code = -9
    return parse_output(target, output, exit_code, time.perf_counter() - started), output
