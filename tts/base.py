"""What every speech provider offers. Providers yield encoded audio bytes in the
requested format; the engine adds validation, caching and the fallback chain."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal, Protocol, get_args, runtime_checkable

AudioFormat = Literal["mp3", "wav", "pcm"]
FORMATS: tuple[str, ...] = get_args(AudioFormat)
MEDIA_TYPES: dict[str, str] = {
    "mp3": "audio/mpeg",
    "wav": "audio/wav",
    "pcm": "audio/L16",  # raw signed 16-bit little-endian mono; rate in SpeechRequest
}


@dataclass(frozen=True, slots=True)
class Voice:
    id: str  # what callers pass as ``voice``
    name: str
    languages: tuple[str, ...]
    gender: str | None = None


@dataclass(frozen=True, slots=True)
class SpeechRequest:
    """A validated request. ``voice`` is resolved (never None) by the engine."""

    text: str
    voice: str
    lang: str
    speed: float = 1.0
    fmt: AudioFormat = "mp3"


@runtime_checkable
class SpeechProvider(Protocol):
    """A speech provider. Optional extras the engine uses when present:
    ``languages() -> list[str]`` (else the voices' languages are listed) and
    ``__aenter__`` (awaited by ``SpeechEngine.__aenter__`` to start the provider; a
    ProviderError there is logged and the provider stays in the chain)."""

    name: str
    formats: frozenset[str]

    def voices(self) -> list[Voice]: ...

    def resolve_voice(self, voice: str | None, lang: str) -> str:
        """Return the provider's voice id or raise UnknownVoiceError/UnknownLanguageError."""
        ...

    def stream(self, request: SpeechRequest) -> AsyncIterator[bytes]:
        """Yield audio as soon as it exists; raise ProviderError on failure."""
        ...

    async def aclose(self) -> None: ...
