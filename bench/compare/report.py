"""The Markdown report: one table per workload, the four servers side by side, ratios,
and the issue's targets as met / missed with the figures behind them."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from bench.common import fmt, md_table
from bench.compare.servers import TARGET_NAMES

Results = dict[str, dict[str, Any]]  # target name -> that target's result for a workload
RATIOS = (
    ("fastapi-ws", "flask-threading"),
    ("fastapi-ws", "flask-gevent"),
    ("fastapi-sio", "flask-gevent"),
)
HEADERS = ["metric", *TARGET_NAMES, *(f"{a} / {b}" for a, b in RATIOS)]


def _get(result: dict[str, Any] | None, path: tuple[Any, ...]) -> float:
    value: Any = result
    for key in path:
        if not isinstance(value, dict | list) or value is None:
            return float("nan")
        try:
            value = value[key]
        except (KeyError, IndexError):
            return float("nan")
    return float(value) if isinstance(value, int | float) else float("nan")


def _ratio(a: float, b: float) -> str:
    if math.isnan(a) or math.isnan(b) or b == 0:
        return "n/a"
    return f"{a / b:.2f}x"


def row(label: str, per_target: dict[str, float], digits: int = 2) -> list[str]:
    cells = [fmt(per_target.get(name, float("nan")), digits) for name in TARGET_NAMES]
    nan = float("nan")
    ratios = [_ratio(per_target.get(a, nan), per_target.get(b, nan)) for a, b in RATIOS]
    return [label, *cells, *ratios]


def values(results: Results, pick: Callable[[dict[str, Any]], float]) -> dict[str, float]:
    out = {}
    for name in TARGET_NAMES:
        result = results.get(name)
        out[name] = pick(result) if result and "error" not in result else float("nan")
    return out


def errors(results: Results) -> list[str]:
    return [f"- {name}: {r['error']}" for name, r in results.items() if r and "error" in r]


def latency_table(data: dict[str, Results]) -> list[str]:
    rows = []
    for clients, results in data.items():
        for key, label in (("broadcast_ms", "broadcast"), ("job_audio_ms", "job->audio_update")):
            for q in ("p50", "p95", "p99", "max"):
                rows.append(
                    row(
                        f"{clients} clients {label} {q} ms",
                        values(results, lambda r, k=key, q=q: _get(r, (k, q))),
                    )
                )
        rows.append(
            row(
                f"{clients} clients CPU us/delivery",
                values(results, lambda r: _get(r, ("cpu_us_per_delivery",))),
            )
        )
        rows.append(
            row(
                f"{clients} clients done_update not delivered",
                values(results, lambda r: _get(r, ("lost_done_updates",))),
                0,
            )
        )
    return md_table(HEADERS, rows)


def capacity_table(results: Results) -> list[str]:
    rows = [
        row("deliveries/s", values(results, lambda r: _get(r, ("deliveries_per_s",))), 0),
        row("jobs done/s", values(results, lambda r: _get(r, ("jobs_per_s",))), 1),
        row("CPU us/delivery", values(results, lambda r: _get(r, ("cpu_us_per_delivery",)))),
        row("server CPU s", values(results, lambda r: _get(r, ("server_cpu_s",)))),
        row("frames delivered", values(results, lambda r: _get(r, ("frames",))), 0),
        row(
            "done_update not delivered",
            values(results, lambda r: _get(r, ("lost_done_updates",))),
            0,
        ),
    ]
    return md_table(HEADERS, rows)


def ceiling_table(results: Results) -> list[str]:
    rows = [
        row("idle clients held", values(results, lambda r: _get(r, ("ceiling",))), 0),
        row("RSS KB/client", values(results, lambda r: _get(r, ("rss_kb_per_client",))), 1),
    ]
    lines = md_table(HEADERS, rows)
    stops = [
        f"- {n}: stopped by {r['stopped_by']}" for n, r in results.items() if "stopped_by" in r
    ]
    return [*lines, "", *stops]


def audio_table(results: Results, levels: tuple[int, ...]) -> list[str]:
    rows = []
    for i, level in enumerate(levels):
        for key, label in (("first_byte_ms", "first byte"), ("total_ms", "total")):
            for q in ("p50", "p99"):
                pick = lambda r, i=i, k=key, q=q: _get(r, ("levels", i, k, q))  # noqa: E731
                rows.append(row(f"{level} concurrent {label} {q} ms", values(results, pick)))
        pick_err = lambda r, i=i: _get(r, ("levels", i, "errors"))  # noqa: E731
        rows.append(row(f"{level} concurrent errors", values(results, pick_err), 0))
    return md_table(HEADERS, rows)


def mix_table(results: Results) -> list[str]:
    rows = [row("questions", values(results, lambda r: _get(r, ("questions",))), 0)]
    for key, label in (
        ("answer_ms", "asked->answer audio_update"),
        ("answer_audio_ms", "asked->answer audio fetched"),
    ):
        for q in ("p50", "p95", "p99"):
            rows.append(
                row(f"{label} {q} ms", values(results, lambda r, k=key, q=q: _get(r, (k, q))))
            )
    rows.append(row("errors", values(results, lambda r: _get(r, ("errors",))), 0))
    return md_table(HEADERS, rows)
