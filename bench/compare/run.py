"""Runs every workload against every target and keeps going past a failing cell (its
error goes into the report).

Full run: a fresh server process per (workload, target), workloads outer so the four
servers are measured side by side in time on a noisy machine. ``--quick``: one fresh
server per target for all its workloads (server start-up would be most of the budget).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from bench.common import free_port
from bench.compare import audio, ceiling, mix, servers, traffic
from bench.compare.plan import Plan
from bench.compare.progress import Progress
from bench.compare.servers import TARGETS, GroupServer, Target

Cell = Callable[[Target, GroupServer], Awaitable[dict[str, Any]]]
Step = tuple[str, Any, Cell]  # (workload, key, cell)
GUARDED = (OSError, RuntimeError, TimeoutError, ConnectionError, ValueError)


def steps(plan: Plan) -> list[Step]:
    out: list[Step] = []
    for n in plan.latency_clients:
        out.append(("latency", n, lambda t, s, n=n: traffic.broadcast_run(
            t, s, n, plan.latency_rate, plan.latency_pushes)))  # fmt: skip
    out.append(("capacity", plan.capacity_clients, lambda t, s: traffic.broadcast_run(
        t, s, plan.capacity_clients, plan.capacity_rate, plan.capacity_pushes)))  # fmt: skip
    out.append(("connections", None, lambda t, s: ceiling.ceiling_run(
        t, s, plan.ceiling_step, plan.ceiling_cap, plan.ceiling_budget_s,
        plan.ceiling_ms)))  # fmt: skip
    out.append(("audio", None, lambda t, s: audio.audio_run(
        t, s, list(plan.audio_levels), plan.audio_rounds, plan.audio_chars)))  # fmt: skip
    out.append(("mix", plan.mix_users, lambda t, s: mix.mix_run(
        t, s, plan.mix_users, plan.mix_seconds, plan.mix_gap)))  # fmt: skip
    return out


def _store(results: dict[str, Any], workload: str, key: Any, name: str, outcome: Any) -> None:
    if workload == "latency":
        results["latency"].setdefault(key, {})[name] = outcome
    else:
        results[workload][name] = outcome


async def _cell(cell: Cell, target: Target, server: GroupServer | None, core: int | None) -> Any:
    try:
        if server is not None:
            return await cell(target, server)
        with servers.start(target, free_port(), core) as fresh:
            return await cell(target, fresh)
    except GUARDED as exc:
        return {"error": f"{type(exc).__name__}: {exc}"[:300]}


async def run_all(plan: Plan, core: int | None, shared: bool) -> dict[str, Any]:
    todo = steps(plan)
    bar = Progress(len(todo) * len(TARGETS))
    results: dict[str, Any] = {
        k: {} for k in ("latency", "capacity", "connections", "audio", "mix")
    }
    if shared:  # one server per target
        for target in TARGETS:
            try:
                with servers.start(target, free_port(), core) as server:
                    for workload, key, cell in todo:
                        bar.step(f"{workload} {key or ''} {target.name}")
                        _store(
                            results,
                            workload,
                            key,
                            target.name,
                            await _cell(cell, target, server, core),
                        )
                        bar.advance()
            except GUARDED as exc:  # the server did not start
                for workload, key, _ in todo:
                    _store(results, workload, key, target.name, {"error": f"start: {exc}"[:300]})
    else:
        for workload, key, cell in todo:
            for target in TARGETS:
                bar.step(f"{workload} {key or ''} {target.name}")
                _store(results, workload, key, target.name, await _cell(cell, target, None, core))
                bar.advance()
                await asyncio.sleep(0.2)  # the previous server's sockets drain
    bar.close()
    return results
