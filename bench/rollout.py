"""The migration through a real proxy: a Flask and a FastAPI server on one Redis behind
HAProxy, the FastAPI share of browsers moved 0 -> 50 -> 100 % at run time.

    python -m bench.rollout                         # 200 clients, 40 pushes at 5/s
    python -m bench.rollout --clients 50 --pushes 10   # a quick look

Each step is ``bench.compare``'s latency workload through the proxy: N legacy pages
(Socket.IO over WebSocket; the last step also on native ``/ws``) connect through
HAProxy, which sends each to a server by the current weights (the handshake's
``genie_server`` cookie says which); a question is pushed every 1/rate s through the
proxy (``GET /push``, each a new browser: either server takes it). Measured, over every
client and per server kind:

- job -> ``audio_update``: scheduled push -> the answer's ``audio_update`` at a page
  (every legacy page hears every answer; on ``/ws`` only the asker does);
- broadcast: scheduled push k -> the k-th ``done_update`` at a page;
- the proxy's own cost: ``GET /health`` round trips and the same workload at 100 %
  FastAPI, straight to the server vs through HAProxy.

The servers are pinned to core 0 (``--server-core``), this load generator to core 1;
Redis and HAProxy are not pinned. Writes ``bench/reports/rollout-<stamp>.md``/``.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from bench import rawws
from bench.common import free_port, md_table, pin_self, raise_nofile, summary, write_report
from bench.compare import servers, traffic
from bench.compare.procstat import group_cpu
from bench.haproxyproc import HaproxyProcess
from bench.redisproc import RedisServer
from deploy import rollout
from deploy.haproxy import kind_of

# (label, FastAPI percent, dialect): the server stage, then the transport stage.
STEPS = (
    ("100 % Flask", 0, "socketio"),
    ("50 / 50", 50, "socketio"),
    ("100 % FastAPI", 100, "socketio"),
    ("100 % FastAPI, /ws", 100, "native"),
)
ANSWER = re.compile(rf"({traffic.TOKEN_BASE // 1000}[0-9]{{3}})(%20|\+| )plus")


class Heard:
    """Arrivals per client, by the kind of server the proxy put it on."""

    def __init__(self, listen: traffic.Listen) -> None:
        self.listen = listen  # its schedule is set when the pushes start
        self.kind: dict[int, str] = {}
        self.done_seen: Counter[int] = Counter()
        self.broadcast: dict[str, list[float]] = {}
        self.job: dict[str, list[float]] = {}

    def on_event(self, client: rawws.WsClient, name: str, data: dict[str, Any], now: float) -> None:
        kind = self.kind.get(id(client))
        if kind is None:
            server = client.cookies.get("genie_server", "direct")
            kind = self.kind[id(client)] = kind_of(server) or server
        if name == "done_update":
            k = self.done_seen[id(client)]
            self.done_seen[id(client)] += 1
            if k < len(sched := self.listen.sched):
                self.broadcast.setdefault(kind, []).append(now - sched[k])
        elif name == "audio_update":
            match = ANSWER.search(str(data.get("audioURL", "")))
            if match:
                k = int(match.group(1)) - traffic.TOKEN_BASE
                if 0 <= k < len(sched := self.listen.sched):
                    self.job.setdefault(kind, []).append(now - sched[k])


def _summaries(by_kind: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    everyone = [v for values in by_kind.values() for v in values]
    return {"all": summary(everyone), **{k: summary(v) for k, v in sorted(by_kind.items())}}


async def latency_step(
    port: int, dialect: str, clients: int, rate: float, pushes: int, pids: dict[str, int]
) -> dict[str, Any]:
    """``clients`` pages on ``port`` (the proxy or a server), ``pushes`` at ``rate``."""
    listen = traffic.Listen(expected_done=clients * pushes)
    heard = Heard(listen)

    def on_event(client: rawws.WsClient, name: str, data: dict[str, Any], now: float) -> None:
        listen.on_event(client, name, data, now)
        heard.on_event(client, name, data, now)

    conns: list[rawws.WsClient] = []
    try:
        conns = await rawws.connect_many(port, dialect, clients, on_event, within=180)
        listen.probe = conns[0]
        await asyncio.sleep(1.0)
        cpu0 = {name: group_cpu(pid) for name, pid in pids.items()}
        await traffic.drive(port, dialect, listen, rate, pushes)
        deadline = listen.sched[-1] + 15.0
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(listen.finished.wait(), max(1.0, deadline - time.time()))
        await asyncio.sleep(0.3)
        cpu = {name: group_cpu(pid) - cpu0[name] for name, pid in pids.items()}
    finally:
        await rawws.close_all(conns)
    on = Counter(kind_of(c.cookies.get("genie_server", "")) or "direct" for c in conns)
    return {
        "clients": dict(on),
        "job_audio_ms": _summaries(heard.job),
        "broadcast_ms": _summaries(heard.broadcast),
        "lost_done_updates": listen.expected_done - listen.done_total,
        "server_cpu_s": cpu,
    }


def health_rtt(url: str, count: int) -> dict[str, float]:
    """Sequential ``GET /health`` on one kept-alive connection."""
    times = []
    with httpx.Client(timeout=10) as http:
        http.get(f"{url}/health")
        for _ in range(count):
            start = time.perf_counter()
            http.get(f"{url}/health").raise_for_status()
            times.append(time.perf_counter() - start)
    return summary(times)


def run(args: argparse.Namespace) -> dict[str, Any]:
    prefix = f"rollout{uuid.uuid4().hex[:6]}"
    with contextlib.ExitStack() as stack:
        logs = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="rollout-")))
        servers.LOG_DIR[:] = [logs]
        redis = RedisServer().start()
        stack.callback(redis.close)
        env = {**servers.SERVER_ENV, "GENIE_REDIS_URL": redis.url, "GENIE_REDIS_CHANNEL": prefix}
        started = {}
        for name in (f"flask-{args.flask_mode}", "fastapi-sio"):
            target = next(t for t in servers.TARGETS if t.name == name)
            port = free_port()
            server = servers.GroupServer(target.argv(port), port, core=args.server_core, env=env)
            started[target.framework] = stack.enter_context(server)
        proxy = HaproxyProcess(
            flask=[started["flask"].port], fastapi=[started["fastapi"].port],
            percent=0, directory=logs,
        )  # fmt: skip
        stack.callback(proxy.close)
        proxy.start()
        # CPU of each server and of the proxy (each leads its own process group).
        pids = {**{kind: server.pid for kind, server in started.items()}, "haproxy": proxy.pid}
        steps = []
        for label, percent, dialect in STEPS:
            rollout.apply(proxy.api, rollout.Target(percent))
            print(f"  {label} ({dialect}) ...", flush=True)
            result = asyncio.run(latency_step(
                proxy.port, dialect, args.clients, args.rate, args.pushes, pids))  # fmt: skip
            steps.append({"label": label, "percent": percent, "dialect": dialect, **result})
        # The proxy's cost: the same workload at 100 % FastAPI, through HAProxy and
        # straight to the server, alternated so drift on a noisy machine hits both.
        rollout.apply(proxy.api, rollout.Target(100))
        fastapi_port = started["fastapi"].port
        overhead: dict[str, list[dict[str, Any]]] = {"proxy": [], "direct": []}
        for turn in range(args.overhead_runs):
            for way, port in (("proxy", proxy.port), ("direct", fastapi_port)):
                print(f"  overhead {turn + 1}/{args.overhead_runs}: {way} ...", flush=True)
                overhead[way].append(asyncio.run(latency_step(
                    port, "socketio", args.clients, args.rate, args.pushes, pids)))  # fmt: skip
        rtt = {
            "direct": health_rtt(f"http://127.0.0.1:{fastapi_port}", args.health),
            "proxy": health_rtt(proxy.url, args.health),
        }
        commands = {kind: server.command for kind, server in started.items()}
    return {"steps": steps, "overhead": overhead, "health_rtt_ms": rtt, "servers": commands}


def _cell(stats: dict[str, dict[str, float]], kind: str, q: str) -> str:
    value = stats.get(kind, {}).get(q)
    return "–" if value is None or value != value else f"{value:.1f}"


def report(args: argparse.Namespace, result: dict[str, Any]) -> list[str]:
    steps = result["steps"]
    base = steps[0]
    lines = [
        f"One Flask ({args.flask_mode}) and one FastAPI server on one Redis behind HAProxy; "
        f"{args.clients} clients per step, {args.pushes} pushes at {args.rate:g}/s. Times "
        "in ms; ratios against the 100 % Flask step (below 1: better).",
        "",
        "## Job -> audio_update",
        "",
    ]
    rows = []
    for step in steps:
        job = step["job_audio_ms"]
        rows.append([
            step["label"], step["dialect"],
            ", ".join(f"{k} {n}" for k, n in sorted(step["clients"].items())),
            _cell(job, "all", "p50"), _cell(job, "all", "p99"),
            f"{job['all']['p50'] / base['job_audio_ms']['all']['p50']:.2f}x",
            f"{job['all']['p99'] / base['job_audio_ms']['all']['p99']:.2f}x",
            f"{_cell(job, 'flask', 'p50')} / {_cell(job, 'fastapi', 'p50')}",
        ])  # fmt: skip
    lines += md_table(["step", "clients speak", "clients on", "p50", "p99", "p50 ratio",
                       "p99 ratio", "p50 on Flask / on FastAPI"], rows)  # fmt: skip
    lines += ["", "## Broadcast (push k -> k-th done_update)", ""]
    rows = []
    for step in steps:
        b = step["broadcast_ms"]
        rows.append([
            step["label"], _cell(b, "all", "p50"), _cell(b, "all", "p99"),
            f"{b['all']['p99'] / base['broadcast_ms']['all']['p99']:.2f}x",
            f"{_cell(b, 'flask', 'p99')} / {_cell(b, 'fastapi', 'p99')}",
            step["lost_done_updates"],
            ", ".join(f"{k} {v:.1f}" for k, v in step["server_cpu_s"].items()),
        ])  # fmt: skip
    lines += md_table(["step", "p50", "p99", "p99 ratio", "p99 on Flask / on FastAPI",
                       "lost done_updates", "CPU s (servers, proxy)"], rows)  # fmt: skip
    rtt = result["health_rtt_ms"]
    lines += ["", "## What the proxy adds", "",
              "`GET /health` round trips, then the latency workload at 100 % FastAPI run "
              "through HAProxy and straight to the server, alternated "
              f"({args.overhead_runs} runs each; the median run's p50 and p99).", ""]  # fmt: skip
    runs = result["overhead"]
    rows = [_added("GET /health round trip", rtt["direct"], rtt["proxy"])]
    for name, key in (("job -> audio_update", "job_audio_ms"), ("broadcast", "broadcast_ms")):
        rows.append(_added(name, _median_run(runs["direct"], key), _median_run(runs["proxy"], key)))
    lines += md_table(["measure", "direct p50", "proxy p50", "added p50", "direct p99",
                       "proxy p99", "added p99"], rows)  # fmt: skip
    cpu = {way: statistics.median(r["server_cpu_s"][who] for r in runs[way])
           for way, who in (("proxy", "haproxy"), ("direct", "fastapi"))}  # fmt: skip
    lines += ["", f"CPU during a proxied run (median): HAProxy {cpu['proxy']:.2f} s, against "
              f"{cpu['direct']:.2f} s for the FastAPI server itself on a direct run: the "
              "proxy relays every frame of every page once more.", ""]  # fmt: skip
    lines += ["", "Servers: " + "; ".join(f"`{c}`" for c in result["servers"].values())]
    return lines


def _median_run(runs: list[dict[str, Any]], key: str) -> dict[str, float]:
    return {q: statistics.median(r[key]["all"][q] for r in runs) for q in ("p50", "p99")}


def _added(name: str, direct: dict[str, float], proxied: dict[str, float]) -> list[str]:
    return [name, f"{direct['p50']:.2f}", f"{proxied['p50']:.2f}",
            f"{proxied['p50'] - direct['p50']:+.2f}", f"{direct['p99']:.2f}",
            f"{proxied['p99']:.2f}", f"{proxied['p99'] - direct['p99']:+.2f}"]  # fmt: skip


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.rollout",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--clients", type=int, default=200, help="pages per step")
    parser.add_argument("--pushes", type=int, default=40, help="questions per step")
    parser.add_argument("--rate", type=float, default=5.0, help="questions per second")
    parser.add_argument("--flask-mode", choices=("threading", "gevent"), default="threading")
    parser.add_argument("--health", type=int, default=500, help="GET /health round trips")
    parser.add_argument("--overhead-runs", type=int, default=3,
                        help="proxied/direct pairs for the proxy's cost")  # fmt: skip
    parser.add_argument("--server-core", type=int, default=0)
    parser.add_argument("--client-core", type=int, default=1)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    pin_self(args.client_core)
    raise_nofile(args.clients * 4 + 1000)
    try:
        result = run(args)
    finally:
        servers.stop_all()
    lines = report(args, result)
    path = write_report("rollout", "Flask -> FastAPI through HAProxy, step by step", lines,
                        result)  # fmt: skip
    print("\n".join(lines))
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
