"""The server under test: ``python -m fastapi_app`` as a subprocess, its log and its RSS.

Its stdout and stderr go to one file, read back from an offset so each batch's new
lines can be scanned. What counts as a server error (see :func:`scan_log`): every
ERROR or CRITICAL record and every traceback, except the few lines a library writes
for input it then handles as RFC 6455 says (``CLIENT_CAUSED``). WARNING records are
counted and reported, never failures (e.g. python-socketio's "is not connected to
namespace" for an event sent before connect).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.common import ROOT, free_port

CLIENT_CAUSED = (
    # python-engineio logs each kind of bad request (unknown session, bad transport, ...)
    # once at ERROR, then at INFO, and answers 400.
    "(further occurrences of this error will be logged with level INFO)",
)
# Flood-friendly settings, each one stated in the report (see frames.SETTINGS_NOTE).
BENCH_SETTINGS = {
    "log_level": "info",
    # Every connection comes from 127.0.0.1: per-client rate limits would refuse the
    # well-behaved probe after the flood spent its budget (they answer, never close).
    "rate_limit_queries": "0",
    "rate_limit_speech": "0",
    "scene_session_ttl": "10",  # a stopped batch session leaves memory in 10 s, not 300
}
_LEVEL = re.compile(r"^(DEBUG|INFO|WARNING|ERROR|CRITICAL)\b:?\s*(.*)$")
_IDS = re.compile(r"[0-9a-fA-F-]{16,}|[A-Za-z0-9_-]{20}|\d+")


@dataclass
class LogScan:
    errors: Counter[str] = field(default_factory=Counter)  # failures, by first line
    client_caused: Counter[str] = field(default_factory=Counter)
    warnings: Counter[str] = field(default_factory=Counter)

    def add(self, other: LogScan) -> None:
        self.errors.update(other.errors)
        self.client_caused.update(other.client_caused)
        self.warnings.update(other.warnings)


def scan_log(text: str) -> LogScan:
    """Classify ERROR/CRITICAL records, tracebacks and warnings of a log excerpt."""
    scan = LogScan()
    lines = text.splitlines()
    context = ""  # the last record's head: what a following traceback belongs to
    for i, line in enumerate(lines):
        match = _LEVEL.match(line)
        if match:
            level, message = match.groups()
            context = line
            if level == "WARNING":
                scan.warnings[_IDS.sub("#", message)[:160]] += 1
            elif level in ("ERROR", "CRITICAL") and not _traceback_follows(lines, i):
                _count(scan, message, message)
        elif line.startswith("Traceback (most recent call last)"):
            _count(scan, context, f"{_exception_of(lines, i)} (after: {context[:120]})")
        elif line.startswith("Exception ignored"):
            _count(scan, line, line[:200])
        elif line and not line[0].isspace() and not _in_traceback(lines, i):
            context = line  # a library's unprefixed message (python-engineio's own handler)
    return scan


def _count(scan: LogScan, context: str, key: str) -> None:
    if any(allowed in context for allowed in CLIENT_CAUSED):
        scan.client_caused[key[:200]] += 1
    else:
        scan.errors[key[:300]] += 1


def _traceback_follows(lines: list[str], i: int) -> bool:
    return i + 1 < len(lines) and lines[i + 1].startswith("Traceback (most recent call last)")


def _in_traceback(lines: list[str], i: int) -> bool:
    """Whether line ``i`` is an exception line or chain separator inside a traceback."""
    j = i - 1
    while j >= 0 and (not lines[j] or lines[j][0].isspace()):
        j -= 1
    return j < i - 1 or (j >= 0 and lines[j].startswith("During handling"))


def _exception_of(lines: list[str], start: int) -> str:
    """The last exception line of the traceback (or chain of them) starting at ``start``."""
    found, expecting = "?", True
    for line in lines[start + 1 :]:
        if not line or line[0].isspace():
            continue
        if line.startswith(_CHAIN):
            expecting = True
        elif not expecting:
            break
        else:
            found, expecting = line, False
    return found


_CHAIN = ("Traceback (most recent call last)", "During handling", "The above exception")


class Server:
    """``python -m fastapi_app`` on a free loopback port, output to a temporary file."""

    def __init__(self, **settings: str) -> None:
        self.port = free_port()
        self.workdir = Path(tempfile.mkdtemp(prefix="genie-frames-"))
        self.settings = {**BENCH_SETTINGS, "scenes_db": str(self.workdir / "scenes.db"), **settings}
        self.log_path = self.workdir / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._offset = 0

    @property
    def command(self) -> str:
        flags = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in self.settings.items())
        return f"python -m fastapi_app --port {self.port} {flags}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> Server:
        argv = [
            sys.executable,
            "-m",
            "fastapi_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]
        for key, value in self.settings.items():
            argv += [f"--{key.replace('_', '-')}", value]
        env = {k: v for k, v in os.environ.items() if not k.startswith("GENIE_")}
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=log,
                                         stdin=subprocess.DEVNULL)  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early: {self.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/health", timeout=1.0).status_code == 200:
                    return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server did not answer /health in {timeout} s: {self.log_tail()}")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def rss_mb(self) -> float:
        assert self.proc is not None
        status = Path(f"/proc/{self.proc.pid}/status").read_text(encoding="ascii")
        kb = next(int(ln.split()[1]) for ln in status.splitlines() if ln.startswith("VmRSS:"))
        return kb / 1024

    def new_log(self) -> str:
        """Log text written since the previous call."""
        with open(self.log_path, "rb") as log:
            log.seek(self._offset)
            data = log.read()
        self._offset += len(data)
        return data.decode(errors="replace")

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
