"""Overload: offer twice what the server can answer, for minutes, and watch it shed load.

    python -m bench.overload                     # 3 minutes at 2x, 200 /ws clients
    python -m bench.overload --seconds 30        # a quick look

1. **Capacity**: the same clients ask as fast as the server answers (caps off in effect:
   every client keeps ``GENIE_MAX_QUEUED_PER_CLIENT`` questions in flight) for
   ``--capacity-seconds``; answers per second is the capacity.
2. **Overload**: a fresh server with the kit's caps (``GENIE_MAX_QUEUED``,
   ``GENIE_MAX_QUEUED_PER_CLIENT``, ``GENIE_MAX_WAIT``, defaults unless given), the
   clients asking at ``--factor`` x capacity in total, evenly spread, for ``--seconds``.
   Every question gets ``queued`` or ``error busy``; for the accepted ones, question ->
   answer (``audio_update``) p50/p99 per 10 s window (flat means the wait is bounded);
   the refused share; jobs that expired; server RSS at the start and the end; the todo
   depth every second (``/health``), drawn as a small plot.

Server on core 0, this load generator on core 1 (``taskset``). Writes
``bench/reports/overload-<stamp>.md``, ``.json`` and ``.png``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench import rawws
from bench.common import (
    REPORTS,
    free_port,
    md_table,
    pin_self,
    python,
    raise_nofile,
    rss_kb,
    summary,
    write_report,
)
from bench.compare.servers import SERVER_ENV, GroupServer

TOKEN = 400_000  # questions "what is <TOKEN+n> plus 1": the answer names its number


@dataclass
class Asker:
    """One /ws client's questions, answered (or refused) in the order it sent them."""

    client: rawws.WsClient
    sent: deque[tuple[int, float]] = field(default_factory=deque)  # awaiting queued/busy
    waiting: dict[int, float] = field(default_factory=dict)  # accepted, not yet answered


@dataclass
class Tally:
    started: float = 0.0
    accepted: int = 0
    refused: int = 0
    answered: list[tuple[float, float]] = field(default_factory=list)  # (at, latency)
    expired: int = 0
    errors: dict[str, int] = field(default_factory=dict)


def serve(port: int, core: int | None, **settings: Any) -> GroupServer:
    """The comparison's server settings, with the caps under test put back."""
    env = dict(SERVER_ENV)
    env |= {f"GENIE_{k.upper()}": str(v) for k, v in settings.items() if v is not None}
    argv = [python(), "-m", "fastapi_app", "--host", "127.0.0.1", "--port", str(port)]
    return GroupServer(argv, port, core=core, env=env)


class Load:
    def __init__(self) -> None:
        self.askers: dict[int, Asker] = {}
        self.tally = Tally()
        self.next_n = 0

    @classmethod
    async def connect(cls, port: int, clients: int) -> tuple[Load, list[rawws.WsClient]]:
        """``clients`` /ws connections whose frames this load reads."""
        load = cls()
        conns = await rawws.connect_many(port, "native", clients, load.on_event)
        load.askers = {id(c): Asker(c) for c in conns}
        return load, conns

    def on_event(
        self, client: rawws.WsClient, kind: str, frame: dict[str, Any], now: float
    ) -> None:
        asker = self.askers.get(id(client))
        if asker is None:
            return
        if kind in ("queued", "error") and asker.sent:
            n, at = asker.sent.popleft()
            if kind == "queued":
                self.tally.accepted += 1
                asker.waiting[n] = at
            else:
                code = str(frame.get("code"))
                if code == "busy":  # which cap: the message says "your questions" for its own
                    self.tally.refused += 1
                    code = (
                        "busy (client)" if "your" in str(frame.get("message")) else "busy (total)"
                    )
                self.tally.errors[code] = self.tally.errors.get(code, 0) + 1
        elif kind == "audio_update":
            url = str(frame.get("audioURL", ""))
            for n in list(asker.waiting):
                if f"{TOKEN + n}%20plus" in url:
                    self.tally.answered.append((now, now - asker.waiting.pop(n)))
                    break
            else:
                if "too%20busy" in url:
                    self.tally.expired += 1

    def ask(self, asker: Asker) -> None:
        n, self.next_n = self.next_n, self.next_n + 1
        asker.sent.append((n, time.time()))
        asker.client.send_json({"type": "query", "text": f"what is {TOKEN + n} plus 1"})

    def in_flight(self, asker: Asker) -> int:
        return len(asker.sent) + len(asker.waiting)


async def capacity(port: int, clients: int, seconds: float, per_client: int) -> float:
    """Answers per second with every client keeping ``per_client`` questions in flight."""
    load, conns = await Load.connect(port, clients)
    try:
        start = time.time()
        while time.time() - start < seconds:
            for asker in load.askers.values():
                while load.in_flight(asker) < per_client:
                    load.ask(asker)
            await asyncio.sleep(0.01)
        return len(load.tally.answered) / (time.time() - start)
    finally:
        await rawws.close_all(conns)


async def overload(
    port: int, pid: int, clients: int, rate: float, seconds: float
) -> dict[str, Any]:
    load, conns = await Load.connect(port, clients)
    tally = load.tally
    askers = list(load.askers.values())
    depth: list[tuple[float, int]] = []
    rss_start = rss_kb(pid)
    tally.started = start = time.time()

    async def watch() -> None:
        async with httpx.AsyncClient(timeout=5) as http:
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    health = (await http.get(f"http://127.0.0.1:{port}/health")).json()
                    depth.append((time.time() - start, health["jobs"]["todo"]))
                await asyncio.sleep(1.0)

    watcher = asyncio.create_task(watch())
    try:
        k = 0
        while (elapsed := time.time() - start) < seconds:
            due = int(elapsed * rate)
            while k < due:  # round-robin over the clients, on schedule
                load.ask(askers[k % len(askers)])
                k += 1
            await asyncio.sleep(0.005)
        await asyncio.sleep(5)  # the answers to the last accepted questions
        rss_end = rss_kb(pid)
    finally:
        watcher.cancel()
        await rawws.close_all(conns)
    windows = []
    for w in range(0, int(seconds), 10):
        lat = [lat for at, lat in tally.answered if w <= at - start < w + 10]
        windows.append({"from_s": w, **summary(lat)})
    offered = tally.accepted + tally.refused
    return {
        "offered": offered,
        "accepted": tally.accepted,
        "refused": tally.refused,
        "refused_share": tally.refused / offered if offered else 0.0,
        "answered": len(tally.answered),
        "expired_heard": tally.expired,
        "errors": tally.errors,
        "latency_ms": summary([lat for _, lat in tally.answered]),
        "windows_ms": windows,
        "rss_kb": {"start": rss_start, "end": rss_end, "growth": rss_end - rss_start},
        "depth": depth,
    }


def plot(depth: list[tuple[float, int]], cap: int, path: Any) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 2.4), dpi=100)
    ax.plot([t for t, _ in depth], [d for _, d in depth], lw=1.2)
    ax.axhline(cap, color="grey", ls="--", lw=0.8, label=f"GENIE_MAX_QUEUED={cap}")
    ax.set_xlabel("seconds")
    ax.set_ylabel("todo depth")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def report(
    args: argparse.Namespace, cap_rate: float, result: dict[str, Any], png: str
) -> list[str]:
    lat, rss = result["latency_ms"], result["rss_kb"]
    lines = [
        f"{args.clients} /ws clients; capacity {cap_rate:.0f} answers/s "
        f"(measured for {args.capacity_seconds:g} s); offered {args.factor:g}x = "
        f"{cap_rate * args.factor:.0f} questions/s for {args.seconds:g} s; caps "
        f"GENIE_MAX_QUEUED={args.max_queued}, GENIE_MAX_QUEUED_PER_CLIENT="
        f"{args.max_per_client}, GENIE_MAX_WAIT={args.max_wait:g}.",
        "",
    ]
    lines += md_table(["figure", "value"], [
        ["questions offered", result["offered"]],
        ["accepted / refused (busy)", f"{result['accepted']} / {result['refused']} "
                                       f"({result['refused_share']:.1%} refused)"],
        ["answered", result["answered"]],
        ["expired (asker told)", result["expired_heard"]],
        ["question -> answer, accepted: p50 / p99 ms", f"{lat['p50']:.0f} / {lat['p99']:.0f}"],
        ["server RSS start / end / growth (MB)",
         f"{rss['start'] / 1024:.1f} / {rss['end'] / 1024:.1f} / {rss['growth'] / 1024:+.1f}"],
        ["refusals and errors by kind", result["errors"]],
    ])  # fmt: skip
    lines += ["", "## Question -> answer per 10 s window (accepted questions)", ""]
    lines += md_table(["from s", "answers", "p50 ms", "p99 ms"], [
        [w["from_s"], w.get("n", 0), f"{w.get('p50', float('nan')):.0f}",
         f"{w.get('p99', float('nan')):.0f}"] for w in result["windows_ms"]])  # fmt: skip
    lines += ["", "## Todo depth", "", f"![todo depth]({png})"]
    return lines


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.overload", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    # 200 clients x 3 in flight each can pass the total cap of 500: both caps act.
    p.add_argument("--clients", type=int, default=200)
    p.add_argument("--seconds", type=float, default=180.0, help="overload duration")
    p.add_argument("--capacity-seconds", type=float, default=15.0)
    p.add_argument("--factor", type=float, default=2.0, help="offered / capacity")
    p.add_argument("--max-queued", type=int, default=500)
    p.add_argument("--max-per-client", type=int, default=3)
    p.add_argument("--max-wait", type=float, default=60.0)
    p.add_argument("--server-core", type=int, default=0)
    p.add_argument("--client-core", type=int, default=1)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    pin_self(args.client_core)
    raise_nofile(args.clients * 4 + 1000)
    caps = {"max_queued": args.max_queued, "max_queued_per_client": args.max_per_client,
            "max_wait": args.max_wait}  # fmt: skip
    port = free_port()
    with serve(port, args.server_core, **caps) as server:
        print("measuring capacity ...", flush=True)
        cap_rate = asyncio.run(
            capacity(port, args.clients, args.capacity_seconds, max(args.max_per_client, 1))
        )
    print(f"  capacity {cap_rate:.0f} answers/s", flush=True)
    port = free_port()
    with serve(port, args.server_core, **caps) as server:
        print(f"offering {args.factor:g}x for {args.seconds:g} s ...", flush=True)
        result = asyncio.run(
            overload(port, server.pid, args.clients, cap_rate * args.factor, args.seconds)
        )
    REPORTS.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    png = REPORTS / f"overload-{stamp}.png"
    plot(result["depth"], args.max_queued, png)
    lines = report(args, cap_rate, result, png.name)
    path = write_report("overload", "Overload: 2x capacity, shed at once", lines,
                        {"capacity_per_s": cap_rate, **result, "args": vars(args)})  # fmt: skip
    print("\n".join(lines))
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
