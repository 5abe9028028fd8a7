"""A seed-004 ``/ws/tts`` client: JSON status frames and binary audio frames."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection

TIMEOUT = 15.0


@dataclass
class Reply:
    """Everything one request produced, in arrival order."""

    statuses: list[dict[str, Any]] = field(default_factory=list)
    frames: list[bytes] = field(default_factory=list)
    order: list[str] = field(default_factory=list)  # "generating", "ready", "bin", ...

    @property
    def audio(self) -> bytes:
        return b"".join(self.frames)

    def status(self, name: str) -> dict[str, Any]:
        return next(s for s in self.statuses if s["status"] == name)


async def recv(conn: ClientConnection) -> str | bytes:
    return await asyncio.wait_for(conn.recv(), TIMEOUT)


async def next_json(conn: ClientConnection) -> dict[str, Any]:
    message = await recv(conn)
    assert isinstance(message, str), "expected a JSON text frame"
    return json.loads(message)


async def read_reply(conn: ClientConnection, until: tuple[str, ...] = ("complete",)) -> Reply:
    """Read frames until a status in ``until`` or an error arrives."""
    reply = Reply()
    while True:
        message = await recv(conn)
        if isinstance(message, bytes):
            reply.frames.append(message)
            reply.order.append("bin")
            continue
        status = json.loads(message)
        reply.statuses.append(status)
        reply.order.append(status["status"])
        if status["status"] in (*until, "error"):
            return reply
