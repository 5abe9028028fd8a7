"""One native ``/ws`` client's session: identity, sequence numbers, recent frames, jobs.

A session outlives its socket (see ``fastapi_app.sockets.connections``): ``outbox`` is the
socket it is on right now, or None while it is away and may still ``resume``.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

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
        "detached_at",
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
        self, client_id: str, subject: str | None, history: int = 0, window: float = 0.0
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

    def deliver(
        self,
        body: str,
        now: float,
        tail: str | None = None,
        *,
        key: str | None = None,
        urgent: bool = True,
    ) -> None:
        """A data frame: numbered, remembered for resume, sent if the socket is open.

        ``tail`` is ``body[1:]``; a broadcast slices it once for all its clients. ``key``
        and ``urgent``: see :meth:`Outbox.push` (a fan-out passes ``urgent=False``).
        """
        history = self.history
        if history is not None:
            self.seq = seq = self.seq + 1
            history.add(body, now)
            body = f'{{"seq":{seq},{tail if tail is not None else body[1:]}'
        outbox = self.outbox
        if outbox is not None:
            outbox.push(body, key=key, urgent=urgent)

    def deliver_numbered(self, body: str, seq: int) -> None:
        """A frame the fleet numbered; one already seen (a replay raced it) is skipped.
        Not kept in ``history``: a fleet resumes from the client's log in Redis."""
        if seq <= self.seq:
            return
        self.seq = seq
        outbox = self.outbox
        if outbox is not None:
            outbox.push(frames.with_seq(body, seq))

    def control(self, payload: dict[str, Any]) -> None:
        """A control frame (never replayed); it repeats the latest seq."""
        self.control_encoded(frames.encode(payload))

    def control_encoded(self, body: str, *, urgent: bool = True, key: str | None = None) -> None:
        outbox = self.outbox
        if outbox is not None:
            text = frames.with_seq(body, self.seq) if self.history is not None else body
            outbox.push(text, key=key, urgent=urgent)
