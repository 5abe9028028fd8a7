"""A realistic mix: K browser-like users, each asking a question every few seconds and
fetching the answer's audio, as the Genie page does.

Socket.IO targets ask with ``GET /push`` (the answer's ``audio_update`` is broadcast to
every legacy client, as in the original; each user fetches only its own answer);
``fastapi-ws`` users send a ``query`` frame and get their own ``audio_update``.
Per question: asked -> answer ``audio_update`` and asked -> answer audio fully fetched.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any
from urllib.parse import quote

import aiohttp

from bench import rawws
from bench.common import summary
from bench.compare import servers

TOKEN_BASE = 500_000


class User:
    def __init__(self, index: int) -> None:
        self.index = index
        self.pending: dict[str, asyncio.Future[str]] = {}

    def on_event(self, client: rawws.WsClient, name: str, data: dict[str, Any], now: float) -> None:
        if name != "audio_update":
            return
        url = str(data.get("audioURL", ""))
        for token, waiter in self.pending.items():
            if token in url and not waiter.done():
                waiter.set_result(url)


async def _ask(user: User, ws: rawws.WsClient, http: aiohttp.ClientSession, base: str,
               target: servers.Target, n: int) -> tuple[float, float]:  # fmt: skip
    token = str(TOKEN_BASE + user.index * 1000 + n)
    text = f"what is {token} plus 1"
    waiter: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    user.pending[token] = waiter
    started = time.perf_counter()
    try:
        if target.dialect == "native":
            ws.send_json({"type": "query", "text": text})
        else:
            async with http.get(f"{base}/push?question={quote(text)}") as response:
                await response.read()
        url = await asyncio.wait_for(waiter, 30)
        answered = time.perf_counter() - started
        async with http.get(base + url) as response:
            response.raise_for_status()
            await response.read()
        return answered, time.perf_counter() - started
    finally:
        user.pending.pop(token, None)


async def _user(user: User, port: int, target: servers.Target, seconds: float,
                gap: tuple[float, float], out: dict[str, list[float]]) -> None:  # fmt: skip
    rng = random.Random(user.index)  # the same think times for every target
    base = f"http://127.0.0.1:{port}"
    ws = await rawws.connect(port, target.dialect, user.on_event)
    end = time.monotonic() + seconds
    timeout = aiohttp.ClientTimeout(total=60)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as http:
            n = 0
            while time.monotonic() + gap[0] < end:
                await asyncio.sleep(rng.uniform(*gap))
                try:
                    answered, fetched = await _ask(user, ws, http, base, target, n)
                    out["answer"].append(answered)
                    out["audio"].append(fetched)
                except (aiohttp.ClientError, TimeoutError):
                    out["errors"].append(1.0)
                n += 1
    finally:
        await rawws.close_all([ws])


async def mix_run(target: servers.Target, server: servers.GroupServer, users: int,
                  seconds: float, gap: tuple[float, float]) -> dict[str, Any]:  # fmt: skip
    port = server.port
    out: dict[str, list[float]] = {"answer": [], "audio": [], "errors": []}
    crowd = [_user(User(i), port, target, seconds, gap, out) for i in range(users)]
    await asyncio.wait_for(asyncio.gather(*crowd), seconds + 90)
    return {
        "users": users,
        "seconds": seconds,
        "questions": len(out["answer"]) + len(out["errors"]),
        "answer_ms": summary(out["answer"]),
        "answer_audio_ms": summary(out["audio"]),
        "errors": len(out["errors"]),
        "command": server.command,
    }
