"""Clients for wire tests: a native /ws client that reads typed frames."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import socketio
import websockets
from websockets.asyncio.client import ClientConnection

TIMEOUT = 10.0


class WsClient:
    """A real ``websockets`` connection plus a little frame bookkeeping."""

    def __init__(self, conn: ClientConnection) -> None:
        self.conn = conn
        self.seen: list[dict[str, Any]] = []
        self.client_id: str | None = None

    @classmethod
    async def connect(cls, url: str, *, greet: bool = True, **kwargs: Any) -> WsClient:
        conn = await websockets.connect(url, **kwargs)
        client = cls(conn)
        if greet:
            hello = await client.next("connection_established")
            client.client_id = hello["client_id"]
        return client

    async def send(self, **frame: Any) -> None:
        await self.conn.send(json.dumps(frame))

    async def recv(self, wait: float = TIMEOUT) -> dict[str, Any]:
        frame = json.loads(await asyncio.wait_for(self.conn.recv(), wait))
        self.seen.append(frame)
        return frame

    async def next(self, *types: str, wait: float = TIMEOUT) -> dict[str, Any]:
        """The next frame of one of ``types`` (others are kept in ``seen``)."""
        async with asyncio.timeout(wait):
            while True:
                frame = await self.recv(wait)
                if not types or frame.get("type") in types:
                    return frame

    async def count(self, kind: str, n: int, wait: float = TIMEOUT) -> list[dict[str, Any]]:
        """Read until ``n`` frames of type ``kind`` have been seen; return them."""
        async with asyncio.timeout(wait):
            while len(found := self.of(kind)) < n:
                await self.recv(wait)
        return found

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [frame for frame in self.seen if frame.get("type") == kind]

    @property
    def last_seq(self) -> int:
        return max((f.get("seq", 0) for f in self.seen), default=0)

    async def close(self) -> None:
        await self.conn.close()

    async def __aenter__(self) -> WsClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def ws_url(base: str, path: str = "/ws") -> str:
    return base + path


class SioListener:
    """A real python-socketio client that records every event it receives."""

    def __init__(self) -> None:
        self.client = socketio.AsyncClient(reconnection=False)
        self.seen: list[tuple[str, Any]] = []
        self.client.on("*", self._any)

    async def _any(self, event: str, data: Any) -> None:
        self.seen.append((event, data))

    def values(self, event: str) -> list[Any]:
        return [data for name, data in self.seen if name == event]

    def last(self, event: str) -> Any:
        values = self.values(event)
        return values[-1]["value"] if values else None

    async def wait_for(self, event: str, data: Any, wait: float = TIMEOUT) -> None:
        """Until ``(event, data)`` has arrived."""
        async with asyncio.timeout(wait):
            while (event, data) not in self.seen:  # noqa: ASYNC110 - a plain list
                await asyncio.sleep(0.01)
