"""Helpers for the scene tests: settings with the scene fields, a session socket reader."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import httpx
import websockets

from config import Settings
from tests.servers import ThreadServer

TIMEOUT = 20.0
WORDS = tuple(
    [
        "the",
        "genie",
        "speaks",
        "slowly",
        "and",
        "the",
        "girl",
        "listens",
        "to",
        "every",
        "word",
        "it",
        "says",
    ]
)


class SceneSettings(Settings):
    """Settings with the scene fields, whether or not ``config.Settings`` has them yet."""

    scenes_db: str | None = None
    scene_session_ttl: float = 300.0
    scene_synth_slots: int = 2


def scene_server(**overrides: Any) -> ThreadServer:
    base: dict[str, Any] = {"host": "127.0.0.1", "port": 0, "log_level": "warning",
                            "tts_cache_entries": 0, "rate_limit_speech": 0,
                            # one client starts many sessions at once (tests/robustness/
                            # test_floods.py tests the cap)
                            "max_syntheses_per_client": 0}  # fmt: skip
    return ThreadServer(SceneSettings(_env_file=None, **{**base, **overrides}))


def chunks(n: int, size: int = 150, tag: str = "") -> list[str]:
    """``n`` distinct chunks of about ``size`` characters."""
    words = WORDS
    out = []
    for i in range(n):
        text, k = f"{tag} Chunk {i + 1}.", i
        while len(text) < size:
            text += " " + words[k % len(words)]
            k += 1
        out.append(text + ".")
    return out


async def new_scene(http: httpx.AsyncClient, texts: list[str], **kw: Any) -> int:
    response = await http.post("/api/scenes", json={"title": "t", "chunks": texts}, **kw)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


async def start_session(http: httpx.AsyncClient, scene_id: int, **kw: Any) -> str:
    response = await http.post(f"/api/tts/generate-ws/{scene_id}", **kw)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "initiated"
    return str(body["session_id"])


@dataclass
class Seen:
    frames: list[dict[str, Any]] = field(default_factory=list)
    binaries: list[bytes] = field(default_factory=list)
    close_code: int | None = None

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [f for f in self.frames if f.get("type") == kind]


async def read_until(
    conn: websockets.ClientConnection, seen: Seen, stop: tuple[str, ...], count: int = 1
) -> Seen:
    """Read until ``count`` frames of a type in ``stop`` arrived, or the socket closed."""
    async with asyncio.timeout(TIMEOUT):
        try:
            while sum(len(seen.of(k)) for k in stop) < count:
                message = await conn.recv()
                if isinstance(message, bytes):
                    seen.binaries.append(message)
                else:
                    seen.frames.append(json.loads(message))
        except websockets.ConnectionClosed as closed:
            seen.close_code = closed.rcvd.code if closed.rcvd else None
    return seen


async def session_frames(url: str, stop: tuple[str, ...] = ("complete", "error", "stopped"),
                         **kw: Any) -> Seen:  # fmt: skip
    async with websockets.connect(url, **kw) as conn:
        seen = await read_until(conn, Seen(), stop)
        try:
            await asyncio.wait_for(conn.recv(), TIMEOUT)
        except websockets.ConnectionClosed as closed:
            seen.close_code = closed.rcvd.code if closed.rcvd else None
    return seen
