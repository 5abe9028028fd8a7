"""Cancellable audio streams for ``/api/get-audio``.

Each stream pulls the speech engine in ONE producer task (async generators and any
cancel scopes inside them must stay in the task that started them) and hands chunks
over through a two-slot queue, so synthesis runs at most two chunks ahead of the socket.

A stream ends when the HTTP client hangs up (Starlette cancels the response, whose
``finally`` cancels the producer: no orphan synthesis) or when :meth:`cancel_client`
is called for the ``/ws`` client it belongs to. A cancelled stream ends at a chunk
boundary, so the client is left with shorter but well-formed audio.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

log = logging.getLogger(__name__)

_END: Any = object()


class AudioStream:
    __slots__ = ("_queue", "_source", "cancelled", "client_id", "error", "task")

    def __init__(self, source: AsyncIterator[bytes], client_id: str | None) -> None:
        self._source = source
        self._queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=2)
        self.client_id = client_id
        self.cancelled = False
        self.error: BaseException | None = None
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self._produce())

    def cancel(self) -> None:
        self.cancelled = True
        if self.task is not None:
            self.task.cancel()

    async def first(self) -> bytes | None:
        """The first chunk (None: the stream is empty); raises what the engine raised."""
        item = await self._queue.get()
        if item is _END:
            if self.error is not None:
                raise self.error
            return None
        return item

    async def rest(self) -> AsyncIterator[bytes]:
        while True:
            item = await self._queue.get()
            if item is _END or self.cancelled:
                break
            yield item
        if self.error is not None and not self.cancelled:
            # Headers are gone already: the only honest signal left is a broken body.
            raise self.error

    async def _produce(self) -> None:
        try:
            async for chunk in self._source:
                if chunk:
                    await self._queue.put(chunk)
        except asyncio.CancelledError:
            self.cancelled = True
        except Exception as exc:
            log.warning("audio stream failed: %s", exc)
            self.error = exc
        finally:
            await _aclose(self._source)
        if self.cancelled:
            # The reader is either busy (it checks ``cancelled`` after its next get) or
            # parked on an empty queue, where this always fits.
            with contextlib.suppress(asyncio.QueueFull):
                self._queue.put_nowait(_END)
        else:
            await self._queue.put(_END)


class AudioStreams:
    """Every open stream, by ``/ws`` client, plus counters for /metrics."""

    def __init__(self) -> None:
        self._open: set[AudioStream] = set()
        self.started_total = 0
        self.cancelled_total = 0

    async def open(self, source: AsyncIterator[bytes], client_id: str | None) -> AudioStream:
        stream = AudioStream(source, client_id)
        stream.start()
        self._open.add(stream)
        self.started_total += 1
        return stream

    async def body(self, stream: AudioStream, first: bytes) -> AsyncIterator[bytes]:
        """The response body; its ``finally`` runs however the response ends."""
        try:
            yield first
            async for chunk in stream.rest():
                yield chunk
        finally:
            self.close(stream)

    def close(self, stream: AudioStream) -> None:
        if stream.task is not None and not stream.task.done():
            stream.task.cancel()
        self._open.discard(stream)

    def cancel_client(self, client_id: str) -> int:
        victims = [s for s in self._open if s.client_id == client_id]
        for stream in victims:
            stream.cancel()
        self.cancelled_total += len(victims)
        return len(victims)

    async def aclose(self) -> None:
        tasks = [s.task for s in self._open if s.task is not None]
        for stream in list(self._open):
            stream.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._open.clear()

    def __len__(self) -> int:
        return len(self._open)


async def _aclose(source: AsyncIterator[bytes]) -> None:
    aclose = getattr(source, "aclose", None)
    if aclose is None:
        return
    try:
        await aclose()
    except Exception:
        log.debug("closing an audio source failed", exc_info=True)
