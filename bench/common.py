"""Shared bench helpers: percentiles, reports, core pinning, ports, file limits, /proc.

Benches run a server as a separate process pinned to one core and the load generator
pinned to another, read the server's CPU time and RSS from ``/proc``, and write a
Markdown and a JSON report under ``bench/reports/`` (gitignored).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import resource
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
REPORTS = ROOT / "bench" / "reports"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024

# A bench's load comes from one loopback address and, mostly, one client: the
# per-address and per-client limits a deployment wants would refuse the bench's own load.
NO_CLIENT_LIMITS_ENV = {
    "GENIE_RATE_LIMIT_QUERIES": "0",
    "GENIE_RATE_LIMIT_AUDIO": "0",
    "GENIE_RATE_LIMIT_SPEECH": "0",
    "GENIE_MAX_QUEUED_PER_CLIENT": "0",
    "GENIE_MAX_CONNECTIONS": "0",
    "GENIE_MAX_CONNECTIONS_PER_IP": "0",
    "GENIE_MAX_SYNTHESES": "0",
    "GENIE_MAX_SYNTHESES_PER_CLIENT": "0",
}


# --- statistics -----------------------------------------------------------------------


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values (q in 0..100)."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), math.ceil(q / 100 * len(sorted_values))))
    return sorted_values[rank - 1]


def summary(values: Sequence[float], scale: float = 1000.0) -> dict[str, float]:
    """p50/p95/p99/max (seconds in, milliseconds out by default) and the count."""
    ordered = sorted(values)
    return {
        "n": len(ordered),
        "p50": percentile(ordered, 50) * scale,
        "p95": percentile(ordered, 95) * scale,
        "p99": percentile(ordered, 99) * scale,
        "max": (ordered[-1] if ordered else float("nan")) * scale,
    }


def fmt(value: float, digits: int = 2) -> str:
    return "n/a" if math.isnan(value) else f"{value:.{digits}f}"


# --- processes, cores, limits ---------------------------------------------------------


def pin_self(core: int | None) -> None:
    """Pin this process (the load generator) to one core, if that core exists."""
    if core is not None and core < (os.cpu_count() or 1):
        os.sched_setaffinity(0, {core})


def taskset_prefix(core: int | None) -> list[str]:
    if core is None or shutil.which("taskset") is None or core >= (os.cpu_count() or 1):
        return []
    return ["taskset", "-c", str(core)]


def raise_nofile(wanted: int) -> int:
    """Raise RLIMIT_NOFILE towards ``wanted`` (children inherit it); return the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if wanted > hard:
        with contextlib.suppress(ValueError, OSError):  # only root may raise the hard limit
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, wanted))
            return wanted
    target = min(max(soft, wanted), hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads), from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/statm", encoding="ascii") as f:
        return int(f.read().split()[1]) * PAGE_KB


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early with code {proc.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"server did not listen on port {port} within {timeout} s")


@dataclass
class ServerProcess:
    """A server subprocess pinned to ``core``; stopped with SIGTERM (then SIGKILL)."""

    argv: list[str]
    port: int
    core: int | None = 0
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def command(self) -> str:
        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(self.env.items()))
        argv = shlex.join(taskset_prefix(self.core) + self.argv)
        return f"{env} {argv}".strip()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def __enter__(self) -> ServerProcess:
        env = {**os.environ, **self.env}
        self.proc = subprocess.Popen(
            taskset_prefix(self.core) + self.argv, cwd=ROOT, env=env, stdin=subprocess.DEVNULL
        )
        try:
            wait_for_port(self.port, self.proc)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def python() -> str:
    return sys.executable


# --- reports --------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as f:
        model = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "")
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def command_line() -> str:
    """How this bench was started, as ``python -m bench.<name> ...``."""
    script = Path(sys.argv[0]).resolve()
    if script.suffix == ".py" and script.is_relative_to(ROOT):
        module = script.relative_to(ROOT).with_suffix("").as_posix().replace("/", ".")
        module = module.removesuffix(".__main__")  # a package run as python -m package
        return shlex.join(["python", "-m", module, *sys.argv[1:]])
    return shlex.join(sys.argv)


def write_report(name: str, title: str, markdown: list[str], data: dict[str, Any]) -> Path:
    """Write ``bench/reports/<name>-<utc stamp>.md`` and ``.json``; return the .md path."""
    REPORTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    base = REPORTS / f"{name}-{stamp}"
    info = machine()
    header = [
        f"# {title}",
        "",
        f"{stamp} · {info['cpu']} · {info['cores']} cores · Python {info['python']}",
        f"Command: `{command_line()}`",
        "",
    ]
    base.with_suffix(".md").write_text("\n".join(header + markdown) + "\n", encoding="utf-8")
    payload = {"title": title, "stamp": stamp, "machine": info, "command": command_line(), **data}
    base.with_suffix(".json").write_text(json.dumps(payload, indent=2), encoding="utf-8")
    return base.with_suffix(".md")


def md_table(
    headers: Sequence[str], rows: Iterator[Sequence[Any]] | list[Sequence[Any]]
) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines
