"""Broadcast fan-out bench: native ``/ws`` and the Socket.IO mount, CPU, latency, memory.

    python -m bench.ws_broadcast                # 200 and 1,000 clients, 10 broadcasts/s
    python -m bench.ws_broadcast --quick        # 200 clients, fewer seconds
    python -m bench.ws_broadcast --max          # adds 10,000 /ws clients at 1 broadcast/s
    python -m bench.ws_broadcast --app minimal  # the bare floor servers instead of the app
    python -m bench.ws_broadcast --app flask-gevent --targets sio-broadcast  # the yardstick

Each scenario starts the server (``python -m bench.serve``: the real app plus a
bench-only trigger route) as its own process pinned to core 0; this load generator
pins itself to core 1 and speaks the wire protocols directly (``bench.rawws``).
Broadcasts are scheduled by the server at ``t0 + i / rate`` and carry that scheduled
time; latency = arrival - scheduled time, so backlog shows. Figures per run:

- latency p50/p95/p99/max over every delivery;
- server CPU per delivery = (utime + stime of the server during the broadcasts) /
  deliveries received;
- deliveries/s; RSS per idle client = (RSS with N idle clients - RSS before) / N;
- with ``--job`` (default on for native): 200 clients connected, one sends queries one
  at a time: query sent -> its first ``audio_update`` ("let me think") and -> the
  answer's ``audio_update``.

Targets: ``native`` (``/ws``), ``sio-broadcast`` (Socket.IO with the kit's
BroadcastManager), ``sio-emit-only`` (BroadcastManager without its lean Engine.IO poll),
``sio-default`` (python-socketio's own AsyncManager); as a fleet node on a real
``redis-server`` started here, ``sio-redis`` (the kit's RedisBroadcastManager) and
``sio-redis-default`` (python-socketio's stock AsyncRedisManager), each broadcast
arriving from Redis as another node's emit does::

    python -m bench.ws_broadcast --no-job --targets sio-broadcast,sio-redis,sio-redis-default

Experiments: ``--loop asyncio``,
``--gc off|freeze|tuned`` (see ``bench.serve.tune_gc``), ``--profile`` (py-spy, collapsed
stacks under bench/reports/profiles/).

Every scenario runs ``--repeat`` times (default 2): these machines are shared and noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench import rawws
from bench.common import (
    NO_CLIENT_LIMITS_ENV,
    REPORTS,
    ServerProcess,
    cpu_seconds,
    free_port,
    pin_self,
    python,
    raise_nofile,
    rss_kb,
    summary,
)
from bench.redisproc import RedisServer
from bench.ws_report import RunResult, Scenario, print_result, report

SERVER_ENV = {
    # Keep only the traffic under test: no 1 Hz time_update, quiet logs, and no
    # per-client limits (one address holds every client; one client asks every job).
    "GENIE_CLOCK_INTERVAL": "3600",
    "GENIE_LOG_LEVEL": "warning",
    **NO_CLIENT_LIMITS_ENV,
}


@dataclass
class Collector:
    latencies: list[float] = field(default_factory=list)
    last_arrival: float = 0.0
    done: asyncio.Event = field(default_factory=asyncio.Event)
    expected: int = 0

    def on_event(self, client: rawws.WsClient, name: str, data: dict[str, Any], now: float) -> None:
        if name == "bench_update":
            self.latencies.append(now - data["sched"])
            self.last_arrival = now
            if len(self.latencies) >= self.expected:
                self.done.set()


PROFILE_DIR: Path | None = None  # set by --profile


def start_profiler(pid: int, scenario: Scenario, count: int) -> subprocess.Popen[bytes]:
    """py-spy (collapsed stacks) over the broadcast window; it runs on the client core."""
    assert PROFILE_DIR is not None
    PROFILE_DIR.mkdir(parents=True, exist_ok=True)
    out = PROFILE_DIR / f"{scenario.target}-{scenario.clients}-{time.strftime('%H%M%S')}.txt"
    seconds = max(1, int(count / scenario.rate))
    argv = [
        "py-spy",
        "record",
        "-p",
        str(pid),
        "-d",
        str(seconds),
        "-r",
        "250",
        "-f",
        "raw",
        "-o",
        str(out),
        "--nonblocking",
    ]
    print(f"profiling {scenario.target} n={scenario.clients} -> {out}", flush=True)
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def start_broadcasts(port: int, rate: float, count: int, t0: float) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
        response = await http.post(
            "/_bench/broadcast", params={"rate": rate, "count": count, "t0": t0}
        )
        response.raise_for_status()


async def measure_broadcasts(
    server: ServerProcess, scenario: Scenario, collector: Collector
) -> tuple[float, float]:
    """Run the scheduled broadcasts; return (server CPU seconds, window seconds)."""
    count = max(1, round(scenario.rate * scenario.seconds))
    collector.expected = count * scenario.clients
    t0 = time.time() + 1.0
    await start_broadcasts(server.port, scenario.rate, count, t0)
    await asyncio.sleep(max(0.0, t0 - time.time() - 0.05))
    cpu_before = cpu_seconds(server.pid)
    profiler = start_profiler(server.pid, scenario, count) if PROFILE_DIR else None
    deadline = (count - 1) / scenario.rate + 10.0  # generous: a slow server still ends
    with contextlib.suppress(TimeoutError):  # what never arrived is reported as lost
        await asyncio.wait_for(collector.done.wait(), t0 - time.time() + deadline)
    cpu = cpu_seconds(server.pid) - cpu_before
    if profiler is not None:
        await asyncio.to_thread(profiler.wait, 60)
    return cpu, max(collector.last_arrival - t0, 1e-9)


async def job_round_trips(port: int, jobs: int) -> dict[str, Any]:
    """One extra client sends ``jobs`` queries one at a time (others stay connected)."""
    arrivals: asyncio.Queue[tuple[str, float]] = asyncio.Queue()

    def on_event(client: rawws.WsClient, name: str, data: dict[str, Any], now: float) -> None:
        if name in ("audio_update", "error"):
            arrivals.put_nowait((name, now))

    client = await rawws.connect(port, "native", on_event)
    first, answer = [], []
    try:
        for n in range(jobs):
            sent = time.time()
            client.send_json({"type": "query", "text": f"what is {n} plus {n}"})
            for bucket in (first, answer):
                name, at = await asyncio.wait_for(arrivals.get(), 30)
                if name == "error":
                    raise RuntimeError("the server answered the query with an error frame")
                bucket.append(at - sent)
            await asyncio.sleep(0.02)  # let the done_update broadcast settle
    finally:
        await rawws.close_all([client])
    return {"first_audio_update_ms": summary(first), "answer_audio_update_ms": summary(answer)}


def server_argv(port: int, scenario: Scenario, args: argparse.Namespace) -> list[str]:
    if args.app == "flask-gevent":
        return [python(), "-m", "bench.flask_floor", "--port", str(port)]
    options = {"--port": port, "--app": args.app, "--sio-manager": scenario.sio_manager,
               "--loop": args.loop, "--gc": args.gc}  # fmt: skip
    if scenario.sio_manager.startswith("redis"):
        options["--redis-url"] = args.redis_url
    return [python(), "-m", "bench.serve", *(str(x) for pair in options.items() for x in pair)]


async def run_once(scenario: Scenario, run: int, args: argparse.Namespace) -> RunResult:
    port = free_port()
    argv = server_argv(port, scenario, args)
    collector = Collector()
    with ServerProcess(argv, port, core=args.server_core, env=SERVER_ENV) as server:
        await asyncio.sleep(1.0)
        rss_before = rss_kb(server.pid)
        clients = await rawws.connect_many(
            port, scenario.dialect, scenario.clients, collector.on_event, within=300
        )
        try:
            await asyncio.sleep(2.0)
            rss_per_client = (rss_kb(server.pid) - rss_before) / scenario.clients
            cpu, window = await measure_broadcasts(server, scenario, collector)
            job = None
            if args.job and scenario.target == "native" and scenario.clients == args.job_clients:
                job = await job_round_trips(port, args.jobs)
        finally:
            await rawws.close_all(clients)
    received = len(collector.latencies)
    return RunResult(
        scenario=scenario,
        run=run,
        latency_ms=summary(collector.latencies),
        cpu_us_per_delivery=cpu / max(received, 1) * 1e6,
        deliveries=received,
        expected=collector.expected,
        deliveries_per_s=received / window,
        rss_kb_per_client=rss_per_client,
        job=job,
        command=server.command,
    )


def scenarios(args: argparse.Namespace) -> list[Scenario]:
    sizes = [200] if args.quick else [int(n) for n in args.clients.split(",")]
    seconds = 5.0 if args.quick else args.seconds
    out = [Scenario(t, n, args.rate, seconds) for n in sizes for t in args.targets.split(",")]
    if args.max:
        out.append(Scenario("native", args.max_clients, 1.0, max(seconds, 10.0)))
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--app",
        choices=["real", "minimal", "flask-gevent"],
        default="real",
        help="real: the kit's app; minimal: bare floor servers; flask-gevent: Flask-SocketIO"
        " on gevent (Socket.IO only, use --targets sio-broadcast)",
    )
    p.add_argument("--targets", default="native,sio-default,sio-broadcast")
    p.add_argument("--clients", default="200,1000", help="comma-separated client counts")
    p.add_argument("--rate", type=float, default=10.0, help="broadcasts per second")
    p.add_argument("--seconds", type=float, default=10.0, help="length of each measurement")
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--quick", action="store_true", help="200 clients, 5 s")
    p.add_argument("--max", action="store_true", help="add --max-clients /ws at 1/s")
    p.add_argument("--max-clients", type=int, default=10_000)
    p.add_argument("--no-job", dest="job", action="store_false", help="skip job round-trips")
    p.add_argument("--job-clients", type=int, default=200)
    p.add_argument("--jobs", type=int, default=50)
    p.add_argument(
        "--loop",
        choices=["asyncio", "uvloop"],
        default="uvloop",
        help="server event loop (python -m fastapi_app runs uvicorn's default: uvloop)",
    )
    p.add_argument(
        "--profile",
        action="store_true",
        help="py-spy the server while it broadcasts (bench/reports/profiles)",
    )
    p.add_argument(
        "--gc",
        choices=["default", "off", "freeze", "tuned"],
        default="default",
        help="server GC experiment (see bench.serve.tune_gc)",
    )
    p.add_argument("--server-core", type=int, default=0)
    p.add_argument("--client-core", type=int, default=1)
    return p.parse_args(argv)


async def amain(args: argparse.Namespace) -> None:
    with contextlib.ExitStack() as stack:
        args.redis_url = None
        if any(t.startswith("sio-redis") for t in args.targets.split(",")):
            args.redis_url = stack.enter_context(running_redis()).url
        await _run_all(args)


@contextlib.contextmanager
def running_redis() -> Iterator[RedisServer]:
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.close()


async def _run_all(args: argparse.Namespace) -> None:
    results = []
    for scenario in scenarios(args):
        for run in range(1, args.repeat + 1):
            result = await run_once(scenario, run, args)
            print_result(result)
            results.append(result)
    report(results, args)


def main(argv: list[str] | None = None) -> None:
    global PROFILE_DIR
    args = parse_args(argv)
    if args.profile:
        PROFILE_DIR = REPORTS / "profiles"
    pin_self(args.client_core)
    raise_nofile(args.max_clients * 2 + 1024)
    import uvloop

    uvloop.run(amain(args))


if __name__ == "__main__":
    main()
