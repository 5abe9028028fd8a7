"""CPU and RSS of a server's whole process group (a server may run helper processes)."""

from __future__ import annotations

import os

from bench.common import cpu_seconds, rss_kb


def group_pids(pgid: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        if int(fields[2]) == pgid:  # field 5 of stat: process group
            pids.append(int(entry))
    return pids or [pgid]


def group_cpu(pgid: int) -> float:
    total = 0.0
    for pid in group_pids(pgid):
        try:
            total += cpu_seconds(pid)
        except OSError:
            continue
    return total


def group_rss_kb(pgid: int) -> int:
    total = 0
    for pid in group_pids(pgid):
        try:
            total += rss_kb(pid)
        except OSError:
            continue
    return total
