"""What the bench smoke tests share: running a bench as a subprocess, and finding the
servers it may have left behind."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_bench(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """``python -m <args>`` from the project root; fails the test on a non-zero exit."""
    result = subprocess.run(
        [sys.executable, "-m", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def running_ports(ports: set[str]) -> set[str]:
    """Which of ``ports`` a live process still has on its command line (``--port P``)."""
    alive = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:  # gone meanwhile
            continue
        for i, arg in enumerate(argv[:-1]):
            if arg == b"--port" and argv[i + 1].decode() in ports:
                alive.add(argv[i + 1].decode())
    return alive
