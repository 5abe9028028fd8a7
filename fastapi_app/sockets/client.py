"""One native ``/ws`` client's session: identity, sequence numbers, recent frames, jobs.

A session outlives its socket (see ``fastapi_app.sockets.connections``): ``outbox`` is the
socket it is on right now, or None while it is away and may still ``resume``.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from fastapi_app.sockets.fanout import FanOut
from fastapi_app.sockets.outbox import Outbox
from wire import frames


class FrameHistory:
    """A client's recent data frames, for replay on resume; bounded by count and age.

    Sequence numbers are consecutive, so only bodies and times are kept, and both are
    the very objects every other client of the broadcast holds: remembering a frame
    allocates nothing per client and leaves nothing for the garbage collector to trace
    (a tuple per frame and client did, and showed as GC pauses at 1,000 clients).
    """

    __slots__ = ("bodies", "times", "window")

    def __init__(self, size: int, window: float) -> None:
        self.bodies: deque[str] = deque(maxlen=size)
        self.times: deque[float] = deque(maxlen=size)
        self.window = window  # older frames cannot be replayed: dropped

    def add(self, body: str, now: float) -> None:
        self.bodies.append(body)
        times = self.times
        times.append(now)
        cutoff = now - self.window
        if times[0] < cutoff:
            while times and times[0] < cutoff:
                times.popleft()
                self.bodies.popleft()

    def since(self, last_seq: int, newest_seq: int, now: float) -> list[tuple[int, str]]:
        """(seq, body) of the kept frames numbered above ``last_seq``, oldest first."""
        first = newest_seq - len(self.bodies) + 1
        cutoff = now - self.window
        numbered = zip(range(first, newest_seq + 1), self.bodies, self.times, strict=True)
        return [(seq, body) for seq, body, stamp in numbered if seq > last_seq and stamp >= cutoff]


class Client:
    __slots__ = (
        "active_jobs",
        "connected_at",
        "cursor",
        "detached_at",
        "fanout",
        "history",
        "id",
        "last_seen",
        "outbox",
        "seq",
        "speed",
        "subject",
        "voice",
    )

    def __init__(
        self,
        client_id: str,
        subject: str | None,
        history: int = 0,
        window: float = 0.0,
        fanout: FanOut | None = None,
    ) -> None:
        self.id = client_id
        self.subject = subject  # the JWT "sub", when auth is on
        self.connected_at = time.time()
        self.last_seen = time.monotonic()  # any frame from the client counts
        self.outbox: Outbox | None = None
        self.seq = 0  # data frames numbered so far
        # None: no sequence numbers, no resume (the MVP).
        self.history = FrameHistory(history, window) if history > 0 else None
        self.active_jobs: set[str] = set()
        self.detached_at: float | None = None
        self.voice: str | None = None
        self.speed: float | None = None
        # Broadcasts are this client's from here on; it takes them lazily (see fanout).
        self.fanout = fanout if fanout is not None else FanOut({})
        self.cursor = self.fanout.end

    def deliver(self, body: str, now: float) -> None:
        """A per-client data frame: numbered, remembered for resume, sent if the socket
        is open, after every broadcast emitted before it."""
        self.take_broadcasts()
        self._number(body, body[1:], now, None, True)

    def deliver_numbered(self, body: str, seq: int) -> None:
        """A frame the fleet numbered; one already seen (a replay raced it) is skipped.
        Not kept in ``history``: a fleet resumes from the client's log in Redis."""
        self.take_broadcasts()
        if seq <= self.seq:
            return
        self.seq = seq
        outbox = self.outbox
        if outbox is not None:
            outbox.push(frames.with_seq(body, seq))

    def control(self, payload: dict[str, Any]) -> None:
        """A control frame (never replayed); it repeats the latest seq."""
        self.take_broadcasts()
        self._control(frames.encode(payload), None, True)

    def take_broadcasts(self) -> None:
        """Take the broadcasts this client has not taken yet, in order, into its batch.
        Nothing is written here: the fan-out pass writes next, or the per-client frame
        that made this client catch up does."""
        if self.cursor == self.fanout.end:
            return
        for body, tail, key, now, numbered in self.fanout.take(self):
            if numbered:
                self._number(body, tail, now, key, False)
            else:
                self._control(body, key, False)

    def flush_fanout(self) -> None:
        """The fan-out pass's visit: take the broadcasts and write the socket's batch."""
        self.take_broadcasts()
        outbox = self.outbox
        if outbox is not None:
            outbox.flush()

    def _number(self, body: str, tail: str, now: float, key: str | None, urgent: bool) -> None:
        # ``tail`` is ``body[1:]``: a broadcast slices it once for all its clients.
        history = self.history
        if history is not None:
            self.seq = seq = self.seq + 1
            history.add(body, now)
            body = f'{{"seq":{seq},{tail}'
        outbox = self.outbox
        if outbox is not None:
            outbox.push(body, key=key, urgent=urgent)

    def _control(self, body: str, key: str | None, urgent: bool) -> None:
        outbox = self.outbox
        if outbox is not None:
            text = frames.with_seq(body, self.seq) if self.history is not None else body
            outbox.push(text, key=key, urgent=urgent)
