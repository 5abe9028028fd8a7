"""Speech endpoint: time to first byte and total time at 1, 10 and 50 concurrent requests.

Each target is fetched on the endpoint its clients use: ``/get_tts_audio?tts_text=``
(the legacy page, on both Flask targets and ``fastapi-sio``) and ``/api/get-audio?msg=``
(``fastapi-ws``). Every request asks for a text no other request used and the servers
run with the audio cache off, so every request synthesizes (espeak-ng, MP3).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp

from bench.common import summary
from bench.compare import servers
from bench.get_audio import make_text


async def _fetch(
    http: aiohttp.ClientSession, url: str, param: str, chars: int
) -> tuple[float, float]:
    started = time.perf_counter()
    first = float("nan")
    async with http.get(url, params={param: make_text(chars)}) as response:
        response.raise_for_status()
        async for chunk in response.content.iter_any():
            if chunk and first != first:  # NaN: nothing received yet
                first = time.perf_counter() - started
    return first, time.perf_counter() - started


async def _level(
    port: int, target: servers.Target, concurrency: int, rounds: int, chars: int
) -> dict[str, Any]:
    url = f"http://127.0.0.1:{port}{target.audio_path}"
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=120)
    firsts: list[float] = []
    totals: list[float] = []
    errors = 0
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        await _fetch(http, url, target.audio_param, chars)  # warm: connection, voice load
        for _ in range(rounds):
            batch = [_fetch(http, url, target.audio_param, chars) for _ in range(concurrency)]
            for outcome in await asyncio.gather(*batch, return_exceptions=True):
                if isinstance(outcome, BaseException):
                    errors += 1
                else:
                    firsts.append(outcome[0])
                    totals.append(outcome[1])
    return {
        "concurrency": concurrency,
        "requests": concurrency * rounds,
        "first_byte_ms": summary(firsts),
        "total_ms": summary(totals),
        "errors": errors,
    }


async def audio_run(
    target: servers.Target, server: servers.GroupServer, levels: list[int], rounds: int, chars: int
) -> dict[str, Any]:
    port = server.port
    cells = [await _level(port, target, n, rounds, chars) for n in levels]
    return {
        "endpoint": target.audio_path,
        "chars": chars,
        "levels": cells,
        "command": server.command,
    }
