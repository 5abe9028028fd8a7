"""A legacy page stand-in: a real python-socketio client that logs every event in order."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import anyio
import engineio.payload
import socketio

EVENTS = (
    "time_update",
    "todo_update",
    "run_update",
    "done_update",
    "dead_update",
    "audio_update",
    "notification_sound_update",
)
WAIT = 15.0
# python-engineio's client refuses a long-polling response of more than 16 packets
# ("Too many packets in payload": a transport error, and the page is gone). A server
# batches whatever queued up between two polls, so a busy fleet sends more; browsers'
# socket.io client has no such limit. Only this test process's clients are affected.
engineio.payload.Payload.max_decode_packets = 1000


class EventLog:
    def __init__(self, **options: Any) -> None:
        # No reconnection unless asked: a test sees a drop instead of papering over it.
        self.sio = socketio.AsyncClient(**{"reconnection": False, **options})
        self.log: list[tuple[str, Any]] = []  # (event, data) in arrival order
        self._changed = asyncio.Event()
        for name in EVENTS:
            self.sio.on(name, self._recorder(name))

    def _recorder(self, name: str) -> Callable[[Any], Any]:
        async def record(data: Any) -> None:
            self.log.append((name, data))
            self._changed.set()

        return record

    async def connect(self, url: str, transport: str) -> EventLog:
        await self.sio.connect(url, transports=[transport], wait_timeout=10)
        assert self.sio.transport() == transport
        return self

    def of(self, name: str) -> list[Any]:
        return [data for event, data in self.log if event == name]

    def without_clock(self) -> list[tuple[str, Any]]:
        return [(event, data) for event, data in self.log if event != "time_update"]

    async def wait_for(
        self, name: str, count: int = 1, where: Callable[[Any], bool] | None = None
    ) -> list[Any]:
        """Wait until ``count`` events ``name`` (matching ``where``) have arrived."""
        with anyio.fail_after(WAIT):
            while True:
                found = [d for d in self.of(name) if where is None or where(d)]
                if len(found) >= count:
                    return found
                self._changed.clear()
                await self._changed.wait()

    async def wait_for_latest(self, name: str, data: Any) -> None:
        """Wait until the latest ``name`` event carries ``data`` (a state, not a count)."""
        with anyio.fail_after(WAIT):
            while not self.of(name) or self.of(name)[-1] != data:
                self._changed.clear()
                await self._changed.wait()

    async def close(self) -> None:
        await self.sio.disconnect()
