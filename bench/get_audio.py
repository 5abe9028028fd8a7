"""Time to first audio byte and total time of ``GET /api/get-audio`` over loopback.

    python -m bench.get_audio            # 100 and 5,000 characters x 1, 10, 50 at once
    python -m bench.get_audio --quick    # fewer requests

The server is the real one, ``python -m fastapi_app`` (full stage, espeak-ng, MP3),
started as its own process pinned to core 0; this client runs on core 1 and keeps its
connections alive, so connection setup is not timed. Every request asks for a text no
other request used (a numbered first sentence) and the server's audio cache is off, so
every request synthesizes. First byte = request sent -> first body bytes received;
total = request sent -> end of the stream. Reported: p50/p99 per text length and
concurrency, and the p50 ratio 5,000 / 100 characters of each.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import time
from dataclasses import asdict, dataclass
from typing import Any

import aiohttp

from bench.common import (
    NO_CLIENT_LIMITS_ENV,
    ServerProcess,
    fmt,
    free_port,
    md_table,
    pin_self,
    python,
    summary,
    write_report,
)

TARGETS = {"first_byte_p50_ms": 30.0, "first_byte_p99_ms": 100.0, "ratio_5000_100": 1.5}
SERVER_ENV = {
    "GENIE_LOG_LEVEL": "warning",
    "GENIE_TTS_CACHE_ENTRIES": "0",  # measure synthesis, not the cache
    **NO_CLIENT_LIMITS_ENV,  # one client sends everything, up to 50 at once
    "GENIE_CLOCK_INTERVAL": "3600",
}
CORPUS = (
    "The forecast for tomorrow is mild, with a light breeze from the west and highs "
    "near nineteen degrees. Rain may reach the coast by late afternoon, so an umbrella "
    "would be wise. Your next meeting starts at half past ten in the small room on the "
    "second floor. I have added milk, eggs and coffee to the shopping list. The train "
    "to the city leaves every twenty minutes until midnight. "
)
counter = itertools.count(1)


def make_text(chars: int) -> str:
    """About ``chars`` characters of natural text, unique per call (no cache hits)."""
    head = f"Request {next(counter)}. "
    body = (CORPUS * (chars // len(CORPUS) + 1))[: max(chars - len(head), 10)]
    return head + body.rsplit(" ", 1)[0] + "."


@dataclass
class Cell:
    chars: int
    concurrency: int
    first_byte_ms: dict[str, float]
    total_ms: dict[str, float]
    audio_kb: float
    errors: int


async def fetch(http: aiohttp.ClientSession, url: str, chars: int) -> tuple[float, float, int]:
    """(seconds to first body byte, seconds to the end, body bytes) of one request."""
    started = time.perf_counter()
    async with http.get(url, params={"msg": make_text(chars)}) as response:
        response.raise_for_status()
        first = None
        size = 0
        async for chunk in response.content.iter_any():
            if first is None and chunk:
                first = time.perf_counter()
            size += len(chunk)
    done = time.perf_counter()
    return (first or done) - started, done - started, size


async def measure(
    http: aiohttp.ClientSession, url: str, chars: int, concurrency: int, requests: int
) -> Cell:
    firsts, totals, sizes, errors = [], [], [], 0
    for _ in range(max(1, requests // concurrency)):
        batch = [fetch(http, url, chars) for _ in range(concurrency)]
        for result in await asyncio.gather(*batch, return_exceptions=True):
            if isinstance(result, BaseException):
                errors += 1
                continue
            firsts.append(result[0])
            totals.append(result[1])
            sizes.append(result[2])
    return Cell(
        chars,
        concurrency,
        summary(firsts),
        summary(totals),
        sum(sizes) / max(len(sizes), 1) / 1024,
        errors,
    )


def request_count(chars: int, concurrency: int, quick: bool) -> int:
    # Long texts synthesize and encode minutes of audio each: fewer of them.
    base = 20 if quick else 100
    if chars > 1000:
        base //= 4
    return max(base, concurrency * (1 if quick else 2))


async def run(args: argparse.Namespace) -> list[Cell]:
    port = free_port()
    argv = [python(), "-m", "fastapi_app", "--port", str(port), "--stage", "full"]
    cells = []
    with ServerProcess(argv, port, core=args.server_core, env=SERVER_ENV) as server:
        print(f"server: {server.command}", flush=True)
        url = f"http://127.0.0.1:{port}/api/get-audio"
        limits = aiohttp.TCPConnector(limit=max(args.concurrency) + 5)
        timeout = aiohttp.ClientTimeout(total=300)
        async with aiohttp.ClientSession(connector=limits, timeout=timeout) as http:
            await measure(http, url, 100, 1, 5)  # warm up: imports, voices, connections
            for concurrency in args.concurrency:
                for chars in args.lengths:
                    n = request_count(chars, concurrency, args.quick)
                    cell = await measure(http, url, chars, concurrency, n)
                    print_cell(cell)
                    cells.append(cell)
        args.command = server.command
    return cells


def print_cell(c: Cell) -> None:
    fb, total = c.first_byte_ms, c.total_ms
    print(
        f"{c.chars:>5} chars x{c.concurrency:<3} first byte p50 {fmt(fb['p50'])} "
        f"p99 {fmt(fb['p99'])} ms | total p50 {fmt(total['p50'])} p99 {fmt(total['p99'])} ms"
        f" | {c.audio_kb:.0f} KB | n={fb['n']}" + (f" | ERRORS {c.errors}" if c.errors else ""),
        flush=True,
    )


def ratios(cells: list[Cell]) -> list[tuple[int, float]]:
    out = []
    for conc in sorted({c.concurrency for c in cells}):
        by_len = {c.chars: c for c in cells if c.concurrency == conc}
        if 100 in by_len and 5000 in by_len:
            out.append((conc, by_len[5000].first_byte_ms["p50"] / by_len[100].first_byte_ms["p50"]))
    return out


def report(cells: list[Cell], args: argparse.Namespace) -> None:
    rows = [
        [
            c.chars,
            c.concurrency,
            fmt(c.first_byte_ms["p50"]),
            fmt(c.first_byte_ms["p99"]),
            fmt(c.first_byte_ms["max"]),
            fmt(c.total_ms["p50"]),
            fmt(c.total_ms["p99"]),
            f"{c.audio_kb:.0f}",
            c.first_byte_ms["n"],
            c.errors,
        ]
        for c in cells
    ]
    md = md_table(
        [
            "chars",
            "concurrent",
            "first byte p50 ms",
            "p99 ms",
            "max ms",
            "total p50 ms",
            "total p99 ms",
            "KB",
            "n",
            "errors",
        ],
        rows,
    )
    ratio_lines = [
        f"- {conc} concurrent: first byte p50 5000/100 = {r:.2f}" for conc, r in ratios(cells)
    ]
    md += ["", "Ratios:", "", *ratio_lines, "", f"Server: `{args.command}`", f"Targets: {TARGETS}"]
    data: dict[str, Any] = {"cells": [asdict(c) for c in cells], "targets": TARGETS}
    path = write_report("get_audio", "GET /api/get-audio first byte and total", md, data)
    print("\n".join(["", *ratio_lines, f"report: {path}"]))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--lengths", default="100,5000")
    p.add_argument("--concurrency", default="1,10,50")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--server-core", type=int, default=0)
    p.add_argument("--client-core", type=int, default=1)
    args = p.parse_args(argv)
    args.lengths = [int(n) for n in args.lengths.split(",")]
    args.concurrency = [int(n) for n in args.concurrency.split(",")]
    pin_self(args.client_core)
    cells = asyncio.run(run(args))
    report(cells, args)


if __name__ == "__main__":
    main()
