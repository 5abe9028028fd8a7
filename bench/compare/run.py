"""Runs every workload against every target, a fresh server each, and keeps going past a
failing cell (its error goes into the report)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from bench.compare import audio, ceiling, mix, traffic
from bench.compare.plan import Plan
from bench.compare.progress import Progress
from bench.compare.servers import TARGETS, Target

Cell = Callable[[Target], Awaitable[dict[str, Any]]]


async def _guarded(cell: Cell, target: Target) -> dict[str, Any]:
    try:
        return await cell(target)
    except (OSError, RuntimeError, TimeoutError, ConnectionError, ValueError) as exc:
        return {"error": f"{type(exc).__name__}: {exc}"[:300]}


def cells(plan: Plan, core: int | None) -> list[tuple[str, Any, Cell]]:
    """(workload, key, cell) in run order: per workload, every target in turn, so the
    four servers are measured side by side in time on a noisy machine."""
    out: list[tuple[str, Any, Cell]] = []
    for n in plan.latency_clients:
        out.append(
            (
                "latency",
                n,
                lambda t, n=n: traffic.broadcast_run(
                    t, n, plan.latency_rate, plan.latency_pushes, core
                ),
            )
        )
    out.append(
        (
            "capacity",
            plan.capacity_clients,
            lambda t: traffic.broadcast_run(
                t, plan.capacity_clients, plan.capacity_rate, plan.capacity_pushes, core
            ),
        )
    )
    out.append(
        (
            "connections",
            None,
            lambda t: ceiling.ceiling_run(
                t, plan.ceiling_step, plan.ceiling_cap, plan.ceiling_budget_s, plan.ceiling_ms, core
            ),
        )
    )
    out.append(
        (
            "audio",
            None,
            lambda t: audio.audio_run(
                t, list(plan.audio_levels), plan.audio_rounds, plan.audio_chars, core
            ),
        )
    )
    out.append(
        (
            "mix",
            plan.mix_users,
            lambda t: mix.mix_run(t, plan.mix_users, plan.mix_seconds, plan.mix_gap, core),
        )
    )
    return out


async def run_all(plan: Plan, core: int | None) -> dict[str, Any]:
    todo = cells(plan, core)
    bar = Progress(len(todo) * len(TARGETS))
    results: dict[str, Any] = {
        "latency": {},
        "capacity": {},
        "connections": {},
        "audio": {},
        "mix": {},
    }
    for workload, key, cell in todo:
        for target in TARGETS:
            bar.step(f"{workload} {'' if key is None else key} {target.name}")
            outcome = await _guarded(cell, target)
            if workload == "latency":
                results["latency"].setdefault(key, {})[target.name] = outcome
            else:
                results[workload][target.name] = outcome
            bar.advance()
            await asyncio.sleep(0.2)  # the previous server's sockets drain
    bar.close()
    return results
