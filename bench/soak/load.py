"""The soak itself: warm the server up and take its baseline, start the clients, ask at
a steady rate while sampling, stop, let every client leave, wait for the server to come
back to its baseline, then read what became of every question."""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench import rawws
from bench.common import summary
from bench.soak.actor import Actor
from bench.soak.audio import AudioActor
from bench.soak.legacy import LegacyActor
from bench.soak.native import RESUME_TIMEOUT, NativeActor
from bench.soak.plan import Plan
from bench.soak.probe import Probe, Sample
from bench.soak.world import ANSWER_WAIT, World

FD_SLACK = 4  # fds over the baseline still "back to baseline" (stated in the report)
TASK_SLACK = 2


@dataclass
class Options:
    port: int
    pid: int
    clients: int
    rate: float  # questions per second, all clients together
    audio: int  # audio streams in flight at once
    seconds: float
    interval: float  # between samples
    warmup: float
    resume_window: float
    ping_interval: float  # Engine.IO's: a closed socket's ping task sleeps it out
    seed: int


@dataclass
class Run:
    samples: list[Sample] = field(default_factory=list)
    marks: dict[str, Sample] = field(default_factory=dict)  # baseline, warm-up, ...
    late: list[float] = field(default_factory=list)  # pacer: how late each question left
    settled_after: float | None = None  # seconds from "clients left" to baseline
    last_check: dict[str, Any] = field(default_factory=dict)

    def mark(self, sample: Sample) -> Sample:
        self.samples.append(sample)
        self.marks.setdefault(sample.phase, sample)
        return sample


async def soak(opts: Options) -> dict[str, Any]:
    base = f"http://127.0.0.1:{opts.port}"
    run = Run()
    async with httpx.AsyncClient(base_url=base, timeout=30) as monitor:
        await warm_up(base, opts.port)
        probe = Probe(opts.pid, monitor)
        run.mark(await probe.sample("baseline"))
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=16)
        async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as http:
            plan = Plan(opts.seconds, opts.resume_window, opts.seed)
            stopping = asyncio.get_running_loop().create_future()
            world = World(opts.port, plan, http, stopping)
            actors = make_actors(world, opts.clients)
            await load(world, actors, opts, probe, run)
        run.mark(await probe.sample("clients left"))
        await settle(probe, run, opts)
        world.ledger.observe(await probe.listings())
        health = await probe.health()
        metrics = await probe.metrics()
    left_over = health["jobs"]["todo"] + health["jobs"]["running"]
    if probe.failures:
        world.events["monitor: requests the server failed (tried again)"] += probe.failures
    return {
        "run": run,
        "jobs": world.ledger.reconcile(left_over),
        "answers": world.ledger.answers(),
        "events": world.events,
        "audio": world.audio,
        "roles": Counter(f"{a.transport} {a.role}" for a in actors),
        "metrics_after": {k: v for k, v in metrics.items() if k.startswith("genie_")},
        "pacer": {"asked": len(world.ledger.asks), "late_ms": summary(run.late)},
    }


async def warm_up(base: str, port: int) -> None:
    """What starts lazily (speech worker, Engine.IO's service task, a job) starts now,
    before the baseline; the connections it used are closed again."""
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        (await http.get("/api/get-audio", params={"msg": "warm up"})).raise_for_status()
        (await http.get("/push?question=what%20time%20is%20it")).raise_for_status()
        for _ in range(100):
            if (await http.get("/health")).json()["jobs"]["done"] >= 1:
                break
            await asyncio.sleep(0.05)
    for dialect in ("native", "socketio"):
        client = await rawws.connect(port, dialect, lambda *_: None)
        await rawws.close_all([client])
    await asyncio.sleep(0.5)


def make_actors(world: World, clients: int) -> list[Actor]:
    """Half /ws, half Socket.IO, alternating."""
    kinds = (NativeActor, LegacyActor)
    return [kinds[i % 2](world, i) for i in range(clients)]


async def load(world: World, actors: list[Actor], opts: Options, probe: Probe, run: Run) -> None:
    ramp = min(10.0, max(1.0, opts.seconds / 20))  # spread the first connects
    tasks = [asyncio.create_task(a.run(ramp * i / len(actors))) for i, a in enumerate(actors)]
    audio = [AudioActor(world, i) for i in range(opts.audio)]
    streams = [
        asyncio.create_task(a.run(ramp * i / max(1, opts.audio))) for i, a in enumerate(audio)
    ]
    pacer = asyncio.create_task(pace(world, actors, opts.rate, run.late))
    try:
        await watch(world, probe, run, opts)
    finally:
        world.stopping.set_result(None)
        await pacer
        leave_within = ANSWER_WAIT + RESUME_TIMEOUT + 30
        await finish(world, tasks, leave_within, "client")
        await finish(world, streams, opts.resume_window + 40, "audio stream")
        for actor in actors:  # a crashed or cancelled client must not hold its socket
            if actor.conn is not None and not actor.conn.closed.done():
                actor.conn.abort()
                world.events["generator: sockets still open at the end, reset"] += 1
        if world.tasks:
            await asyncio.wait(list(world.tasks), timeout=60)


async def finish(world: World, tasks: list[asyncio.Task[None]], within: float, what: str) -> None:
    """Wait for the tasks to end; any still running are cancelled and counted."""
    if not tasks:
        return
    _, late = await asyncio.wait(tasks, timeout=within)
    for task in late:
        task.cancel()
    if late:
        world.events[f"generator: {what}s cancelled at the end"] += len(late)
    for task in tasks:
        if not task.cancelled() and task.done() and task.exception() is not None:
            world.events[f"generator: {what} crashed ({task.exception()!r})"] += 1


async def pace(world: World, actors: list[Actor], rate: float, late: list[float]) -> None:
    """One question every 1/rate s, from a client picked at random among those that can
    ask now (connected, not mid-drop)."""
    loop = asyncio.get_running_loop()
    rng = world.plan.rng(-1)
    start, k = loop.time(), 0
    while not world.stopped:
        due = start + k / rate
        await world.nap(due - loop.time())
        if world.stopped:
            return
        late.append(max(0.0, loop.time() - due))
        k += 1
        eligible = [a for a in actors if a.can_ask()]
        if not eligible:
            world.events["pacer: nobody could ask"] += 1
            continue
        actor = rng.choice(eligible)
        actor.ask(world.ledger.ask(actor.transport))


async def watch(world: World, probe: Probe, run: Run, opts: Options) -> None:
    """A sample every interval (and one at the end of the warm-up); progress lines."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    steps = math.ceil(opts.seconds / opts.interval)
    times = sorted({opts.warmup, *(opts.interval * k for k in range(1, steps))})
    for at in [t for t in times if t < opts.seconds] + [opts.seconds]:
        phase = "warm-up end" if at == opts.warmup else "load"
        if phase == "load" and loop.time() > start + at + opts.interval / 2:
            continue  # the last sample took that long: skip the slot, not the schedule
        await asyncio.sleep(max(0.0, start + at - loop.time()))
        try:
            sample = run.mark(await probe.sample("load end" if at >= opts.seconds else phase))
            world.ledger.observe(await probe.listings())
        except httpx.HTTPError as exc:  # a starved server: note it, keep the soak going
            world.events[f"monitor: sample lost ({type(exc).__name__})"] += 1
            continue
        print(progress(sample, world), flush=True)


def progress(s: Sample, world: World) -> str:
    asks = world.ledger.asks.values()
    answered = sum(a.answered_at is not None for a in asks)
    now = time.time()  # what the asks and the arrivals are stamped with
    overdue = sum(a.owed and a.answered_at is None and now - a.at > ANSWER_WAIT for a in asks)
    return (
        f"[{s.t:6.1f} s] {s.phase:<11} clients ws {s.ws} sio {s.socketio} | asked "
        f"{len(world.ledger.asks)} answered {answered} overdue {overdue} | RSS "
        f"{s.rss_kb / 1024:.1f} MB fds {s.fds} tasks {s.tasks} threads {s.threads} | "
        f"CPU server {s.server_cpu:.0%} generator {s.generator_cpu:.0%} others "
        f"{s.others_cpu:.0%}, server waited {s.server_wait:.0%}"
    )


async def settle(probe: Probe, run: Run, opts: Options) -> None:
    """Wait for every session to expire (the resume window) and for the server's fds
    and tasks to come back within the slack of the baseline; the last sample is "after".

    python-engineio leaves each closed socket's ping task asleep for up to the ping
    interval, so tasks come back only after that, however fast the sockets closed."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    deadline = start + max(opts.resume_window, opts.ping_interval) * 1.5 + 30
    base = run.marks["baseline"]
    kept = start
    while True:
        await asyncio.sleep(1.0)
        try:
            sample = await probe.sample("draining")
            metrics = await probe.metrics()
        except httpx.HTTPError:
            if loop.time() > deadline:
                raise
            continue
        check = {
            "ws sessions kept": metrics.get("genie_ws_clients_detached", math.nan),
            "audio streams open": metrics.get("genie_audio_streams_open", math.nan),
            "connections": sample.ws + sample.socketio,
            "fds over baseline": sample.fds - base.fds,
            "tasks over baseline": sample.tasks - base.tasks,
        }
        run.last_check = check
        back = (
            check["ws sessions kept"] == 0 and check["audio streams open"] == 0
            and check["connections"] == 0 and check["fds over baseline"] <= FD_SLACK
            and check["tasks over baseline"] <= TASK_SLACK
        )  # fmt: skip
        if back or loop.time() > deadline:
            break
        if loop.time() - kept >= opts.interval:
            kept = loop.time()
            run.samples.append(sample)
    sample.phase = "after"
    run.mark(sample)
    if back:
        run.settled_after = round(loop.time() - start, 1)
    print(progress_after(sample, run), flush=True)


def progress_after(s: Sample, run: Run) -> str:
    took = f"{run.settled_after:.0f} s" if run.settled_after is not None else "not in time"
    return (
        f"[{s.t:6.1f} s] after       back to baseline: {took} | RSS {s.rss_kb / 1024:.1f} MB "
        f"fds {s.fds} tasks {s.tasks} | {run.last_check}"
    )
