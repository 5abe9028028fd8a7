"""One open ``/ws`` socket's sending side: a bounded outbox and its writer.

Frames leave in order through one path per socket, and only a writer task ever waits
on a socket, so a slow peer stalls only its own writer: everyone else's frames go out
at once. When an outbox is full the peer is not keeping up; it is closed with 1013 and
may reconnect and ``resume``.

Batches. A per-client frame pushed during one loop iteration is written in the next,
together with everything else the batch holds (``fastapi_app.sockets.flusher``); a
broadcast's frames wait for the fan-out pass (``fastapi_app.sockets.fanout``).
Queue counts are state, not history: a count pushed while an earlier count of the same
name still waits (in the batch or the backlog) replaces it, and only the latest value
goes on the wire, after everything pushed before it. Per-client frames are never
dropped that way.

Writing a batch. Most of the time a socket takes frames without waiting (its transport
buffer has room). With a ``direct`` writer (uvicorn's sansio protocol, see
``fastapi_app.sockets.direct_frames``) the whole batch goes to the transport in one write.
Otherwise each frame's ASGI send coroutine is stepped once by hand; if one does have to
wait (the peer's buffer is full) it is handed, still suspended, to a writer task started
for the occasion, which finishes it as a Task would, then sends what queued up behind
it, then ends. An idle socket holds no task at all.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any

from starlette.websockets import WebSocketDisconnect

from fastapi_app.sockets.direct_frames import DirectFrames
from fastapi_app.sockets.flusher import Batch, Flusher

log = logging.getLogger(__name__)

SLOW_CONSUMER = 1013  # "try again later": reconnect, then resume
SLOW_REASON = "send queue full: client too slow"
SendFn = Callable[[dict[str, Any]], Coroutine[Any, Any, None]]
_GONE = (WebSocketDisconnect, OSError, RuntimeError)  # what a send to a closed socket raises


class SendStats:
    """Counters shared by every outbox (plain ints: this is the hot path). ``sent``
    counts frames on the wire, ``writes`` the transport writes that carried direct ones,
    ``conflated`` the counts replaced by a newer value before they were written."""

    __slots__ = ("conflated", "dropped", "sent", "slow_closed", "writes")

    def __init__(self) -> None:
        self.sent = 0
        self.writes = 0
        self.conflated = 0
        self.dropped = 0
        self.slow_closed = 0


class Outbox:
    __slots__ = (
        "_batch",
        "_direct",
        "_flusher",
        "_frames",
        "_keys",
        "_pending",
        "_registered",
        "_send",
        "_spare",
        "_taken",
        "capacity",
        "close_request",
        "gone",
        "stats",
        "writer",
    )

    def __init__(
        self,
        send: SendFn,
        capacity: int,
        stats: SendStats,
        flusher: Flusher,
        direct: DirectFrames | None = None,
    ) -> None:
        self._send = send  # the socket's ASGI-style send
        self._direct = direct
        self._flusher = flusher
        self.capacity = capacity
        self.stats = stats
        self._batch = Batch()  # the frames waiting for the next write
        self._spare = Batch()  # the other one, swapped in at a flush
        self._registered = False  # with the flusher, to be written next iteration
        # The backlog behind a send that had to wait, with the same tombstones; ``_keys``
        # holds absolute positions (``_taken`` frames have left from the front).
        self._frames: deque[str | None] = deque()
        self._keys: dict[str, int] = {}
        self._taken = 0
        # A send that had to wait, with what it waits on; the writer finishes it.
        self._pending: tuple[Coroutine[Any, Any, None], Any] | None = None
        self.close_request: tuple[int, str] | None = None
        self.gone = False
        self.writer: asyncio.Task[None] | None = None  # only while there is a backlog

    def push(self, text: str, *, key: str | None = None, urgent: bool = True) -> None:
        """Queue one encoded frame for this socket's next write.

        ``key`` names a count: a newer one replaces it while both wait. ``urgent``: a
        per-client frame, written in the next loop iteration with whatever the batch
        holds. A broadcast's frame is not: it waits for the fan-out pass to write the
        batch (``fastapi_app.sockets.fanout``), or for a per-client frame to take it along.
        """
        if self.close_request is not None or self.gone:
            self.stats.dropped += 1
            return
        if self.writer is not None:
            self._enqueue(text, key)  # behind the backlog the writer is sending
            return
        if self._batch.add(text, key):
            self.stats.conflated += 1
        if urgent and not self._registered:
            self._registered = True
            self._flusher.urgent(self)

    def flush(self) -> None:
        """Write this iteration's batch: one direct write, else frame by frame."""
        batch = self._batch
        if not batch.texts:
            return
        # Swap batches first: whatever is pushed while this one is written (a close can
        # flush again) starts the next batch.
        self._batch, self._spare = self._spare, batch
        self._registered = False
        try:
            self._write(batch.live())
        finally:
            batch.clear()

    def _write(self, texts: list[str]) -> None:
        if self.close_request is not None or self.gone:
            self.stats.dropped += len(texts)
            return
        direct = self._direct
        if self.writer is None and direct is not None and direct.write_texts(texts):
            self.stats.sent += len(texts)
            self.stats.writes += 1
            return
        for text in texts:
            if self.writer is None:
                self._send_now(text)
            else:
                self._enqueue(text, None)

    def close(self, code: int, reason: str) -> None:
        """Drop the backlog; the close frame goes out after any send in flight. This
        iteration's batch is written first (before a close, it would have been)."""
        if self.close_request is not None or self.gone:
            return
        self.flush()
        self.close_request = (code, reason)
        self._drop_queued()
        self._start_writer()

    async def stop(self) -> None:
        """The socket is gone: end the writer (it may be parked on a stalled send)."""
        self.gone = True
        writer = self.writer
        if writer is not None and not writer.done():
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)
        if self._pending is not None:
            self._pending[0].close()
            self._pending = None
        self._drop_queued()

    def __len__(self) -> int:
        return len(self._frames) + len(self._batch.texts)

    @property
    def direct(self) -> bool:
        """Whether frames may skip ASGI (see ``fastapi_app.sockets.direct_frames``)."""
        return self._direct is not None

    # --- internals ----------------------------------------------------------------------

    def _enqueue(self, text: str, key: str | None) -> None:
        """Behind the backlog (bounded: a full one means the peer is not keeping up)."""
        frames = self._frames
        if len(frames) >= self.capacity:
            self.stats.slow_closed += 1
            self.stats.dropped += 1
            self.close(SLOW_CONSUMER, SLOW_REASON)
            return
        if key is not None:
            earlier = self._keys.get(key)
            if earlier is not None and earlier >= self._taken:
                frames[earlier - self._taken] = None
                self.stats.conflated += 1
            self._keys[key] = self._taken + len(frames)
        frames.append(text)

    def _drop_queued(self) -> None:
        queued = sum(text is not None for text in self._frames)
        queued += len(self._batch.live())
        self.stats.dropped += queued
        self._frames.clear()
        self._keys.clear()
        self._batch.clear()
        self._taken = 0

    def _send_now(self, text: str) -> None:
        coro = self._send({"type": "websocket.send", "text": text})
        try:
            waiting_on = coro.send(None)
        except StopIteration:
            self.stats.sent += 1
            return
        except _GONE:
            self.gone = True
            self.stats.dropped += 1
            return
        self._pending = (coro, waiting_on)
        self._start_writer()

    def _start_writer(self) -> None:
        if self.writer is None:
            self.writer = asyncio.create_task(self._run())

    async def _run(self) -> None:
        frames, send = self._frames, self._send
        try:
            if self._pending is not None:
                await self._finish_pending()
            while frames:
                text = frames.popleft()
                self._taken += 1
                if text is None:
                    continue  # a count that a newer one replaced
                await send({"type": "websocket.send", "text": text})
                self.stats.sent += 1
            if self.close_request is not None:
                code, reason = self.close_request
                await send({"type": "websocket.close", "code": code, "reason": reason})
                self.gone = True
        except _GONE as exc:
            # The peer left (or the socket was closed elsewhere): nothing more to send.
            self.gone = True
            log.debug("writer stopped: %r", exc)
        finally:
            # Backlog cleared (no await since the last check): later frames go direct.
            self.writer = None

    async def _finish_pending(self) -> None:
        """Drive the send that :meth:`_send_now` started and that had to wait."""
        assert self._pending is not None
        coro, waiting_on = self._pending
        while True:
            await _until_done(waiting_on)
            try:
                waiting_on = coro.send(None)
            except StopIteration:
                break
            self._pending = (coro, waiting_on)
        self._pending = None
        self.stats.sent += 1


async def _until_done(waiting_on: Any) -> None:
    """Wait, as a Task would, for what a hand-stepped coroutine yielded: a future (resume
    it once the future is done; it reads the result itself) or None (a bare yield).

    The future is watched through a callback, never awaited here: it is already marked
    as awaited by the coroutine that yielded it, and awaiting it twice is an error.
    """
    if waiting_on is None:
        await asyncio.sleep(0)
        return
    done = asyncio.get_running_loop().create_future()

    def wake(_: Any) -> None:
        if not done.done():
            done.set_result(None)

    waiting_on.add_done_callback(wake)
    await done
