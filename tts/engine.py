"""The speech engine: validation, cache, and the provider chain with its balancer.

``stream()`` validates EAGERLY and only then returns the async iterator, so an HTTP
adapter can answer 413/422 before it starts a streaming response. The providers that
accept the request are tried in the order the balancer gives (``tts.balancer``: policy,
circuit breakers); if one fails, or sends no byte within ``first_byte_timeout``, before
its first byte, the next one speaks (logged and counted). After the first byte an error
propagates: audio of two providers cannot be spliced into one file.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from tts import metrics
from tts.balancer import Balancer
from tts.base import FORMATS, MEDIA_TYPES, AudioFormat, SpeechProvider, SpeechRequest, Voice
from tts.cache import AudioCache, CacheKey
from tts.encoding import patch_wav_sizes
from tts.errors import (
    AllProvidersFailedError,
    InvalidSpeedError,
    InvalidTextError,
    NotOneOfError,
    ProviderError,
    TextTooLongError,
    TTSError,
    UnsupportedFormatError,
)

if TYPE_CHECKING:
    from config import Settings

log = logging.getLogger(__name__)

SPEED_RANGE = (0.25, 4.0)
MAX_CHARS = 5000
CHUNK_BYTES = 16 * 1024  # cache hits are streamed in chunks of this size
PROVIDER_NAMES = ("espeak", "sample", "elevenlabs", "openai")


@dataclass(frozen=True, slots=True)
class _Plan:
    """A validated request: the providers that accept it, in chain order."""

    text: str
    lang: str
    speed: float
    fmt: AudioFormat
    candidates: tuple[tuple[SpeechProvider, SpeechRequest], ...]


class SpeechEngine:
    def __init__(
        self,
        providers: Iterable[SpeechProvider],
        *,
        voice: str | None = None,
        lang: str = "en",
        speed: float = 1.0,
        fmt: str = "mp3",
        max_chars: int = MAX_CHARS,
        cache: AudioCache | None = None,
        policy: str = "fallback",
        first_byte_timeout: float = 10.0,
        breaker_failures: int = 3,
        breaker_cooldown: float = 30.0,
    ) -> None:
        self.providers = list(providers)
        if not self.providers:
            raise ValueError(f"no speech provider given; valid providers: {PROVIDER_NAMES}")
        names = [provider.name for provider in self.providers]
        if len(set(names)) < len(names):
            raise ValueError(f"a speech provider is listed twice: {', '.join(names)}")
        self.voice, self.lang, self.speed, self.fmt = voice, lang, speed, fmt
        self.max_chars, self.cache = max_chars, cache
        self.first_byte_timeout = first_byte_timeout
        self.balancer = Balancer(
            ((p.name, getattr(p, "kind", p.name)) for p in self.providers),
            policy=policy,
            breaker_failures=breaker_failures,
            cooldown=breaker_cooldown,
        )

    # --- lifecycle ------------------------------------------------------------------
    async def __aenter__(self) -> SpeechEngine:
        """Start providers that have a start-up (espeak loads its library and voices).

        A provider that cannot start is logged and left in the chain: it fails (and is
        counted) per request, so the others still speak and it recovers when it can.
        """
        try:
            for provider in self.providers:
                await self._start(provider)
        except BaseException:
            await self.aclose()
            raise
        return self

    @staticmethod
    async def _start(provider: SpeechProvider) -> None:
        enter = getattr(provider, "__aenter__", None)
        if enter is None:
            return
        try:
            await enter()
        except ProviderError as exc:
            log.warning("speech provider %s did not start: %s", provider.name, exc)

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        for provider in self.providers:
            try:
                await provider.aclose()
            except Exception:  # one provider failing to close must not keep others open
                log.exception("closing speech provider %s failed", provider.name)

    # --- what is on offer -----------------------------------------------------------
    def voices(self) -> list[Voice]:
        """The voices of the providers that are not cooling down, first listing wins."""
        seen: dict[str, Voice] = {}
        for provider in self.providers:
            if self.balancer.health[provider.name].state == "cooling_down":
                continue
            for voice in provider.voices():
                seen.setdefault(voice.id, voice)
        return list(seen.values())

    def languages(self) -> list[str]:
        found: set[str] = set()
        for provider in self.providers:
            listed = getattr(provider, "languages", None)
            if listed is not None:
                found.update(listed())
            else:
                found.update(lang for voice in provider.voices() for lang in voice.languages)
        return sorted(found)

    @property
    def failures(self) -> Counter[str]:
        """Provider name -> failures so far (kept by each provider's health)."""
        return Counter({n: h.failures for n, h in self.balancer.health.items() if h.failures})

    def health(self) -> list[dict[str, object]]:
        """Each provider's state, load, failures and first-byte p50/p99 (ms)."""
        return self.balancer.snapshot()

    def formats(self) -> list[str]:
        offered = set().union(*(provider.formats for provider in self.providers))
        return [fmt for fmt in FORMATS if fmt in offered]

    def media_type(self, fmt: str | None = None) -> str:
        name = (fmt or self.fmt).strip().lower()
        if name not in MEDIA_TYPES:
            raise UnsupportedFormatError(name, self.formats())
        return MEDIA_TYPES[name]

    # --- speech ---------------------------------------------------------------------
    def stream(
        self,
        text: str,
        *,
        voice: str | None = None,
        lang: str | None = None,
        speed: float | None = None,
        fmt: str | None = None,
    ) -> AsyncIterator[bytes]:
        """Validate now (raising TTSError subclasses), then stream the audio bytes."""
        return self._stream(self._plan(text, voice, lang, speed, fmt))

    async def synthesize(
        self,
        text: str,
        *,
        voice: str | None = None,
        lang: str | None = None,
        speed: float | None = None,
        fmt: str | None = None,
    ) -> bytes:
        """The whole file; a WAV gets its real sizes instead of streaming ones."""
        plan = self._plan(text, voice, lang, speed, fmt)
        data = b"".join([chunk async for chunk in self._stream(plan)])
        return patch_wav_sizes(data) if plan.fmt == "wav" else data

    def _plan(
        self,
        text: str,
        voice: str | None,
        lang: str | None,
        speed: float | None,
        fmt: str | None,
    ) -> _Plan:
        if not isinstance(text, str) or not text.strip():
            raise InvalidTextError(f"text is empty; send 1 to {self.max_chars} characters")
        if len(text) > self.max_chars:
            raise TextTooLongError(len(text), self.max_chars)
        speed = self.speed if speed is None else speed
        low, high = SPEED_RANGE
        if not isinstance(speed, int | float) or not math.isfinite(speed):
            raise InvalidSpeedError(speed, low, high)
        if not low <= speed <= high:
            raise InvalidSpeedError(speed, low, high)
        name = (fmt or self.fmt).strip().lower()
        if name not in self.formats():
            raise UnsupportedFormatError(name, self.formats())
        language = (lang or self.lang).strip()
        candidates = self._candidates(text, voice, language, float(speed), name)
        return _Plan(text, language, float(speed), cast(AudioFormat, name), candidates)

    def _candidates(
        self, text: str, voice: str | None, lang: str, speed: float, fmt: str
    ) -> tuple[tuple[SpeechProvider, SpeechRequest], ...]:
        found: list[tuple[SpeechProvider, SpeechRequest]] = []
        refusals: list[TTSError] = []  # the provider does not offer what was asked
        broken: list[ProviderError] = []  # the provider cannot even list its voices
        for provider in self.providers:
            if fmt not in provider.formats:
                continue
            try:
                resolved = self._resolve(provider, voice, lang)
            except ProviderError as exc:
                broken.append(self._failed(provider, exc, falling_back=True))
                continue
            except TTSError as exc:
                refusals.append(exc)
                continue
            request = SpeechRequest(text, resolved, lang, speed, cast(AudioFormat, fmt))
            found.append((provider, request))
        if found:
            return tuple(found)
        raise _merge(refusals) if refusals else AllProvidersFailedError(broken)

    def _resolve(self, provider: SpeechProvider, voice: str | None, lang: str) -> str:
        if voice is not None or self.voice is None:
            return provider.resolve_voice(voice, lang)
        try:
            return provider.resolve_voice(self.voice, lang)
        except TTSError:
            # The configured default voice belongs to another provider of the chain.
            return provider.resolve_voice(None, lang)

    async def _stream(self, plan: _Plan) -> AsyncIterator[bytes]:
        if self.cache is not None:
            hit = await self._cached(plan)
            if hit is not None:
                if plan.fmt == "wav":
                    hit = patch_wav_sizes(hit)  # the whole file is known: say its true size
                for start in range(0, len(hit), CHUNK_BYTES):
                    yield hit[start : start + CHUNK_BYTES]
                return
        failures: list[ProviderError] = []
        for provider, request in self.balancer.order(plan.candidates, _provider_name):
            health = self.balancer.health[provider.name]
            health.started()
            decided = False  # success or failure recorded for this attempt
            try:
                async with _closing(provider.stream(request)) as chunks:
                    started = time.perf_counter()
                    try:
                        async with asyncio.timeout(self.first_byte_timeout):
                            first = await _first_chunk(chunks)
                    except Exception as exc:  # failure or silence before the first byte
                        decided = True
                        failures.append(self._failed(provider, exc, falling_back=True))
                        continue
                    elapsed = time.perf_counter() - started
                    decided = True
                    health.succeeded(elapsed)
                    metrics.FIRST_BYTE_SECONDS.labels(provider.name).observe(elapsed)
                    rest = self._rest(provider, request, first, chunks)
                    async with contextlib.aclosing(rest):
                        async for chunk in rest:
                            yield chunk
                    return
            finally:
                health.ended()
                if not decided:
                    health.abandoned()
        raise AllProvidersFailedError(failures)

    async def _rest(
        self,
        provider: SpeechProvider,
        request: SpeechRequest,
        first: bytes,
        chunks: AsyncIterator[bytes],
    ) -> AsyncIterator[bytes]:
        """Yield ``first`` and the rest; keep a copy for the cache if it is small enough."""
        kept: list[bytes] | None = [] if self.cache is not None else None
        max_kept = self.cache.max_entry_bytes if self.cache is not None else 0
        size = 0
        chunk = first
        while True:
            if chunk:
                yield chunk
                size += len(chunk)
                if kept is not None and size <= max_kept:
                    kept.append(chunk)
                else:
                    kept = None  # too big to cache: stop copying
            try:
                chunk = await anext(chunks)
            except StopAsyncIteration:
                break
            except Exception as exc:  # after the first byte there is no way back
                error = self._failed(provider, exc, falling_back=False)
                if error is exc:
                    raise
                raise error from exc
        if kept is not None and self.cache is not None:
            await self.cache.put(_key(provider, request), b"".join(kept))

    async def _cached(self, plan: _Plan) -> bytes | None:
        assert self.cache is not None
        for provider, request in plan.candidates:
            data = await self.cache.get(_key(provider, request))
            if data is not None:
                metrics.CACHE_HITS.inc()
                return data
        metrics.CACHE_MISSES.inc()
        return None

    def _failed(
        self, provider: SpeechProvider, exc: Exception, *, falling_back: bool
    ) -> ProviderError:
        if isinstance(exc, ProviderError):
            error = exc
        elif isinstance(exc, TimeoutError):
            error = ProviderError(
                provider.name,
                f"no audio within {self.first_byte_timeout:g} s "
                "(GENIE_TTS_FIRST_BYTE_TIMEOUT sets the limit)",
            )
        else:
            error = ProviderError(provider.name, f"{type(exc).__name__}: {exc}")
        self.balancer.health[provider.name].failed()
        metrics.FAILURES.labels(provider.name).inc()
        if falling_back:
            log.warning("speech provider %s failed, trying the next one: %s", provider.name, error)
        else:
            log.error("speech provider %s failed mid-stream: %s", provider.name, error)
        return error


def _provider_name(candidate: tuple[SpeechProvider, SpeechRequest]) -> str:
    return candidate[0].name


def _key(provider: SpeechProvider, request: SpeechRequest) -> CacheKey:
    return CacheKey(
        request.text, provider.name, request.voice, request.lang, request.speed, request.fmt
    )


async def _first_chunk(chunks: AsyncIterator[bytes]) -> bytes:
    """The first non-empty chunk, or b"" if the provider ended without audio."""
    async for chunk in chunks:
        if chunk:
            return chunk
    return b""


@contextlib.asynccontextmanager
async def _closing(chunks: AsyncIterator[bytes]) -> AsyncIterator[AsyncIterator[bytes]]:
    """Close a provider's stream however we leave it (done, failed, abandoned)."""
    try:
        yield chunks
    finally:
        close = getattr(chunks, "aclose", None)
        if close is not None:
            try:
                await close()
            except Exception:  # the stream already failed or ended; this adds nothing
                log.debug("closing a speech stream raised", exc_info=True)


def _merge(refusals: list[TTSError]) -> TTSError:
    """One error for "no provider accepts this": allowed values of all of them."""
    first = refusals[0]
    if all(type(r) is type(first) for r in refusals) and isinstance(first, NotOneOfError):
        allowed = {value for r in refusals for value in cast(NotOneOfError, r).allowed}
        return type(first)(first.value, allowed)
    return first


def build_speech_engine(settings: Settings) -> SpeechEngine:
    """The engine described by ``settings`` (chain, defaults, limits, cache)."""
    providers = [_provider(spec.strip(), settings) for spec in settings.tts_providers]
    cache = None
    if settings.tts_cache_entries > 0 or settings.tts_cache_dir is not None:
        cache = AudioCache(settings.tts_cache_entries, directory=settings.tts_cache_dir)
    return SpeechEngine(
        providers,
        voice=settings.tts_voice,
        lang=settings.tts_lang,
        speed=settings.tts_speed,
        fmt=settings.tts_format,
        max_chars=settings.tts_max_chars,
        cache=cache,
        policy=settings.tts_policy,
        first_byte_timeout=settings.tts_first_byte_timeout,
        breaker_failures=settings.tts_breaker_failures,
        breaker_cooldown=settings.tts_breaker_cooldown,
    )


def _provider(spec: str, settings: Settings) -> SpeechProvider:
    """``kind`` or ``kind@URL`` (another instance of an HTTP provider) -> a provider."""
    name, _, url = spec.partition("@")
    name = name.strip().lower()
    if name == "openai":
        from tts.openai_compatible import OpenAIProvider  # imports the SDK: only when asked

        return OpenAIProvider.from_settings(settings, url or None)
    if url:
        raise ValueError(f"speech provider {name!r} takes no URL (only openai@URL does)")
    if name == "espeak":
        from tts.espeak import EspeakProvider

        return EspeakProvider(bitrate_kbps=settings.tts_mp3_bitrate)
    if name == "sample":
        from tts.sample import SampleProvider

        return SampleProvider()
    if name == "elevenlabs":
        from tts.elevenlabs import ElevenLabsProvider  # imports the SDK: only when asked

        return ElevenLabsProvider.from_settings(settings)
    raise ValueError(
        f"unknown speech provider {name!r}; valid providers: {', '.join(PROVIDER_NAMES)}"
    )
