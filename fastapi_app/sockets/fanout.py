"""Broadcasts at O(1) cost to whoever broadcasts, whatever the number of sockets.

A broadcast is appended once to a shared log. Each member (a ``/ws`` client, see
``fastapi_app.sockets.client``; a Socket.IO socket, see ``fastapi_app.sockets.sio_manager``)
holds a cursor into the log and takes what it has not taken yet (numbered and
remembered for resume on ``/ws``, batched for its socket) at one of two moments:

- when anything else is sent to it: a per-client frame always follows the broadcasts
  emitted before it, on the wire and in the resume history, so per-socket order is the
  order of emission;
- when the pass reaches it: ``BULK_DELAY`` after a broadcast (in the next loop turn
  when there are ``HOLD_ABOVE`` members or fewer) the pass walks every member, ``SLICE``
  at a time with a turn of the event loop between slices, and writes each socket's batch.

Why: handing a frame to a client (its ``seq``, its history, its batch) costs 2-3 us, so
walking 1,000 clients inside ``broadcast`` stopped the job that broadcast for 2-3 ms,
five times per job (todo -> running -> done), before its asker could be answered. Now
the job's own steps never wait on a fan-out, and after the short wait the counts of a
job meet in each client's batch, where the latest of each name replaces the older ones
(``fastapi_app.sockets.flusher.Batch``).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import deque
from collections.abc import Iterator
from typing import Any, NamedTuple, Protocol

from fastapi_app.sockets.flusher import BULK_DELAY, SLICE

log = logging.getLogger(__name__)

# A pass that fits in one slice (~0.3 ms of writes) costs less than the wait would save,
# and the legacy page's answer, itself a broadcast, would pay the wait. Larger passes are
# held: run at once they come between the steps of a job (at 100 sockets a node, a
# fleet's answer took 5 ms longer behind them; bench.fleet).
HOLD_ABOVE = SLICE


class Member(Protocol):
    id: str
    cursor: int  # the position of the first broadcast not taken yet

    def flush_fanout(self) -> None:
        """Take the broadcasts not taken yet, then write the socket's batch."""


class Entry(NamedTuple):
    """A ``/ws`` broadcast."""

    body: str  # the encoded frame, without a seq
    tail: str  # body[1:], sliced once: each client splices its seq in front
    key: str | None  # the count's name: a newer one replaces it in a batch
    now: float  # when it was broadcast (monotonic), for the resume window
    numbered: bool  # a data frame (numbered, kept for resume), else a control frame


class FanOut:
    """The log of broadcasts not yet taken by every member, and the pass that hands
    them out: one per ``/ws`` connection manager, one per Socket.IO namespace."""

    __slots__ = ("_scheduled", "base", "delay", "entries", "hold_above", "members", "slice")

    def __init__(
        self, members: dict[str, Any], slice_size: int = SLICE, delay: float = BULK_DELAY
    ) -> None:
        self.members: dict[str, Member] = members  # everyone the pass visits
        self.slice, self.delay, self.hold_above = slice_size, delay, HOLD_ABOVE
        self.entries: list[Any] = []  # what a broadcast is is up to the members
        self.base = 0  # the position of entries[0]; positions only grow
        self._scheduled = False

    @property
    def end(self) -> int:
        """The position the next broadcast will take (a new client starts here)."""
        return self.base + len(self.entries)

    def take(self, member: Member) -> Iterator[Any]:
        """The entries ``member`` has not taken yet, oldest first; they count as taken."""
        first, end = member.cursor - self.base, len(self.entries)
        member.cursor = self.base + end
        return itertools.islice(self.entries, first, end)

    def append(self, entry: Any) -> None:
        if not self.members:
            return  # nobody to hand it to; a member that joins later starts after it
        self.entries.append(entry)
        if not self._scheduled:
            self._scheduled = True
            self._schedule()

    def _schedule(self) -> None:
        delay = self.delay if len(self.members) > self.hold_above else 0.0
        asyncio.get_running_loop().call_later(delay, self._start)

    def _start(self) -> None:
        # Everyone there now is visited; a member that joins meanwhile starts at the end.
        upto = self.end
        self._visit(deque(self.members.values()), upto)

    def _visit(self, pending: deque[Member], upto: int) -> None:
        for _ in range(min(len(pending), self.slice)):
            member = pending.popleft()
            try:
                member.flush_fanout()
            except Exception:  # one socket's failure must not strand everyone else
                log.exception("handing broadcasts to %s failed", member.id)
        if pending:  # the rest after a turn of the loop (per-client frames go in between)
            asyncio.get_running_loop().call_soon(self._visit, pending, upto)
            return
        # Every member has taken everything up to ``upto`` (those visited took more).
        del self.entries[: upto - self.base]
        self.base = upto
        if self.entries and self.members:  # broadcast during the pass: another one
            self._schedule()
        else:  # (with no member left, what remains is nobody's)
            self.base = self.end
            self.entries.clear()
            self._scheduled = False
