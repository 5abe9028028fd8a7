"""Latency and capacity: jobs pushed at a fixed rate while N clients listen.

Every job makes the shared queues broadcast ``todo_update``/``run_update``/
``done_update`` to every client on both transports; the legacy path (``GET /push``,
Socket.IO targets) also broadcasts both ``audio_update`` frames to every Socket.IO
client, as the original Genie did. On ``fastapi-ws`` a probe client sends the job as a
``query`` frame and receives its own ``audio_update``. Push k is sent at its scheduled
time ``t0 + k / rate`` (one task each, so a slow server cannot delay the schedule; to
within a loop iteration, see :func:`until`) and:

- broadcast latency = arrival of the k-th ``done_update`` at a client - scheduled time
  of push k (one consumer, FIFO, so the k-th done is job k), over every client;
- job latency = scheduled push -> the answer's ``audio_update`` at the probe client
  (matched by a number only that job's answer contains);
- server CPU per delivery = process-group CPU during the window / frames delivered.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from bench import rawws
from bench.common import summary
from bench.compare import servers
from bench.compare.procstat import group_cpu, group_rss_kb

TOKEN_BASE = 700_000  # answers say "<TOKEN_BASE+k> plus 1 is ..."; no other frame has it


@dataclass
class Listen:
    sched: list[float] = field(default_factory=list)
    broadcast: list[float] = field(default_factory=list)
    answers: dict[int, float] = field(default_factory=dict)
    frames: int = 0
    last_arrival: float = 0.0
    done_total: int = 0
    expected_done: int = 0
    done_counts: dict[int, int] = field(default_factory=dict)
    finished: asyncio.Event = field(default_factory=asyncio.Event)
    probe: rawws.WsClient | None = None

    def on_event(self, client: rawws.WsClient, name: str, data: dict[str, Any], now: float) -> None:
        self.frames += 1
        self.last_arrival = now
        if name == "done_update":
            k = self.done_counts.get(id(client), 0)
            self.done_counts[id(client)] = k + 1
            if k < len(self.sched):
                self.broadcast.append(now - self.sched[k])
            self.done_total += 1
            if self.done_total >= self.expected_done:
                self.finished.set()
        elif name == "audio_update" and client is self.probe:
            url = str(data.get("audioURL", ""))
            for k in range(len(self.answers), len(self.sched)):
                if f"{TOKEN_BASE + k}" in url:
                    self.answers[k] = now - self.sched[k]
                    break


def question(k: int) -> str:
    return f"what is {TOKEN_BASE + k} plus 1"


async def _push_http(http: aiohttp.ClientSession, port: int, k: int) -> None:
    # The original page sends the question unencoded; spaces as %20 are the safe subset.
    url = f"http://127.0.0.1:{port}/push?question={question(k).replace(' ', '%20')}"
    with contextlib.suppress(aiohttp.ClientError, TimeoutError):
        async with http.get(url) as response:
            await response.read()


# asyncio wakes a sleeper up to ~1 ms late (epoll's timeout is in whole milliseconds),
# which every push would count as server latency: sleep until just before, then yield.
SPIN = 0.002


async def until(at: float) -> None:
    """Return at wall-clock time ``at``, give or take a loop iteration."""
    early = at - time.time() - SPIN
    if early > 0:
        await asyncio.sleep(early)
    while time.time() < at:  # noqa: ASYNC110 - a clock, nothing to wait on
        await asyncio.sleep(0)  # other tasks and callbacks still run meanwhile


async def drive(port: int, dialect: str, listen: Listen, rate: float, count: int) -> float:
    """Send ``count`` pushes on schedule; return t0."""
    t0 = time.time() + 0.5
    listen.sched = [t0 + k / rate for k in range(count)]
    tasks: set[asyncio.Task[None]] = set()
    connector = aiohttp.TCPConnector(limit=32)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        for k, at in enumerate(listen.sched):
            await until(at)
            if dialect == "native":
                assert listen.probe is not None
                listen.probe.send_json({"type": "query", "text": question(k)})
            else:
                task = asyncio.create_task(_push_http(http, port, k))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.wait(tasks, timeout=60)
    return t0


async def broadcast_run(
    target: servers.Target, server: servers.GroupServer, clients: int, rate: float, count: int
) -> dict[str, Any]:
    """``clients`` listeners on a running server, ``count`` pushes at ``rate``/s."""
    port = server.port
    listen = Listen(expected_done=clients * count)
    rss_idle = group_rss_kb(server.pid)
    conns: list[rawws.WsClient] = []
    try:
        conns = await rawws.connect_many(port, target.dialect, clients, listen.on_event, within=180)
        listen.probe = conns[0]
        await asyncio.sleep(1.0)
        rss = group_rss_kb(server.pid)
        cpu0 = group_cpu(server.pid)
        t0 = await drive(port, target.dialect, listen, rate, count)
        deadline = listen.sched[-1] + 15.0  # bounded: what never came is "lost"
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(listen.finished.wait(), max(1.0, deadline - time.time()))
        await asyncio.sleep(0.3)  # let the answer's audio_update land
        cpu = group_cpu(server.pid) - cpu0
    finally:
        await rawws.close_all(conns)
    window = max(listen.last_arrival - t0, 1e-9)
    return {
        "clients": clients,
        "rate": rate,
        "pushes": count,
        "broadcast_ms": summary(listen.broadcast),
        "job_audio_ms": summary(list(listen.answers.values())),
        "broadcast_samples_ms": [v * 1000 for v in listen.broadcast],
        "frames": listen.frames,
        "deliveries_per_s": listen.frames / window,
        "jobs_per_s": listen.done_total / clients / window,
        "cpu_us_per_delivery": cpu / max(listen.frames, 1) * 1e6,
        "server_cpu_s": cpu,
        "lost_done_updates": listen.expected_done - listen.done_total,
        "rss_kb_per_client": (rss - rss_idle) / clients,
        "command": server.command,
    }
