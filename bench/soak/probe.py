"""The server from outside: RSS, open file descriptors and threads from ``/proc``, its
asyncio task count and connections from ``/health``, CPU, the terminal listings, and
``/metrics`` values, every sample interval."""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import asdict, dataclass
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bench.common import CLK_TCK, cpu_seconds, rss_kb

LISTS = ("done", "dead")


@dataclass
class Sample:
    t: float  # seconds since the clients started
    phase: str
    rss_kb: int
    fds: int
    threads: int
    tasks: int
    ws: int
    socketio: int
    todo: int
    running: int
    done: int
    dead: int
    server_cpu: float  # share of one core since the previous sample
    generator_cpu: float
    # The machine is shared: how long the server's loop thread was ready to run but
    # waited for a core (share of the interval), and the cores other processes used.
    server_wait: float
    others_cpu: float

    def row(self) -> dict[str, Any]:
        return asdict(self)


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def thread_count(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("Threads:"))


def own_cpu() -> float:
    t = os.times()
    return t.user + t.system


def run_queue_wait(pid: int) -> float:
    """Seconds the process's main thread (the event loop) waited for a core."""
    with open(f"/proc/{pid}/schedstat", encoding="ascii") as f:
        return int(f.read().split()[1]) / 1e9


def machine_busy() -> float:
    """CPU seconds every core spent on anything but idling (all processes)."""
    with open("/proc/stat", encoding="ascii") as f:
        user, nice, system, _, _, irq, softirq, steal = (int(v) for v in f.readline().split()[1:9])
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


class Probe:
    def __init__(self, pid: int, http: httpx.AsyncClient) -> None:
        self.pid = pid
        self.http = http  # its own keep-alive connection: one fd, there at the baseline too
        self.t0 = time.monotonic()
        self._last = self._clocks()
        self.failures = 0  # requests of the probe the server failed (then tried again)

    async def health(self) -> dict[str, Any]:
        return (await self._get("/health")).json()

    async def _get(self, path: str) -> httpx.Response:
        """One answer; a refusal or a dropped connection is tried again twice, a second
        apart (the probe's own trouble must not end a long soak), then raised."""
        for attempt in range(3):
            try:
                response = await self.http.get(path)
                response.raise_for_status()
                return response
            except httpx.HTTPError:
                self.failures += 1
                if attempt == 2:
                    raise
                await asyncio.sleep(1.0)
        raise AssertionError("unreachable")

    async def sample(self, phase: str) -> Sample:
        health = await self.health()
        clocks = self._clocks()
        span, server, own, wait, busy = (b - a for a, b in zip(self._last, clocks, strict=True))
        self._last = clocks
        span = max(span, 1e-6)
        jobs, conns = health["jobs"], health["connections"]
        return Sample(
            round(clocks[0] - self.t0, 1), phase, rss_kb(self.pid), fd_count(self.pid),
            thread_count(self.pid), health["tasks"], conns.get("ws", 0),
            conns.get("socketio", 0), jobs["todo"], jobs["running"], jobs["done"],
            jobs["dead"], server / span, own / span, wait / span,
            max(0.0, busy - server - own) / span,
        )  # fmt: skip

    def _clocks(self) -> tuple[float, float, float, float, float]:
        return (time.monotonic(), cpu_seconds(self.pid), own_cpu(),
                run_queue_wait(self.pid), machine_busy())  # fmt: skip

    async def listings(self) -> dict[str, list[str]]:
        out = {}
        for name in LISTS:
            out[name] = (await self._get(f"/get_queue/{name}")).json()[f"{name}_jobs"]
        return out

    async def metrics(self) -> dict[str, float]:
        """``name{label="v"}`` -> value, for every sample of ``/metrics``."""
        response = await self._get("/metrics")
        values = {}
        for family in text_string_to_metric_families(response.text):
            for s in family.samples:
                labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
                values[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
        return values
