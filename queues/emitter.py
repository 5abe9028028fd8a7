"""Safe calls of the injected ``emit_audio`` / ``emit_event`` callbacks.

A callback belongs to an adapter (a socket that just closed, a slow client). Whatever it
does, the queues log it and carry on: a failing or hanging emit never loses a job and never
stops a consumer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from queues.models import EmitAudio, EmitEvent

log = logging.getLogger(__name__)


class Counted(Protocol):
    """A queue whose size is announced as ``<event>`` {"value": size}."""

    event: str

    def size(self) -> int: ...


class Emitter:
    def __init__(
        self, emit_audio: EmitAudio, emit_event: EmitEvent, *, timeout: float = 5.0
    ) -> None:
        self._emit_audio = emit_audio
        self._emit_event = emit_event
        self._timeout = timeout
        # Failed or timed-out callbacks, for metrics and tests.
        self.failures = 0

    async def speak(self, msg: str, client_id: str | None) -> None:
        await self._call(lambda: self._emit_audio(msg, client_id), "emit_audio", msg[:60])

    async def event(self, name: str, data: dict[str, Any], client_id: str | None = None) -> None:
        await self._call(lambda: self._emit_event(name, data, client_id), "emit_event", name)

    async def counts(self, *queues: Counted) -> None:
        """Broadcast each queue's size (counts are global, so client_id is None)."""
        for queue in queues:
            await self.event(queue.event, {"value": queue.size()})

    async def _call(self, call: Callable[[], Awaitable[None]], what: str, detail: str) -> None:
        # The callback is invoked inside the try: a sync function that raises is caught too.
        try:
            async with asyncio.timeout(self._timeout):
                await call()
        except TimeoutError:
            self.failures += 1
            log.warning("%s(%r) took over %g s; skipped", what, detail, self._timeout)
        except Exception:
            self.failures += 1
            log.exception("%s(%r) failed; carrying on", what, detail)
