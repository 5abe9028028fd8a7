"""Any OpenAI-compatible ``/v1/audio/speech`` server through the official ``openai`` SDK:
Kokoro-FastAPI, openedai-speech, LocalAI, Speaches, or OpenAI itself.

- One SDK client per instance, on one pooled HTTP client with keep-alive, closed with
  the provider: no connection set-up per request.
- Bytes are yielded as the server sends them (``with_streaming_response`` +
  ``iter_bytes``), so the first byte reaches the caller as soon as the provider's does.
- MP3 is asked for and passed through untouched. WAV and PCM are asked for as WAV,
  whose header states the server's sample rate (OpenAI and Kokoro send 24 kHz, others
  their model's rate): WAV goes out behind the kit's own 44-byte header (so a whole
  file can get its true sizes), PCM is resampled to the kit's 22,050 Hz only when the
  server's rate differs, so every provider's PCM plays at the same rate.
- The SDK retries nothing (``max_retries=0``): the engine's fallback and breaker decide
  what happens after a failure, at once.
- Voices come from the server's list where it has one (Kokoro-FastAPI's
  ``GET /v1/audio/voices``), else from ``GENIE_OPENAI_TTS_VOICES``. A Kokoro mix
  (``af_bella+af_sky``) is accepted when every part is a known voice. The server picks
  the language from the text, so any language is accepted.
"""

from __future__ import annotations

import contextlib
import logging
import struct
import warnings
from collections.abc import AsyncIterator, Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx2
import openai

from config import OPENAI_VOICES
from tts.base import SpeechRequest, Voice
from tts.encoding import wav_header
from tts.errors import ProviderError, UnknownVoiceError

with warnings.catch_warnings():
    # Deprecated in 3.11-3.12, gone in 3.13 where the audioop-lts wheel provides it.
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

if TYPE_CHECKING:
    from config import Settings

log = logging.getLogger(__name__)

KIND = "openai"
PCM_RATE = 22050  # the kit's pcm rate (espeak's native rate), as for ElevenLabs
MAX_WAV_HEADER = 64 * 1024  # a server's WAV header (with LIST/fact chunks) fits in this
# Below uvicorn's 5 s keep-alive (what Kokoro-FastAPI and Speaches run on): a pooled
# connection is dropped by us before the server can close it under a new request.
KEEPALIVE_EXPIRY = 4.0
KEY_ENV = "GENIE_OPENAI_TTS_API_KEY"


class OpenAIProvider:
    kind = KIND
    formats = frozenset({"mp3", "wav", "pcm"})

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str | None = None,
        model: str = "kokoro",
        voice: str = "af_heart",
        voices: Iterable[str] = OPENAI_VOICES,
        timeout: float = 30.0,
        name: str = KIND,
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self._model, self._voice = model, voice
        self._voices = _voice_list(voices)
        self._timeout = timeout
        # Ours, so aclose() closes the pool through a public API; the SDK's default client
        # class keeps its own defaults (redirects, headers) on top of our limits.
        self._http = openai.DefaultAsyncHttpxClient(
            timeout=httpx2.Timeout(timeout),
            limits=httpx2.Limits(keepalive_expiry=KEEPALIVE_EXPIRY),
        )
        self._client = openai.AsyncOpenAI(
            base_url=self.base_url,
            # Local servers ignore the key, but the SDK insists on one.
            api_key=api_key or "not-needed",
            max_retries=0,
            timeout=timeout,
            http_client=self._http,
        )

    @classmethod
    def from_settings(cls, settings: Settings, base_url: str | None = None) -> OpenAIProvider:
        secret = settings.openai_tts_api_key
        url = base_url or settings.openai_tts_base_url
        return cls(
            base_url=url,
            api_key=secret.get_secret_value() if secret is not None else None,
            model=settings.openai_tts_model,
            voice=settings.openai_tts_voice,
            voices=settings.openai_tts_voices,
            timeout=settings.openai_tts_timeout,
            name=KIND if base_url is None else f"{KIND}@{urlsplit(url).netloc or url}",
        )

    async def __aenter__(self) -> OpenAIProvider:
        await self.refresh_voices()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.close()
        await self._http.aclose()

    # --- voices ---------------------------------------------------------------------

    async def refresh_voices(self) -> None:
        """Take the server's voice list where it offers one; keep the settings' otherwise."""
        try:
            listed: Any = await self._client.get("/audio/voices", cast_to=object)
        except openai.NotFoundError:
            log.info("%s lists no voices; using GENIE_OPENAI_TTS_VOICES", self.name)
            return
        except openai.APIError as exc:
            log.warning("%s: voices not listed (%s); using GENIE_OPENAI_TTS_VOICES", self.name, exc)
            return
        names = listed.get("voices") if isinstance(listed, dict) else None
        if isinstance(names, list) and names:
            # Kokoro-FastAPI lists names; others list {"id"/"name": ...} objects.
            ids = [n if isinstance(n, str) else n.get("id") or n.get("name") for n in names]
            self._voices = _voice_list(i for i in ids if isinstance(i, str))
        if self._voice.lower() not in {v.id.lower() for v in self._voices}:
            log.warning("%s has no voice %r (GENIE_OPENAI_TTS_VOICE)", self.name, self._voice)

    def voices(self) -> list[Voice]:
        return list(self._voices)

    def languages(self) -> list[str]:
        return []  # any: the server reads the language from the text

    def resolve_voice(self, voice: str | None, lang: str) -> str:
        if voice is None or not voice.strip():
            return self._voice
        # OpenAI's own names pass too: clients written for OpenAI send them, and servers
        # such as Kokoro-FastAPI map them to their voices.
        known = {v.lower(): v for v in OPENAI_VOICES} | {v.id.lower(): v.id for v in self._voices}
        parts = [known.get(part.strip().lower()) for part in voice.split("+")]
        if all(parts):
            return "+".join(p for p in parts if p)
        raise UnknownVoiceError(voice, known.values())

    # --- speech ---------------------------------------------------------------------

    async def stream(self, request: SpeechRequest) -> AsyncIterator[bytes]:
        chunks = self._sdk_chunks(request, "mp3" if request.fmt == "mp3" else "wav")
        async with contextlib.aclosing(chunks):
            if request.fmt == "mp3":
                first = b""
                async for chunk in chunks:  # enough bytes to tell MP3 from an error page
                    first += chunk
                    if len(first) >= 3:
                        break
                if first and not _looks_like_mp3(first):
                    raise ProviderError(self.name, f"the server sent no MP3 ({first[:16]!r}...)")
                yield first
                async for chunk in chunks:
                    yield chunk
                return
            rate, data = await self._wav_start(chunks)
            if request.fmt == "wav":
                yield wav_header(rate) + data
                async for chunk in chunks:
                    yield chunk
                return
            async for pcm in _resampled(_prepend(data, chunks), rate, PCM_RATE):
                yield pcm

    async def _sdk_chunks(self, request: SpeechRequest, upstream: str) -> AsyncIterator[bytes]:
        """The server's bytes with SDK and transport errors turned into ProviderError.

        Only the SDK calls sit inside ``try``: an exception thrown in at our ``yield``
        (consumer gone, cancellation) passes through untouched.
        """
        speech = self._client.audio.speech.with_streaming_response.create(
            model=self._model,
            voice=request.voice,  # resolved by the engine
            input=request.text,
            response_format=upstream,  # type: ignore[arg-type]
            speed=request.speed,
        )
        async with contextlib.AsyncExitStack() as stack:
            try:
                response = await stack.enter_async_context(speech)
            except openai.APIError as exc:
                raise self._error(exc) from exc
            body = response.iter_bytes()
            while True:
                try:
                    chunk = await anext(body)
                except StopAsyncIteration:
                    return
                except httpx2.HTTPError as exc:
                    raise ProviderError(
                        self.name, f"stream from {self.base_url} broke: {type(exc).__name__}: {exc}"
                    ) from exc
                if chunk:
                    yield chunk

    async def _wav_start(self, chunks: AsyncIterator[bytes]) -> tuple[int, bytes]:
        """Read the server's WAV header: its sample rate and the first PCM bytes."""
        head = b""
        async for chunk in chunks:
            head += chunk
            try:
                parsed = _parse_wav_header(head)
            except ValueError as exc:
                raise ProviderError(self.name, f"the server sent no usable WAV: {exc}") from exc
            if parsed is not None:
                rate, offset = parsed
                return rate, head[offset:]
            if len(head) > MAX_WAV_HEADER:
                break
        raise ProviderError(self.name, f"the server sent no 16-bit mono WAV ({head[:16]!r}...)")

    def _error(self, exc: openai.APIError) -> ProviderError:
        if isinstance(exc, openai.APITimeoutError):
            return ProviderError(
                self.name, f"timeout: no answer from {self.base_url} within {self._timeout:g} s"
            )
        if isinstance(exc, openai.APIConnectionError):
            return ProviderError(self.name, f"cannot reach {self.base_url}: {exc}")
        if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
            return ProviderError(self.name, f"authentication failed: check {KEY_ENV} ({exc})")
        return ProviderError(self.name, f"API error: {exc}")


def _voice_list(ids: Iterable[str]) -> list[Voice]:
    return [Voice(id=i, name=i, languages=()) for i in dict.fromkeys(ids) if i]


def _looks_like_mp3(head: bytes) -> bool:
    """An ID3 tag or an MPEG frame sync (11 set bits)."""
    return head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] >= 0xE0)


def _parse_wav_header(head: bytes) -> tuple[int, int] | None:
    """(sample rate, offset of the PCM data) once the header is complete, else None.

    Walks the RIFF chunks (servers add LIST or fact chunks before ``data``), and accepts
    16-bit mono PCM only. The sizes are ignored: streaming servers send 0xFFFFFFFF.
    """
    if len(head) < 12:
        return None
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        raise ValueError("not a WAV file")
    offset, rate = 12, None
    while len(head) >= offset + 8:
        chunk_id, size = head[offset : offset + 4], struct.unpack_from("<I", head, offset + 4)[0]
        if chunk_id == b"data":
            return (rate, offset + 8) if rate is not None else None
        if len(head) < offset + 8 + size:
            return None
        if chunk_id == b"fmt ":
            fmt, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", head, offset + 8)
            if fmt != 1 or channels != 1 or bits != 16:
                raise ValueError(f"WAV is format {fmt}, {channels} channels, {bits} bits")
        offset += 8 + size + (size & 1)
    return None


async def _prepend(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    if first:
        yield first
    async for chunk in rest:
        yield chunk


async def _resampled(pcm: AsyncIterator[bytes], rate: int, target: int) -> AsyncIterator[bytes]:
    """16-bit mono PCM at ``rate`` as PCM at ``target``, chunk by chunk without seams."""
    state = None
    carry = b""  # half a sample left at a chunk boundary
    async for chunk in pcm:
        data = carry + chunk
        whole = len(data) - (len(data) & 1)
        data, carry = data[:whole], data[whole:]
        if rate == target:
            out = data
        else:
            out, state = audioop.ratecv(data, 2, 1, rate, target, state)
        if out:
            yield out
