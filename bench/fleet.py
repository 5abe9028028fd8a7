"""The fleet on one Redis (loopback): what Redis adds, and how the fleet recovers.

    python -m bench.fleet                      # 200 and 1,000 clients, 2 runs each
    python -m bench.fleet --clients 200 --runs 1 --pushes 20   # a quick look

1. **Cross-process job -> audio_update.** The asker sits on a web-only node, the only
   consumer on another: every answer crosses Redis (script, publish, the asker's node).
   Compared with one in-memory process under the same load (clients listening, 5 pushes
   a second from the asker). Per node: the Redis messages it received for per-client
   frames (only its own clients') and for broadcasts (one per event, whatever the
   number of clients).
2. **Jobs per second** through the Redis queue with the offline handler, 1, 2 and 4
   consumers (one process; the in-memory queue for reference).
3. **Takeover**: SIGKILL the node running a job; seconds until another starts it again
   (lease ``--lease`` plus the reaper's round).
4. **Redis restart** (AOF): seconds from Redis answering again to every node serving.

Writes ``bench/reports/fleet-<stamp>.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from bench import rawws
from bench.common import (
    NO_CLIENT_LIMITS_ENV,
    ServerProcess,
    free_port,
    md_table,
    python,
    raise_nofile,
    summary,
    write_report,
)
from bench.compare.traffic import question
from bench.redisproc import RedisServer
from queues.handlers import OfflineHandler
from queues.models import Job

RATE = 5.0  # pushes per second, the comparison's latency workload


async def slow(job: Job) -> str:
    """The takeover's handler (``bench.fleet:slow``): a job that runs for a while."""
    await asyncio.sleep(5)
    return "done after five seconds"


@contextmanager
def node(redis_url: str | None, prefix: str, **settings: Any) -> Iterator[ServerProcess]:
    port = free_port()
    env = {"GENIE_LOG_LEVEL": "warning", "GENIE_CLOCK_INTERVAL": "3600", **NO_CLIENT_LIMITS_ENV}
    if redis_url:
        env |= {"GENIE_REDIS_URL": redis_url, "GENIE_REDIS_CHANNEL": prefix}
    env |= {f"GENIE_{k.upper()}": str(v) for k, v in settings.items()}
    argv = [python(), "-m", "fastapi_app", "--host", "127.0.0.1", "--port", str(port)]
    with ServerProcess(argv, port, core=None, env=env) as server:
        _wait_healthy(port)
        yield server


def _wait_healthy(port: int, within: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while True:
        try:
            answer = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
            if answer.status_code == 200 and answer.json()["status"] == "ok":
                return answer.json()
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"the server on port {port} is not healthy")
        time.sleep(0.02)


# --- 1. latency ---------------------------------------------------------------------------


async def asker_latency(ports: list[int], clients: int, pushes: int) -> dict[str, Any]:
    """The asker on ``ports[0]``; listeners spread over every port; pushes at RATE/s."""
    answers = {OfflineHandler().answer(question(k)): k for k in range(pushes)}
    sent: dict[int, float] = {}
    latencies: list[float] = []
    arrived: dict[str, float] = {}  # question -> when its answer reached the asker

    def on_event(client: rawws.WsClient, kind: str, data: dict[str, Any], at: float) -> None:
        if kind == "audio_update":
            msg = parse_qs(urlsplit(data["audioURL"]).query).get("msg", [""])[0]
            k = answers.get(msg)
            if k is not None and k in sent:
                latencies.append(at - sent.pop(k))
                arrived[question(k)] = at

    asker = await rawws.connect(ports[0], "native", on_event)
    listeners: list[rawws.WsClient] = []
    for i, port in enumerate(ports):
        share = (clients - 1) // len(ports) + (1 if i < (clients - 1) % len(ports) else 0)
        listeners += await rawws.connect_many(port, "native", share, lambda *a: None)
    await asyncio.sleep(1.0)
    start = time.perf_counter()
    for k in range(pushes):
        await asyncio.sleep(max(0.0, start + k / RATE - time.perf_counter()))
        sent[k] = time.time()  # rawws stamps arrivals with time.time()
        asker.send_json({"type": "query", "text": question(k)})
    deadline = time.monotonic() + 30
    while sent and time.monotonic() < deadline:  # noqa: ASYNC110 - answers arrive in callbacks
        await asyncio.sleep(0.05)
    await rawws.close_all([asker, *listeners])
    return {"clients": clients, "answered": len(latencies), "pushes": pushes,
            "latency_ms": summary(sorted(latencies)), "arrived": arrived}  # fmt: skip


def hops(redis: RedisServer, prefix: str, arrived: dict[str, float]) -> dict[str, float]:
    """Where a fleet answer's time goes, p50 in ms, from the times each job carries
    (created on the asker's node, started by Redis's clock in the take, finished on the
    consumer's node) and when its answer reached the asker."""
    stages: dict[str, list[float]] = {"push -> taken": [], "taken -> answered": [],
                                      "answered -> at the asker": []}  # fmt: skip
    for raw in redis.client().hvals(f"{prefix}:jobs"):
        job = json.loads(raw)
        at = arrived.get(job["question"])
        if at is None or job.get("finished_at") is None:
            continue
        stages["push -> taken"].append(job["started_at"] - job["created_at"])
        stages["taken -> answered"].append(job["finished_at"] - job["started_at"])
        stages["answered -> at the asker"].append(at - job["finished_at"])
    return {name: summary(sorted(v))["p50"] for name, v in stages.items() if v}


def latency_cells(redis: RedisServer, clients: int, runs: int, pushes: int) -> list[dict[str, Any]]:
    cells = []
    for run in range(1, runs + 1):
        for mode in ("single", "fleet") if run % 2 else ("fleet", "single"):
            prefix = f"bench{uuid.uuid4().hex[:6]}"
            with ExitStack() as stack:
                if mode == "single":
                    nodes = [stack.enter_context(node(None, prefix))]
                else:  # the asker's node answers nothing: every answer crosses Redis
                    nodes = [stack.enter_context(node(redis.url, prefix, consumers=0)),
                             stack.enter_context(node(redis.url, prefix, consumers=1))]  # fmt: skip
                ports = [n.port for n in nodes]
                cell = asyncio.run(asker_latency(ports, clients, pushes))
                arrived = cell.pop("arrived")
                cell |= {"mode": mode, "run": run}
                if mode == "fleet":
                    cell["hops_ms"] = hops(redis, prefix, arrived)
                    cell["received"] = [httpx.get(f"http://127.0.0.1:{p}/health").json()
                                        ["queues"]["received"] for p in ports]  # fmt: skip
            print(f"  {clients} clients, run {run}, {mode}: p50 "
                  f"{cell['latency_ms']['p50']:.2f} ms, p99 {cell['latency_ms']['p99']:.2f} ms "
                  f"({cell['answered']}/{pushes})", flush=True)  # fmt: skip
            cells.append(cell)
    return cells


# --- 2. throughput --------------------------------------------------------------------------


async def jobs_per_second(redis_url: str | None, consumers: int, jobs: int) -> float:
    from fleet import RedisJobQueues
    from queues import JobQueues, offline

    async def quiet(*args: Any, **kwargs: Any) -> None:
        return None

    service: Any
    if redis_url:
        service = RedisJobQueues(url=redis_url, prefix=f"tp{uuid.uuid4().hex[:6]}",
                                 handler=offline, emit_audio=quiet, emit_event=quiet,
                                 consumers=consumers)  # fmt: skip
    else:
        service = JobQueues(handler=offline, emit_audio=quiet, emit_event=quiet,
                            consumers=consumers)  # fmt: skip
    async with service:
        start = time.perf_counter()
        for k in range(jobs):
            await service.push_job(question(k))
        await service.wait_idle()
        return jobs / (time.perf_counter() - start)


# --- 3. takeover, 4. Redis restart ------------------------------------------------------------


def takeover_seconds(redis: RedisServer, lease: float) -> float:
    prefix = f"take{uuid.uuid4().hex[:6]}"
    worker = {"consumers": 1, "job_handler": "bench.fleet:slow", "job_lease": lease}
    with node(redis.url, prefix, **worker) as a, node(redis.url, prefix, **worker) as b:
        httpx.get(f"http://127.0.0.1:{a.port}/push?question=takeover")
        client = redis.client()
        while not client.zcard(f"{prefix}:running"):
            time.sleep(0.01)
        victim = next(n for n in (a, b) if _health(n.port)["queues"]["running"])
        job_id = client.zrange(f"{prefix}:running", 0, 0)[0]
        assert victim.proc is not None
        killed = time.time()
        victim.proc.send_signal(signal.SIGKILL)
        while json.loads(client.hget(f"{prefix}:jobs", job_id))["attempts"] < 2:
            time.sleep(0.01)
        return json.loads(client.hget(f"{prefix}:jobs", job_id))["started_at"] - killed


def restart_seconds() -> float:
    redis = RedisServer(aof=True).start()
    prefix = f"restart{uuid.uuid4().hex[:6]}"
    try:
        with node(redis.url, prefix) as a, node(redis.url, prefix) as b:
            redis.kill()
            time.sleep(1.0)
            redis.start()
            back = time.monotonic()
            for server in (a, b):
                while True:
                    pushed = httpx.get(f"http://127.0.0.1:{server.port}/push?question=hello")
                    if pushed.status_code == 200 and _health(server.port)["status"] == "ok":
                        break
                    time.sleep(0.01)
            return time.monotonic() - back
    finally:
        redis.close()


def _health(port: int) -> dict[str, Any]:
    return httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).json()


# --- report ---------------------------------------------------------------------------------


def report(args: argparse.Namespace, cells: list[dict[str, Any]], rates: dict[str, float],
           takeover: float, restart: float) -> list[str]:  # fmt: skip
    lines = ["## Cross-process job -> audio_update", "",
             "Asker on a web-only node, the consumer on another (fleet), against one "
             "in-memory process (single), same load.", ""]  # fmt: skip
    rows = []
    for clients in args.clients:
        for run in range(1, args.runs + 1):
            pair = {c["mode"]: c for c in cells if c["clients"] == clients and c["run"] == run}
            s, f = pair["single"]["latency_ms"], pair["fleet"]["latency_ms"]
            rows.append([clients, run, f"{s['p50']:.2f}", f"{f['p50']:.2f}",
                         f"{f['p50'] - s['p50']:+.2f}", f"{s['p99']:.2f}", f"{f['p99']:.2f}",
                         f"{f['p99'] - s['p99']:+.2f}"])  # fmt: skip
    lines += md_table(["clients", "run", "single p50 ms", "fleet p50 ms", "added p50",
                       "single p99 ms", "fleet p99 ms", "added p99"], rows)  # fmt: skip
    lines += ["", "Redis messages each fleet node received (asker's node first): per-client "
              "frames go to the asker's node only; broadcasts are one message per event "
              "per node, not per client.", ""]  # fmt: skip
    rows = [[c["clients"], c["run"], *(f"{r['frames']} frames, {r['events']} events"
                                      for r in c["received"])]
            for c in cells if c["mode"] == "fleet"]  # fmt: skip
    lines += md_table(["clients", "run", "web-only node (asker)", "consumer node"], rows)
    lines += ["", "Where a fleet answer's time goes (p50 ms; the asker's push to the take is "
              "one publish to the consumer's node, its wake-up and the take script; the "
              "answer is the finish script, which also routes it, one publish to the "
              "asker's node and that node's turn to read it):", ""]  # fmt: skip
    fleet_cells = [c for c in cells if c["mode"] == "fleet"]
    names = list(fleet_cells[0]["hops_ms"]) if fleet_cells else []
    rows = [[c["clients"], c["run"], *(f"{c['hops_ms'].get(n, float('nan')):.2f}" for n in names)]
            for c in fleet_cells]  # fmt: skip
    lines += md_table(["clients", "run", *names], rows)
    lines += ["", "## Jobs per second (offline handler, one process)", ""]
    lines += md_table(["queue", "jobs/s"], [[k, f"{v:.0f}"] for k, v in rates.items()])
    lines += ["", "## Recovery", ""]
    lines += md_table(["what", "seconds"], [
        [f"SIGKILL of a running job's node -> started again elsewhere (lease {args.lease:g} s)",
         f"{takeover:.2f}"],
        ["Redis restarted (AOF) -> every node pushing and healthy", f"{restart:.2f}"]])  # fmt: skip
    return lines


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.fleet",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--clients", default="200,1000", type=lambda t: [int(x) for x in t.split(",")]
    )
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--pushes", type=int, default=40)
    parser.add_argument("--jobs", type=int, default=2000, help="jobs for the jobs/s figure")
    parser.add_argument("--lease", type=float, default=2.0)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    raise_nofile(max(args.clients) * 2 + 1000)
    redis = RedisServer().start()
    try:
        cells = []
        for clients in args.clients:
            cells += latency_cells(redis, clients, args.runs, args.pushes)
        rates = {"memory, 1 consumer": asyncio.run(jobs_per_second(None, 1, args.jobs))}
        for consumers in (1, 2, 4):
            rate = asyncio.run(jobs_per_second(redis.url, consumers, args.jobs))
            rates[f"redis, {consumers} consumer(s)"] = rate
        print("  jobs/s:", ", ".join(f"{k} {v:.0f}" for k, v in rates.items()), flush=True)
        takeover = takeover_seconds(redis, args.lease)
        print(f"  takeover {takeover:.2f} s", flush=True)
    finally:
        redis.close()
    restart = restart_seconds()
    print(f"  Redis restart -> serving {restart:.2f} s", flush=True)
    lines = report(args, cells, rates, takeover, restart)
    path = write_report("fleet", "The fleet on one Redis", lines,
                        {"latency": cells, "jobs_per_second": rates, "takeover_s": takeover,
                         "redis_restart_s": restart})  # fmt: skip
    print("\n".join(lines))
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
