"""Generated and mutated WebSocket, Engine.IO and Socket.IO frames against a real server.

    python -m bench.robustness.frames [--scale 20000] [--endpoints ws,ws_tts,...]
                                      [--seed 6455] [--parallel 12]

Endpoints: ``ws`` (native ``/ws``), ``ws_tts`` (``/ws/tts``), ``ws_tts_session``
(``/ws/tts/{session}``: each batch gets a fresh session of a 500-chunk scene, stopped
with a valid ``stop`` when the batch ends), ``socketio_ws`` and ``socketio_polling``
(``/socket.io/`` on each transport; upgrades from polling are in ``socketio_ws``).

For each endpoint at least ``scale`` frames (polling: HTTP requests) are *sent*, in
batches over many connections: valid frames, then mutations (wrong types, missing and
extra fields, huge and negative numbers, deep nesting, invalid UTF-8, binary for text,
fragments, control frames mid-message, ping floods, out-of-order Engine.IO/Socket.IO
packets, upgrade probes, packets before connect). After every batch a well-behaved
client of that endpoint must still work, the server log must hold no error, and from
the first batch (warm-up) to the last the server's RSS may grow by at most
``frame_tally.RSS_BOUND_MB`` (10 MB) per 20,000 frames.

The parts: ``frame_json`` (JSON bodies and their mutations), ``frame_socketio``
(Engine.IO / Socket.IO packets), ``frame_messages`` (each endpoint's messages, and how
Hypothesis is drawn from), ``frame_steps`` (how a message is framed, safe or fatal),
``frame_scripts`` (one connection's traffic), ``frame_wire`` (a raw RFC 6455 client),
``frame_play`` (playing a script, the outcome), ``frame_probes`` (well-behaved
clients), ``frame_server`` (the server process, its log, its RSS), ``frame_tally``
(judging connections, the report section).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import shutil
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from typing import Any

import httpx

from bench.robustness.frame_messages import draw, draw_messages
from bench.robustness.frame_play import Outcome, play_polling, play_ws
from bench.robustness.frame_probes import probe, stop_session
from bench.robustness.frame_scripts import SCRIPTS
from bench.robustness.frame_server import Server, scan_log
from bench.robustness.frame_tally import Tally, section
from bench.robustness.report import Section, section_markdown, write_part

ENDPOINTS = tuple(SCRIPTS)
BATCH_FRAMES = 1000
MESSAGE_REUSE = 4  # frames per drawn message, about (see frame_messages)
SCENE_CHUNKS = 500
SETTINGS_NOTE = (
    "Server: `{command}`. Query and speech rate limits off: every connection comes "
    "from 127.0.0.1, so the flood would spend the well-behaved client's budget (and "
    "every valid question would be 'rate_limited', leaving the question path untested); "
    "they answer with an error, never close a socket. The queue, synthesis and "
    "connection caps stay on ('busy' is a clear error). Scene sessions expire 10 s after "
    "their last activity instead of 300 s, so stopped batch sessions leave memory "
    "within the run; scene audio goes to a SQLite file, not to memory."
)


# --- drawing scripts --------------------------------------------------------------------


def draw_batch(endpoint: str, frames: int, seed: int) -> list[Any]:
    """Scripts worth at least ``frames`` frames (runs in a worker process): a message
    for about every four frames, then connection scripts made of them."""
    messages = draw_messages(endpoint, max(8, frames // MESSAGE_REUSE), seed)
    strategy = SCRIPTS[endpoint](messages)
    scripts: list[Any] = []
    total, round_ = 0, 0
    while total < frames:
        average = total / len(scripts) if scripts else 12
        count = max(1, math.ceil((frames - total) / max(average, 1)))
        for script in draw(strategy, count, seed * 1000 + round_):
            scripts.append(script)
            total += script.frames
            if total >= frames:
                break
        round_ += 1
    return scripts


# --- one endpoint -----------------------------------------------------------------------


@dataclass
class Plan:
    endpoint: str
    scale: int
    seed: int
    parallel: int

    @property
    def batches(self) -> int:
        return max(2, math.ceil(self.scale / BATCH_FRAMES))

    def batch_seed(self, batch: int) -> int:
        return self.seed * 100 + ENDPOINTS.index(self.endpoint) * 10_000_000 + batch


async def fuzz_endpoint(server: Server, plan: Plan, pool: ProcessPoolExecutor) -> Tally:
    """Batches until ``plan.scale`` frames were *sent* (a connection the server closes
    early leaves the rest of its frames unsent), each drawn while the last is sent."""
    tally = Tally()
    loop = asyncio.get_running_loop()
    started = time.monotonic()

    def drawn(batch: int, frames: int) -> asyncio.Future[list[Any]]:
        size = max(50, min(BATCH_FRAMES, frames))
        return loop.run_in_executor(pool, draw_batch, plan.endpoint, size, plan.batch_seed(batch))

    pending: asyncio.Future[list[Any]] | None = drawn(0, math.ceil(plan.scale / plan.batches))
    batch, sent_ratio = 0, 0.9  # frames sent per frame drawn, from the batches so far
    while pending is not None:
        waited = time.monotonic()
        scripts = await pending
        tally.generated_seconds += time.monotonic() - waited
        expected = tally.frames + sent_ratio * sum(s.frames for s in scripts)
        pending = (
            drawn(batch + 1, _still(plan, expected, sent_ratio)) if expected < plan.scale else None
        )
        before = tally.frames
        await play_batch(server, plan, scripts, tally, batch)
        sent_ratio = max(0.3, (tally.frames - before) / max(1, sum(s.frames for s in scripts)))
        batch += 1
        print(f"  {plan.endpoint} batch {batch}: {tally.frames} frames sent, "
              f"{dict(tally.results)}, RSS {tally.rss[-1]:.1f} MB", flush=True)  # fmt: skip
        if pending is None and tally.frames < plan.scale:
            pending = drawn(batch, _still(plan, tally.frames, sent_ratio))
    tally.seconds = time.monotonic() - started
    return tally


def _still(plan: Plan, sent: float, ratio: float) -> int:
    """Frames to draw so that about ``plan.scale`` get sent, with a margin."""
    return math.ceil((plan.scale - sent) / ratio * 1.1) + 20


async def play_batch(
    server: Server, plan: Plan, scripts: list[Any], tally: Tally, batch: int
) -> None:
    session = await new_session(server.url, f"{batch}") if plan.endpoint == "ws_tts_session" else ""
    gate = asyncio.Semaphore(plan.parallel)

    async def one(script: Any) -> Outcome:
        async with gate:
            try:
                if plan.endpoint == "socketio_polling":
                    return await play_polling(server.port, script)
                return await play_ws(server.port, plan.endpoint, script, session)
            except (OSError, httpx.HTTPError, TimeoutError) as exc:  # a failure, not a crash
                return Outcome(result="error", script=f"{type(exc).__name__}: {exc}"[:300])

    for outcome in await asyncio.gather(*(one(s) for s in scripts)):
        tally.add(plan.endpoint, outcome)
    tally.count_kinds(scripts)
    if session:
        _check(tally, await stop_session(server.url, session))
    _check(tally, await probe(plan.endpoint, server.url))
    tally.log.add(scan_log(server.new_log()))
    tally.rss.append(server.rss_mb())


def _check(tally: Tally, problem: str | None) -> None:
    tally.checks += 1
    if problem is None:
        tally.passed += 1
    else:
        tally.failures.append(problem)


async def new_session(base: str, tag: str) -> str:
    """A fresh session of a long scene: it keeps generating while the batch runs."""
    chunks = [f"Fuzz {tag} chunk {i}." for i in range(SCENE_CHUNKS)]
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        scene = await http.post("/api/scenes", json={"title": f"fuzz {tag}", "chunks": chunks})
        started = await http.post(f"/api/tts/generate-ws/{scene.json()['id']}")
    return str(started.json()["session_id"])


# --- the run ----------------------------------------------------------------------------


async def run(
    scale: int = 20_000,
    endpoints: Sequence[str] = ENDPOINTS,
    seed: int = 6455,
    parallel: int = 12,
) -> Section:
    """``scale`` generated frames per endpoint against one real server (see module)."""
    server = await asyncio.to_thread(Server().start)
    tallies: dict[str, Tally] = {}
    try:
        with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
            for endpoint in endpoints:
                print(f"{endpoint}: {scale} frames", flush=True)
                plan = Plan(endpoint, scale, seed, parallel)
                tallies[endpoint] = await fuzz_endpoint(server, plan, pool)
        final = [await probe(endpoint, server.url) for endpoint in ENDPOINTS]
        alive = server.alive()
    finally:
        stopping = time.monotonic()
        await asyncio.to_thread(server.stop)
        print(f"server stopped in {time.monotonic() - stopping:.1f} s", flush=True)
    extra = [p for p in final if p] + ([] if alive else ["server died"])
    result = section(tallies, SETTINGS_NOTE.format(command=server.command), extra)
    if result.passed:
        shutil.rmtree(server.workdir, ignore_errors=True)
    else:
        result.notes.append(f"Server log: {server.log_path}")
    return result


# --- command line -----------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.robustness.frames", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--scale", type=int, default=20_000, help="frames per endpoint")
    parser.add_argument("--endpoints", default=",".join(ENDPOINTS), help="comma-separated")
    parser.add_argument("--seed", type=int, default=6455, help="Hypothesis seed")
    parser.add_argument("--parallel", type=int, default=12, help="connections at once")
    args = parser.parse_args(argv)
    args.endpoints = [e for e in args.endpoints.split(",") if e]
    unknown = set(args.endpoints) - set(ENDPOINTS)
    if unknown:
        parser.error(f"unknown endpoints {sorted(unknown)}; choose from {', '.join(ENDPOINTS)}")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    result = asyncio.run(run(args.scale, args.endpoints, args.seed, args.parallel))
    path = write_part("frames", result)
    print("\n".join(section_markdown(result)))
    print(f"report: {path}")


if __name__ == "__main__":
    main()
