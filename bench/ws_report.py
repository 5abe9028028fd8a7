"""Printing and reporting for ``bench.ws_broadcast``: one line per run, a Markdown table
and JSON under bench/reports/, and the Socket.IO manager ratios."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from bench.common import fmt, md_table, write_report

TARGETS = {  # the fan-out targets
    ("native", 1000): {"cpu_us": 12.0, "p99_ms": 25.0},
    ("native", 10000): {"p99_ms": 100.0},
    ("sio-broadcast", 1000): {"cpu_us": 15.0},
    "rss_kb_per_client": 32.0,
    "job_audio_p50_ms": 5.0,
}


@dataclass
class Scenario:
    target: str  # native | sio-default | sio-emit-only | sio-broadcast
    clients: int
    rate: float
    seconds: float

    @property
    def dialect(self) -> str:
        return "native" if self.target == "native" else "socketio"

    @property
    def sio_manager(self) -> str:
        return self.target.removeprefix("sio-") if self.target != "native" else "broadcast"


@dataclass
class RunResult:
    scenario: Scenario
    run: int
    latency_ms: dict[str, float]
    cpu_us_per_delivery: float
    deliveries: int
    expected: int
    deliveries_per_s: float
    rss_kb_per_client: float
    job: dict[str, Any] | None = None
    command: str = ""


def print_result(r: RunResult) -> None:
    s, lat = r.scenario, r.latency_ms
    lost = r.expected - r.deliveries
    print(
        f"{s.target:14} n={s.clients:<6} {s.rate:g}/s run {r.run}: "
        f"p50 {fmt(lat['p50'])} p95 {fmt(lat['p95'])} p99 {fmt(lat['p99'])} "
        f"max {fmt(lat['max'])} ms | CPU {fmt(r.cpu_us_per_delivery)} us/delivery | "
        f"{r.deliveries_per_s:,.0f} deliveries/s | RSS {fmt(r.rss_kb_per_client, 1)} KB/client"
        + (f" | LOST {lost}" if lost else ""),
        flush=True,
    )
    if r.job:
        first, answer = r.job["first_audio_update_ms"], r.job["answer_audio_update_ms"]
        print(
            f"{'':14} job -> audio_update with {s.clients} clients: first p50 "
            f"{fmt(first['p50'])} p99 {fmt(first['p99'])} ms; answer p50 "
            f"{fmt(answer['p50'])} p99 {fmt(answer['p99'])} ms",
            flush=True,
        )


def ratio_lines(results: list[RunResult]) -> list[str]:
    lines = []
    by_key: dict[tuple[str, int], list[RunResult]] = {}
    for r in results:
        by_key.setdefault((r.scenario.target, r.scenario.clients), []).append(r)
    for (target, n), runs in sorted(by_key.items()):
        if target != "sio-default" or ("sio-broadcast", n) not in by_key:
            continue
        for a, b in zip(runs, by_key[("sio-broadcast", n)], strict=False):
            ratio = a.cpu_us_per_delivery / max(b.cpu_us_per_delivery, 1e-9)
            lines.append(
                f"- {n} clients, run {a.run}: Socket.IO CPU/delivery default / BroadcastManager"
                f" = {fmt(a.cpu_us_per_delivery)} / {fmt(b.cpu_us_per_delivery)} = {ratio:.2f}x"
            )
    return lines


COLUMNS: list[tuple[str, Callable[[RunResult], object]]] = [
    ("target", lambda r: r.scenario.target),
    ("clients", lambda r: r.scenario.clients),
    ("rate/s", lambda r: f"{r.scenario.rate:g}"),
    ("run", lambda r: r.run),
    ("p50 ms", lambda r: fmt(r.latency_ms["p50"])),
    ("p95 ms", lambda r: fmt(r.latency_ms["p95"])),
    ("p99 ms", lambda r: fmt(r.latency_ms["p99"])),
    ("max ms", lambda r: fmt(r.latency_ms["max"])),
    ("CPU us/delivery", lambda r: fmt(r.cpu_us_per_delivery)),
    ("deliveries/s", lambda r: f"{r.deliveries_per_s:,.0f}"),
    ("RSS KB/client", lambda r: fmt(r.rss_kb_per_client, 1)),
    ("lost", lambda r: r.expected - r.deliveries),
]


def job_table(results: list[RunResult]) -> list[str]:
    rows = []
    for r in results:
        if r.job:
            first, answer = r.job["first_audio_update_ms"], r.job["answer_audio_update_ms"]
            cells = [first["p50"], first["p99"], answer["p50"], answer["p99"]]
            rows.append([r.scenario.clients, r.run, *map(fmt, cells)])
    if not rows:
        return []
    headers = ["clients", "run", "first p50 ms", "first p99 ms", "answer p50 ms", "answer p99 ms"]
    return ["", "Job pushed -> its audio_update (native /ws):", "", *md_table(headers, rows)]


def report(results: list[RunResult], args: argparse.Namespace) -> None:
    rows = [[get(r) for _, get in COLUMNS] for r in results]
    md = md_table([name for name, _ in COLUMNS], rows) + job_table(results)
    ratios = ratio_lines(results)
    md += ["", "Ratios:", "", *(ratios or ["- (run both sio targets for the ratio)"])]
    md += ["", "Server commands:", "", *sorted({f"- `{r.command}`" for r in results})]
    md += ["", f"Targets: {TARGETS}"]
    data = {
        "app": args.app,
        "results": [asdict(r) for r in results],
        "targets": {str(k): v for k, v in TARGETS.items()},
    }
    path = write_report("ws_broadcast", f"Broadcast fan-out ({args.app} app)", md, data)
    print("\n".join(["", *ratios, f"report: {path}"]))
