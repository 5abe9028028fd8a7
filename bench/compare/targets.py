"""The issue's targets (at 1,000 clients on this 2-core machine) judged as met / missed."""

from __future__ import annotations

import math
from typing import Any

from bench.common import fmt


def _figure(latency: dict[str, dict[str, Any]], name: str, key: str) -> float:
    result = latency.get(name) or {}
    if "error" in result:
        return float("nan")
    value = (
        result.get("cpu_us_per_delivery")
        if key == "cpu"
        else result.get("broadcast_ms", {}).get("p99")
    )
    return float(value) if isinstance(value, int | float) else float("nan")


def _judge(label: str, better: float, worse: float, factor: float, what: str) -> dict[str, Any]:
    """``better`` should be at least ``factor`` times better (smaller) than ``worse``."""
    gain = (
        worse / better
        if better and not math.isnan(better) and not math.isnan(worse)
        else float("nan")
    )
    status = "n/a" if math.isnan(gain) else ("met" if gain >= factor else "missed")
    return {
        "target": label,
        "status": status,
        "gain": gain,
        "needed": factor,
        "figures": f"{what}: {fmt(worse)} / {fmt(better)} = {fmt(gain)}x (need >= {factor:g}x)",
    }


def judge(
    latency_by_clients: dict[int, dict[str, Any]], ceiling: dict[str, Any]
) -> tuple[int, list[dict[str, Any]]]:
    """Judge at 1,000 clients, or at the largest size measured (``--quick``)."""
    sizes = sorted(latency_by_clients)
    at = 1000 if 1000 in latency_by_clients else (sizes[-1] if sizes else 0)
    lat = latency_by_clients.get(at, {})
    out = []
    for other, factor in (("flask-threading", 3.0), ("flask-gevent", 1.5)):
        for key, what in (("cpu", "CPU us/delivery"), ("p99", "broadcast p99 ms")):
            out.append(
                _judge(
                    f"fastapi-ws >= {factor:g}x {other} in {what}",
                    _figure(lat, "fastapi-ws", key),
                    _figure(lat, other, key),
                    factor,
                    what,
                )
            )
    for key, what in (("cpu", "CPU us/delivery"), ("p99", "broadcast p99 ms")):
        out.append(
            _judge(
                f"fastapi-sio no worse than flask-gevent in {what}",
                _figure(lat, "fastapi-sio", key),
                _figure(lat, "flask-gevent", key),
                1.0,
                what,
            )
        )
    out += [_ceiling(ceiling, name) for name in ("fastapi-ws", "fastapi-sio")]
    return at, out


def _capped(result: dict[str, Any]) -> bool:
    return str(result.get("stopped_by", "")).startswith("cap ")


def _ceiling(ceiling: dict[str, Any], name: str) -> dict[str, Any]:
    """Ceiling ratio; when the baseline held the cap too, the run cannot tell (raise the
    cap: ``Plan.ceiling_cap``), so the status is ``inconclusive``, not met or missed."""
    base_result, result = ceiling.get("flask-threading") or {}, ceiling.get(name) or {}
    base, held = base_result.get("ceiling"), result.get("ceiling")
    entry = _judge(f"{name} idle-client ceiling >= 5x flask-threading",
                   float(base or "nan"), float(held or "nan"), 5.0, "clients held")  # fmt: skip
    entry["figures"] = f"clients held: {held} vs {base}"
    if _capped(base_result):
        entry["status"] = "inconclusive"
        entry["figures"] += " (both reached the cap: neither ceiling was found)"
    elif _capped(result):
        entry["figures"] += " (cap reached: a lower bound)"
    return entry


def targets_lines(at: int, judged: list[dict[str, Any]]) -> list[str]:
    lines = [
        f"Judged at {at} clients (the issue asks for 1,000).",
        "",
        "| target | status | figures |",
        "|---|---|---|",
    ]
    lines += [f"| {j['target']} | **{j['status']}** | {j['figures']} |" for j in judged]
    return lines
