"""Idle-connection ceiling and RSS per client.

Clients connect in steps of ``step`` (``bench.rawws``, no traffic but the protocol's
own pings). After each step: the server group's RSS, and the time of one ``GET
/health`` as a health probe. The ceiling is the last step where every handshake
succeeded within the step's time limit and the probe stayed under ``ceiling_ms``;
``cap`` and ``budget_s`` bound the run.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp

from bench import rawws
from bench.compare import servers
from bench.compare.procstat import group_rss_kb


def _ignore(client: rawws.WsClient, name: str, data: dict[str, Any], now: float) -> None:
    return None


async def _probe_ms(port: int, limit: float) -> float:
    started = time.perf_counter()
    timeout = aiohttp.ClientTimeout(total=limit)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as http,
            http.get(f"http://127.0.0.1:{port}/health") as response,
        ):
            await response.read()
    except (aiohttp.ClientError, TimeoutError):
        return float("inf")
    return (time.perf_counter() - started) * 1000


async def _step(port: int, dialect: str, step: int, within: float) -> tuple[list[Any], str]:
    try:
        conns = await rawws.connect_many(port, dialect, step, _ignore, parallel=50, within=within)
    except (OSError, ConnectionError, TimeoutError) as exc:
        return [], f"{type(exc).__name__}: {exc}"[:200]
    return list(conns), ""


async def ceiling_run(
    target: servers.Target,
    server: servers.GroupServer,
    step: int,
    cap: int,
    budget_s: float,
    ceiling_ms: float,
) -> dict[str, Any]:
    port = server.port
    points: list[dict[str, float]] = []
    held: list[rawws.WsClient] = []
    reason = f"cap {cap} reached"
    started = time.monotonic()
    await asyncio.sleep(0.5)
    base = group_rss_kb(server.pid)
    points.append({"clients": 0, "rss_mb": base / 1024, "probe_ms": await _probe_ms(port, 5)})
    try:
        while len(held) < cap:
            left = budget_s - (time.monotonic() - started)
            if left < 5:
                reason = f"time budget {budget_s:g} s"
                break
            conns, error = await _step(port, target.dialect, step, min(60.0, left))
            held += conns
            if error:
                reason = f"connect error at {len(held) + step}: {error}"
                break
            await asyncio.sleep(0.5)
            probe = await _probe_ms(port, ceiling_ms / 1000 * 5)
            rss = group_rss_kb(server.pid)
            points.append({"clients": len(held), "rss_mb": rss / 1024, "probe_ms": probe})
            if probe > ceiling_ms:
                reason = f"/health took {probe:.0f} ms > {ceiling_ms:g} ms"
                break
    finally:
        await rawws.close_all(held)
    good = [p for p in points if p["probe_ms"] <= ceiling_ms]
    top = good[-1] if good else points[0]
    per_client = (
        (top["rss_mb"] - points[0]["rss_mb"]) * 1024 / top["clients"]
        if top["clients"]
        else float("nan")
    )
    return {
        "ceiling": int(top["clients"]),
        "stopped_by": reason,
        "rss_kb_per_client": per_client,
        "points": points,
        "command": server.command,
    }
