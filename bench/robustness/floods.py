"""Connection floods and slow clients against one real server, while a well-behaved
client measures its latency before, during and after each.

    python -m bench.robustness.floods [--scale 2000] [--addresses 16] [--hold 3]
                                      [--calm 2] [--header-timeout 5] [--body-timeout 5]
                                      [--per-ip N] [--total N]

One ``python -m fastapi_app`` process (pinned to core 0; the generator to core 1). The
well-behaved client is a process of its own on 127.0.0.1 (so the generator's load does
not slow it): ``GET /health`` every 50 ms on a kept-alive connection; every request must
be answered 200 within 10 s. Scenarios, one after another (127.0.0.x are all loopback):

1. one address: ``scale`` WebSockets (``/ws``) from 127.0.0.2. The per-address cap
   admits ``--per-ip`` (the default 256 from scale 1,024 up, ``scale // 4`` below), the
   rest are closed 1013.
2. many addresses: ``scale`` WebSockets spread over ``--addresses`` addresses
   (127.0.1.x), each under the per-address cap; past ``--total`` (4,096) they would be
   closed 1013.
3. slowloris: ``scale`` connections over those addresses, half sending a request's
   headers a byte a second, half its body: each must be cut at its deadline
   (``--header-timeout`` with a 408, ``--body-timeout``; 5 s here, 10 s / 30 s by
   default).

Rows: connections tried, refused or cut (seen by the clients, and counted by the
server's ``genie_connections_refused_total``), the well-behaved client's p50/p99 per
phase and its unanswered requests.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import re
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event
from typing import Any

from bench.common import (
    ServerProcess,
    fmt,
    free_port,
    pin_self,
    python,
    raise_nofile,
    summary,
)
from bench.rawws import WsClient, close_all
from bench.robustness.report import Section, section_markdown, write_part

PROBE_EVERY = 0.05  # seconds between the well-behaved client's requests
PROBE_TIMEOUT = 10.0  # an answer slower than this is a failure
PARALLEL = 200  # handshakes at once (well under uvicorn's listen backlog of 2,048)
CUT_SLACK = 10.0  # seconds past its deadline a slow connection may still be open
DEFAULT_PER_IP, DEFAULT_TOTAL = 256, 4096
COLUMNS = ["scenario", "connections", "refused / cut", "server counted",
           "p50 / p99 before (ms)", "during", "after", "unanswered"]  # fmt: skip
Samples = list[tuple[float, float | None]]  # (sent at, seconds; None: not answered 200)


@dataclass
class Outcome:
    """What one scenario's clients saw (``refused``: closed 1013 or cut by a deadline)."""

    tried: int = 0
    refused: int = 0
    failures: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Plan:
    scale: int
    addresses: int
    hold: float
    per_ip: int
    total: int
    header_timeout: float
    body_timeout: float

    def spread(self, prefix: str) -> list[str]:
        """``scale`` source addresses, round robin over ``addresses`` of ``prefix``.x."""
        return [f"{prefix}.{1 + i % self.addresses}" for i in range(self.scale)]


# --- the well-behaved client: a process of its own -----------------------------------------


def probe(port: int, stop: Event, out: Connection) -> None:
    """GET /health every PROBE_EVERY s until ``stop``; send back (sent at, seconds)."""
    samples: Samples = []
    conn: http.client.HTTPConnection | None = None
    while not stop.is_set():
        sent, started = time.time(), time.perf_counter()
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=PROBE_TIMEOUT,
                                                  source_address=("127.0.0.1", 0))  # fmt: skip
            conn.request("GET", "/health")
            response = conn.getresponse()
            response.read()
            ok = response.status == 200
        except (OSError, http.client.HTTPException):
            ok = False
            conn.close()
            conn = None
        if not samples:
            out.send("ready")  # the scenarios wait for this: no phase goes unmeasured
        samples.append((sent, time.perf_counter() - started if ok else None))
        time.sleep(PROBE_EVERY)
    out.send(samples)


@contextlib.contextmanager
def well_behaved_client(port: int) -> Iterator[Callable[[], Samples]]:
    """Start the probe; yields a function that stops it and returns its samples."""
    context = get_context("spawn")
    stop, (receiver, sender) = context.Event(), context.Pipe(duplex=False)
    process = context.Process(target=probe, args=(port, stop, sender), daemon=True)
    process.start()
    if not receiver.poll(30) or receiver.recv() != "ready":
        process.kill()
        raise RuntimeError("the well-behaved client did not start within 30 s")

    def finish() -> Samples:
        stop.set()
        samples: Samples = receiver.recv() if receiver.poll(PROBE_TIMEOUT + 5) else []
        process.join(5)
        return samples

    try:
        yield finish
    finally:
        if process.is_alive():
            process.kill()


# --- scenario 1 and 2: WebSocket floods ------------------------------------------------------


async def ws_connect(port: int, source: str) -> WsClient:
    """A native /ws connection from ``source``; settled once greeted or closed."""
    loop = asyncio.get_running_loop()
    _, client = await loop.create_connection(
        lambda: WsClient(f"127.0.0.1:{port}", "/ws", "native", lambda *_: None),
        "127.0.0.1", port, local_addr=(source, 0),
    )  # fmt: skip
    await asyncio.wait([client.ready, client.closed], timeout=30,
                       return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
    return client


def held(client: WsClient) -> bool:
    ready = client.ready
    return ready.done() and ready.exception() is None  # exception() also marks it seen


async def ws_flood(port: int, sources: list[str], hold: float) -> Outcome:
    """Open a WebSocket from each source, keep the admitted ones ``hold`` s, close all."""
    gate = asyncio.Semaphore(PARALLEL)

    async def one(source: str) -> WsClient | BaseException:
        async with gate:
            try:
                return await ws_connect(port, source)
            except OSError as exc:
                return exc

    results = await asyncio.gather(*(one(source) for source in sources))
    clients = [c for c in results if isinstance(c, WsClient)]
    admitted = [c for c in clients if held(c)]
    codes = [c.close_code for c in clients if not held(c)]
    outcome = Outcome(tried=len(sources), refused=codes.count(1013))
    outcome.figures = {"admitted": len(admitted), "closed_1013": codes.count(1013)}
    errors = [r for r in results if not isinstance(r, WsClient)]
    if others := [c for c in codes if c != 1013] + errors:
        outcome.failures.append(f"{len(others)} connections neither admitted nor closed 1013: "
                                f"{sorted(map(str, others))[:5]}")  # fmt: skip
    await asyncio.sleep(hold)
    await close_all(admitted)
    return outcome


def expected_admitted(sources: list[str], per_ip: int, total: int) -> int:
    """How many of ``sources``' connections the caps admit (0: no cap), in any order."""
    counts = Counter(sources)
    admitted = sum(min(n, per_ip) if per_ip else n for n in counts.values())
    return min(admitted, total) if total else admitted


def check_admitted(outcome: Outcome, expected: int) -> None:
    # The probe's own connection and a /metrics scrape may take 2 of the total cap.
    admitted = outcome.figures["admitted"]
    if not expected - 2 <= admitted <= expected:
        outcome.failures.append(f"{admitted} connections admitted, {expected} expected")


# --- scenario 3: slowloris ---------------------------------------------------------------------

SLOW_HEADERS = (b"GET /health HTTP/1.1\r\nHost: bench\r\nX-Slow-", b"a")  # a name never ends
SLOW_BODY = (b"POST /api/v1/tts HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
             b"Content-Length: 100000\r\n\r\n", b" ")  # fmt: skip


class SlowClient(asyncio.Protocol):
    """Sends ``head`` at once, then a byte of ``drip`` per ``tick()``, until it is cut."""

    def __init__(self, head: bytes, drip: bytes) -> None:
        self.head, self.drip = head, drip
        self.transport: asyncio.Transport | None = None
        self.opened = time.monotonic()
        self.cut_after: float | None = None  # seconds from connecting to being cut
        self.answer = b""
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass
        self.opened = time.monotonic()
        transport.write(self.head)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        self.answer += data[:64]

    def connection_lost(self, exc: Exception | None) -> None:
        self.cut_after = time.monotonic() - self.opened
        if not self.lost.done():
            self.lost.set_result(None)

    def tick(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(self.drip)


async def open_slow(port: int, sources: list[str]) -> list[SlowClient]:
    """One slow client per source: even ones drip headers, odd ones a body."""
    loop, gate = asyncio.get_running_loop(), asyncio.Semaphore(PARALLEL)

    async def one(index: int, source: str) -> SlowClient:
        head, drip = SLOW_HEADERS if index % 2 == 0 else SLOW_BODY
        async with gate:
            _, client = await loop.create_connection(
                lambda: SlowClient(head, drip), "127.0.0.1", port, local_addr=(source, 0)
            )
        return client

    return list(await asyncio.gather(*(one(i, s) for i, s in enumerate(sources))))


async def drip_until_cut(clients: list[SlowClient], wait: float) -> list[SlowClient]:
    """A byte a second from every client until all are cut or ``wait`` s passed; the
    survivors, aborted by us."""

    async def drip() -> None:
        while True:
            await asyncio.sleep(1.0)
            for client in clients:
                client.tick()

    dripping = asyncio.create_task(drip())
    await asyncio.wait([c.lost for c in clients], timeout=wait)
    dripping.cancel()
    survivors = [c for c in clients if not c.lost.done()]
    for client in survivors:
        assert client.transport is not None
        client.transport.abort()
    return survivors


async def slowloris(port: int, plan: Plan) -> Outcome:
    clients = await open_slow(port, plan.spread("127.0.2"))
    survivors = await drip_until_cut(clients, max(plan.header_timeout, plan.body_timeout) +
                                     CUT_SLACK)  # fmt: skip
    cut = [c for c in clients if c not in survivors]
    outcome = Outcome(tried=len(clients), refused=len(cut))
    headers = [c for c in cut if c.head == SLOW_HEADERS[0]]
    bodies = [c for c in cut if c.head == SLOW_BODY[0]]
    told = sum(c.answer.startswith(b"HTTP/1.1 408 ") for c in headers)
    cut_headers = summary([c.cut_after or 0.0 for c in headers], scale=1.0)
    cut_body = summary([c.cut_after or 0.0 for c in bodies], scale=1.0)
    outcome.figures = {"cut_headers_s": cut_headers, "cut_body_s": cut_body, "told_408": told}
    outcome.notes.append(
        f"slowloris: cut {fmt(cut_headers['p50'], 1)} / {fmt(cut_headers['p99'], 1)} s "
        f"(p50 / p99) after connecting with slow headers ({told} of {len(headers)} told "
        f"408), {fmt(cut_body['p50'], 1)} / {fmt(cut_body['p99'], 1)} s with a slow body; "
        f"deadlines {plan.header_timeout:g} / {plan.body_timeout:g} s."
    )
    if survivors:
        outcome.failures.append(f"{len(survivors)} slow connections still open "
                                f"{CUT_SLACK:g} s past their deadline")  # fmt: skip
    if told < len(headers):
        outcome.failures.append(f"{len(headers) - told} slow-header connections cut without 408")
    return outcome


# --- the run ------------------------------------------------------------------------------------


def refused_counts(port: int) -> dict[str, float]:
    """The server's ``genie_connections_refused_total`` by reason."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    pattern = r'^genie_connections_refused_total\{reason="(\w+)"\} ([0-9.e+]+)$'
    return {m[1]: float(m[2]) for m in re.finditer(pattern, text, re.MULTILINE)}


def counted(before: dict[str, float], after: dict[str, float]) -> str:
    grown = {k: int(v - before.get(k, 0)) for k, v in after.items() if v > before.get(k, 0)}
    return ", ".join(f"{reason} {n}" for reason, n in sorted(grown.items())) or "0"


def scenarios(port: int, plan: Plan) -> list[tuple[str, Callable[[], Any]]]:
    one, many = ["127.0.0.2"] * plan.scale, plan.spread("127.0.1")

    async def flood(sources: list[str]) -> Outcome:
        outcome = await ws_flood(port, sources, plan.hold)
        check_admitted(outcome, expected_admitted(sources, plan.per_ip, plan.total))
        return outcome

    return [
        ("WebSocket flood, one address", lambda: flood(one)),
        (f"WebSocket flood, many addresses ({len(set(many))})", lambda: flood(many)),
        ("slowloris (half headers, half body)", lambda: slowloris(port, plan)),
    ]


@dataclass
class Played:
    name: str
    outcome: Outcome
    marks: tuple[float, float, float, float]  # start, flood starts, flood over, end
    counted: str  # what the server counted meanwhile


async def play(name: str, action: Callable[[], Any], port: int, calm: float) -> Played:
    """``calm`` s before, the action (the 'during' phase), ``calm`` s after."""
    start = time.time()
    await asyncio.sleep(calm)
    before, during = await asyncio.to_thread(refused_counts, port), time.time()
    outcome = await action()
    after = time.time()
    await asyncio.sleep(calm)
    grown = counted(before, await asyncio.to_thread(refused_counts, port))
    return Played(name, outcome, (start, during, after, time.time()), grown)


def phases(samples: Samples, marks: tuple[float, float, float, float]) -> dict[str, Samples]:
    names = ("before", "during", "after")
    return {name: [s for s in samples if marks[i] <= s[0] < marks[i + 1]]
            for i, name in enumerate(names)}  # fmt: skip


def row(played: Played, samples: Samples) -> tuple[list[str], dict[str, Any], int]:
    """The table row, the figures and the unanswered requests of one scenario."""
    cells, figures, unanswered = [], {}, 0
    for phase, got in phases(samples, played.marks).items():
        stats = summary([seconds for _, seconds in got if seconds is not None])
        unanswered += sum(seconds is None for _, seconds in got)
        figures[phase] = stats
        cells.append(f"{fmt(stats['p50'], 1)} / {fmt(stats['p99'], 1)} (n={stats['n']})")
    outcome = played.outcome
    cells = [played.name, str(outcome.tried), str(outcome.refused), played.counted, *cells,
             str(unanswered)]  # fmt: skip
    return cells, {**outcome.figures, "tried": outcome.tried, "refused": outcome.refused,
                   "server_counted": played.counted, "probe_ms": figures}, unanswered  # fmt: skip


def section_of(plan: Plan, played: list[Played], samples: Samples, command: str) -> Section:
    section = Section("Floods: connection caps and slow clients", COLUMNS)
    section.figures = {"plan": asdict(plan), "connections_tried": 0}
    for one in played:
        cells, figures, unanswered = row(one, samples)
        section.rows.append(cells)
        section.figures[one.name] = figures
        section.figures["connections_tried"] += one.outcome.tried
        section.failures += [f"{one.name}: {failure}" for failure in one.outcome.failures]
        section.notes += one.outcome.notes
        if unanswered:
            section.failures.append(f"{one.name}: the well-behaved client had {unanswered} "
                                    "requests unanswered")  # fmt: skip
    section.notes += [
        f"Server: `{command}`. Well-behaved client: GET /health every "
        f"{PROBE_EVERY * 1000:g} ms from 127.0.0.1, its own process; p50 / p99 in ms.",
        "refused / cut: closed 1013 by a connection cap, or cut by a header (408) or body "
        "deadline, as the clients saw it; server counted: genie_connections_refused_total.",
    ]
    return section


def plan_of(scale: int, addresses: int, hold: float, per_ip: int | None, total: int | None,
            header_timeout: float, body_timeout: float) -> Plan:  # fmt: skip
    if per_ip is None:  # the default, or a quarter of a smaller flood: the cap is met
        per_ip = DEFAULT_PER_IP if scale >= 4 * DEFAULT_PER_IP else max(1, scale // 4)
    total = DEFAULT_TOTAL if total is None else total
    return Plan(max(1, scale), max(1, addresses), hold, per_ip, total, header_timeout,
                body_timeout)  # fmt: skip


def server_of(plan: Plan) -> ServerProcess:
    port = free_port()
    argv = [python(), "-m", "fastapi_app", "--port", str(port), "--log-level", "warning"]
    env = {"GENIE_MAX_CONNECTIONS_PER_IP": str(plan.per_ip),
           "GENIE_MAX_CONNECTIONS": str(plan.total),
           "GENIE_HEADER_TIMEOUT": str(plan.header_timeout),
           "GENIE_BODY_TIMEOUT": str(plan.body_timeout),
           # Nothing here is spoken (a slow body never arrives): skip espeak's start-up.
           "GENIE_TTS_PROVIDERS": "sample"}  # fmt: skip
    return ServerProcess(argv, port, core=0, env=env)


async def run(
    scale: int = 2000,
    *,
    addresses: int = 16,
    hold: float = 3.0,
    calm: float = 2.0,
    header_timeout: float = 5.0,
    body_timeout: float = 5.0,
    per_ip: int | None = None,
    total: int | None = None,
    progress: Callable[[str], None] = print,
) -> Section:
    """Every scenario against one server process; see the module's docstring."""
    plan = plan_of(scale, addresses, hold, per_ip, total, header_timeout, body_timeout)
    raise_nofile(2 * plan.scale + 1024)
    played: list[Played] = []
    with server_of(plan) as server, well_behaved_client(server.port) as finish:
        for name, action in scenarios(server.port, plan):
            progress(f"[floods] {name}: {plan.scale} connections")
            played.append(await play(name, action, server.port, calm))
            progress(f"[floods] {name}: {played[-1].outcome.refused} refused or cut, "
                     f"server counted {played[-1].counted}")  # fmt: skip
        samples = finish()
    return section_of(plan, played, samples, server.command)


# --- command line -----------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.robustness.floods", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--scale", type=int, default=2000, help="connections per scenario")
    parser.add_argument("--addresses", type=int, default=16, help="loopback addresses")
    parser.add_argument("--hold", type=float, default=3.0, help="seconds floods stay open")
    parser.add_argument("--calm", type=float, default=2.0, help="seconds before and after")
    parser.add_argument("--header-timeout", type=float, default=5.0, help="server's (s)")
    parser.add_argument("--body-timeout", type=float, default=5.0, help="server's (s)")
    parser.add_argument("--per-ip", type=int, default=None, help="server's per-address cap")
    parser.add_argument("--total", type=int, default=None, help="server's total cap")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    pin_self(1)  # the generator; the server is on core 0
    result = asyncio.run(run(args.scale, addresses=args.addresses, hold=args.hold,
                             calm=args.calm, header_timeout=args.header_timeout,
                             body_timeout=args.body_timeout, per_ip=args.per_ip,
                             total=args.total))  # fmt: skip
    path = write_part("floods", result)
    print("\n".join(section_markdown(result)))
    print(f"report: {path}")


if __name__ == "__main__":
    main()
