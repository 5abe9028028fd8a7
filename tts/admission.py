"""Caps on speech being synthesized at once: in all, and per client.

Past a cap a request is refused at once with :class:`SpeechBusyError` (HTTP 503 for the
total, 429 for the client's own share, both with ``Retry-After``; an ``error`` frame
``busy`` on a socket), never queued: a queue of synthesis requests only grows when the
server is already behind, and every one in it costs a socket and memory while it waits.

One synthesis is one request to speak: an HTTP speech request, one ``/ws/tts`` request,
one scene generation. Framework-free; the caps hold per process (each process of a
fleet has its own).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from prometheus_client import Counter

from tts.errors import TTSError

if TYPE_CHECKING:
    from config import Settings

# Seconds a refused client is told to wait: about what a sentence takes to speak.
RETRY_AFTER = 2.0

SYNTHESES_REFUSED = Counter(
    "genie_tts_syntheses_refused",
    "Speech requests refused at once because too many were being synthesized "
    "(reason: total, client).",
    ["reason"],
)


class SpeechBusyError(TTSError):
    """Too much speech is being synthesized (all of it, or this client's): nothing started."""

    code = "busy"

    def __init__(self, reason: str, limit: int, retry_after: float) -> None:
        whose = "of yours are" if reason == "client" else "are"
        super().__init__(
            f"busy: {limit} speech requests {whose} already being synthesized; "
            f"ask again in {retry_after:g} s"
        )
        self.reason, self.limit, self.retry_after = reason, limit, retry_after


@dataclass(eq=False, slots=True)
class Lease:
    """One synthesis slot; ``release()`` (or leaving ``with``) gives it back, once."""

    caps: SynthesisCaps
    client: str
    released: bool = False

    def release(self) -> None:
        if not self.released:
            self.released = True
            self.caps._release(self.client)

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


@dataclass(eq=False)
class SynthesisCaps:
    max_total: int = 0  # syntheses at once in this process; 0: no cap
    max_per_client: int = 0  # syntheses at once per client; 0: no cap
    retry_after: float = RETRY_AFTER
    open: int = 0
    _by_client: dict[str, int] = field(default_factory=dict, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> SynthesisCaps:
        return cls(settings.max_syntheses, settings.max_syntheses_per_client)

    def acquire(self, client: str) -> Lease:
        """A slot for ``client`` (JWT subject or peer address), or SpeechBusyError."""
        if self.max_total and self.open >= self.max_total:
            raise self._refuse("total", self.max_total)
        held = self._by_client.get(client, 0)
        if self.max_per_client and held >= self.max_per_client:
            raise self._refuse("client", self.max_per_client)
        self.open += 1
        self._by_client[client] = held + 1
        return Lease(self, client)

    async def capped(self, client: str, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        """``chunks`` holding a slot from the first chunk asked for until the stream is
        closed. A refusal raises on that first ask, i.e. before any response is started
        (the streaming routes wait for the first chunk first). Acquired and released in
        this one generator, so a consumer that closes it never leaks a slot."""
        async with contextlib.aclosing(chunks):  # type: ignore[type-var]
            with self.acquire(client):
                async for chunk in chunks:
                    yield chunk

    def _refuse(self, reason: str, limit: int) -> SpeechBusyError:
        SYNTHESES_REFUSED.labels(reason).inc()
        return SpeechBusyError(reason, limit, self.retry_after)

    def _release(self, client: str) -> None:
        self.open -= 1
        held = self._by_client.get(client, 0) - 1
        if held > 0:
            self._by_client[client] = held
        else:
            self._by_client.pop(client, None)  # bounded: only clients with open slots
