"""Writes batched per socket: the asker first, fan-outs a moment later and in slices.

Frames pushed to a socket are written together: one ``transport.write`` where the direct
path is open (they stay separate WebSocket frames on the wire; only the system call is
shared). Sockets holding a per-client frame (an answer, a ``queued``, an error, a pong)
are written in the next loop iteration (:meth:`Flusher.urgent`). Fan-out frames wait
``BULK_DELAY`` first, then go out ``SLICE`` sockets at a time with a turn of the event
loop between slices: on ``/ws`` through the fan-out pass (``fastapi_app.sockets.fanout``),
on Socket.IO through :meth:`Flusher.bulk`.

Why the wait: one job moves todo -> running -> done within a millisecond or two and each
move is a count to every socket. Written at once, that is five fan-outs (five writes per
socket) standing between the question and its answer. After a short wait the counts of a
job sit in each socket's batch together, where a newer count replaces an older one of
the same name (:class:`Batch`): the answer goes out first, then one write per socket
carries the latest counts. Each socket's own frames keep their order throughout (they
are one batch, or one backlog).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Protocol

log = logging.getLogger(__name__)

# ~0.5 ms of writes at 12-20 us each: the longest a per-client frame waits on a fan-out
# slice, and what each step of a job in progress pays per loop turn (bench.asker: 128
# sockets per slice left the asker at 50 ms p50 with 1,000 clients, 32 at 30 ms).
SLICE = 32
# Long enough for most of one job's counts to meet in a batch, short next to a fan-out
# itself (bench.asker at 200 clients: 2 ms gave the asker 13 ms p50, 5 ms gave 7-8 ms).
BULK_DELAY = 0.005


class Batch:
    """Frames waiting for a socket's next write. A queue count replaces an older count of
    the same name still waiting (None marks the replaced one), so only its latest value
    goes out, after everything pushed before it. Reused between writes: a fan-out
    touches every socket, and garbage per socket means collections over all of them."""

    __slots__ = ("keys", "texts")

    def __init__(self) -> None:
        self.texts: list[str | None] = []
        self.keys: list[str | None] = []  # each frame's count name (None: not a count)

    def add(self, text: str, key: str | None) -> bool:
        """Append ``text``; True when it replaced an older count."""
        keys = self.keys
        replaced = key is not None and key in keys  # a handful of frames: a scan is cheapest
        if replaced:
            earlier = keys.index(key)
            self.texts[earlier] = keys[earlier] = None
        self.texts.append(text)
        keys.append(key)
        return replaced

    def live(self) -> list[str]:
        """The frames to write, in order (the list itself when nothing was replaced)."""
        texts = self.texts
        return texts if None not in texts else [t for t in texts if t is not None]  # type: ignore[return-value]

    def clear(self) -> None:
        self.texts.clear()
        self.keys.clear()


class Flushable(Protocol):
    def flush(self) -> None:
        """Write what was batched (nothing, if it was written already)."""


class Flusher:
    """One per event loop and transport; items register when their batch starts."""

    __slots__ = ("_bulk", "_bulk_scheduled", "_urgent", "_urgent_scheduled", "delay", "slice")

    def __init__(self, slice_size: int = SLICE, delay: float = BULK_DELAY) -> None:
        self.slice, self.delay = slice_size, delay
        self._urgent: list[Flushable] = []
        self._bulk: deque[Flushable] = deque()
        self._urgent_scheduled = self._bulk_scheduled = False

    def urgent(self, item: Flushable) -> None:
        self._urgent.append(item)
        if not self._urgent_scheduled:
            self._urgent_scheduled = True
            asyncio.get_running_loop().call_soon(self._run_urgent)

    def bulk(self, item: Flushable) -> None:
        self._bulk.append(item)
        if not self._bulk_scheduled:
            self._bulk_scheduled = True
            asyncio.get_running_loop().call_later(self.delay, self._run_bulk)

    def _run_urgent(self) -> None:
        self._urgent_scheduled = False
        urgent, self._urgent = self._urgent, []
        for item in urgent:
            _flush(item)

    def _run_bulk(self) -> None:
        bulk = self._bulk
        for _ in range(min(len(bulk), self.slice)):
            _flush(bulk.popleft())
        if bulk:  # the rest after a turn of the loop (per-client frames go in between)
            asyncio.get_running_loop().call_soon(self._run_bulk)
        else:
            self._bulk_scheduled = False


def _flush(item: Flushable) -> None:
    try:
        item.flush()
    except Exception:  # one socket's failure must not strand every other batch
        log.exception("writing a batch of frames failed")
