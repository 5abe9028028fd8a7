"""Broadcasts to every ``/ws`` client, at O(1) cost to whoever broadcasts.

A broadcast is appended once to a shared log. Each client holds a cursor into the log
and takes what it has not taken yet (numbered, remembered for resume, batched for its
socket, see ``fastapi_app.sockets.client``) at one of two moments:

- when anything else is sent to it: a per-client frame always follows the broadcasts
  emitted before it, on the wire and in the resume history, so per-socket order is the
  order of emission;
- when the pass reaches it: ``BULK_DELAY`` after a broadcast the pass walks every
  client, ``SLICE`` at a time with a turn of the event loop between slices, and writes
  each socket's batch.

Why: handing a frame to a client (its ``seq``, its history, its batch) costs 2-3 us, so
walking 1,000 clients inside ``broadcast`` stopped the job that broadcast for 2-3 ms,
five times per job (todo -> running -> done), before its asker could be answered. Now
the job's own steps never wait on a fan-out, and after the short wait the counts of a
job meet in each client's batch, where the latest of each name replaces the older ones
(``fastapi_app.sockets.flusher.Batch``).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import TYPE_CHECKING, NamedTuple

from fastapi_app.sockets.flusher import BULK_DELAY, SLICE

if TYPE_CHECKING:
    from fastapi_app.sockets.client import Client

log = logging.getLogger(__name__)


class Entry(NamedTuple):
    body: str  # the encoded frame, without a seq
    tail: str  # body[1:], sliced once: each client splices its seq in front
    key: str | None  # the count's name: a newer one replaces it in a batch
    now: float  # when it was broadcast (monotonic), for the resume window
    numbered: bool  # a data frame (numbered, kept for resume), else a control frame


class FanOut:
    """The log of broadcasts not yet taken by every client, and the pass that hands
    them out. One per :class:`~fastapi_app.sockets.connections.ConnectionManager`."""

    __slots__ = ("_clients", "_scheduled", "base", "delay", "entries", "slice")

    def __init__(
        self, clients: dict[str, Client], slice_size: int = SLICE, delay: float = BULK_DELAY
    ) -> None:
        self._clients = clients  # every client the pass visits (live and detached)
        self.slice, self.delay = slice_size, delay
        self.entries: list[Entry] = []
        self.base = 0  # the position of entries[0]; positions only grow
        self._scheduled = False

    @property
    def end(self) -> int:
        """The position the next broadcast will take (a new client starts here)."""
        return self.base + len(self.entries)

    def append(self, body: str, key: str | None, now: float, *, numbered: bool) -> None:
        if not self._clients:
            return  # nobody to hand it to; a client that joins later starts after it
        self.entries.append(Entry(body, body[1:], key, now, numbered))
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_later(self.delay, self._start)

    def _start(self) -> None:
        # Everyone there now is visited; a client that joins meanwhile starts at the end.
        upto = self.end
        self._visit(deque(self._clients.values()), upto)

    def _visit(self, pending: deque[Client], upto: int) -> None:
        for _ in range(min(len(pending), self.slice)):
            client = pending.popleft()
            try:
                client.flush_fanout()
            except Exception:  # one socket's failure must not strand everyone else
                log.exception("handing broadcasts to client %s failed", client.id)
        if pending:  # the rest after a turn of the loop (per-client frames go in between)
            asyncio.get_running_loop().call_soon(self._visit, pending, upto)
            return
        # Every client has taken everything up to ``upto`` (those visited took more).
        del self.entries[: upto - self.base]
        self.base = upto
        if self.entries and self._clients:  # broadcast during the pass: another one
            asyncio.get_running_loop().call_later(self.delay, self._start)
        else:  # (with no client left, what remains is nobody's)
            self.base = self.end
            self.entries.clear()
            self._scheduled = False
