"""ElevenLabs speech through the official SDK (``AsyncElevenLabs``, HTTP streaming).

The SDK's ``text_to_speech.stream`` is an async generator: the HTTP status is checked
when the first chunk is asked for, so a refused key or a dead server raises
ProviderError before any byte is yielded and the engine's fallback can take over.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import httpx
from elevenlabs import VoiceSettings
from elevenlabs.client import AsyncElevenLabs
from elevenlabs.core.api_error import ApiError

from tts.base import SpeechRequest, Voice
from tts.encoding import StreamEncoder
from tts.errors import ProviderError, UnknownLanguageError, UnknownVoiceError

if TYPE_CHECKING:
    from config import Settings

PCM_RATE = 22050  # the kit's pcm rate (espeak's native rate), so formats agree across providers
OUTPUT_FORMATS = {"mp3": "mp3_22050_32", "pcm": "pcm_22050", "wav": "pcm_22050"}
MULTILINGUAL_MODEL = "eleven_multilingual_v2"
ENGLISH_ONLY_MODELS = frozenset({"eleven_monolingual_v1", "eleven_turbo_v2", "eleven_flash_v2"})
SPEED_RANGE = (0.7, 1.2)  # what the API accepts in voice_settings.speed
KEY_ENV = "GENIE_ELEVENLABS_API_KEY"

# ISO 639-1 codes of the multilingual v2 / v2.5 models (plus "fil").
LANGUAGES: tuple[str, ...] = (
    "ar", "bg", "cs", "da", "de", "el", "en", "es", "fi", "fil", "fr", "hi", "hr", "hu",
    "id", "it", "ja", "ko", "ms", "nl", "no", "pl", "pt", "ro", "ru", "sk", "sv", "ta",
    "tr", "uk", "vi", "zh",
)  # fmt: skip

# Long-standing premade voices (id, name, gender); every account can use them.
PREMADE: tuple[tuple[str, str, str], ...] = (
    ("21m00Tcm4TlvDq8ikWAM", "Rachel", "female"),
    ("AZnzlk1XvdvUeBnXmlld", "Domi", "female"),
    ("EXAVITQu4vr4xnSDxMaL", "Bella", "female"),
    ("ErXwobaYiN019PkySvjV", "Antoni", "male"),
    ("MF3mGyEYCl7XYWbV9V6O", "Elli", "female"),
    ("TxGEqnHWrfWFTfGW9XjX", "Josh", "male"),
    ("VR6AewLTigWG4xSOukaG", "Arnold", "male"),
    ("pNInz6obpgDQGcFmaJgB", "Adam", "male"),
    ("yoZ06aMxZJJ28mfd3POQ", "Sam", "male"),
    ("JBFqnCBsd6RMkjVDRZzb", "George", "male"),
)


class ElevenLabsProvider:
    name = "elevenlabs"
    formats = frozenset(OUTPUT_FORMATS)

    def __init__(
        self,
        api_key: str | None,
        *,
        base_url: str = "https://api.elevenlabs.io",
        voice_id: str = "21m00Tcm4TlvDq8ikWAM",
        model_id: str = "eleven_flash_v2_5",
        timeout: float = 10.0,
    ) -> None:
        self._api_key = api_key or None
        self._base_url = base_url.rstrip("/")
        self._voice_id = voice_id
        self._model_id = model_id
        self._timeout = timeout
        # We own the httpx client (the SDK takes it as a parameter) so aclose() can close
        # it through a public API instead of reaching into the SDK's private wrapper.
        self._http = httpx.AsyncClient(timeout=timeout, follow_redirects=True)
        self._client = AsyncElevenLabs(
            api_key=self._api_key,
            base_url=self._base_url,
            timeout=timeout,
            httpx_client=self._http,
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> ElevenLabsProvider:
        secret = settings.elevenlabs_api_key
        return cls(
            secret.get_secret_value() if secret is not None else None,
            base_url=settings.elevenlabs_base_url,
            voice_id=settings.elevenlabs_voice_id,
            model_id=settings.elevenlabs_model_id,
            timeout=settings.elevenlabs_timeout,
        )

    async def __aenter__(self) -> ElevenLabsProvider:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # --- voices ---------------------------------------------------------------------

    def voices(self) -> list[Voice]:
        voices = [Voice(id=i, name=n, languages=LANGUAGES, gender=g) for i, n, g in PREMADE]
        if all(v.id != self._voice_id for v in voices):
            # An account's own (cloned or library) voice given in the settings.
            voices.append(Voice(id=self._voice_id, name="configured", languages=LANGUAGES))
        return voices

    def resolve_voice(self, voice: str | None, lang: str) -> str:
        _language(lang)
        if voice is None or not voice.strip():
            return self._voice_id
        wanted = voice.strip()
        known = self.voices()
        for candidate in known:
            if wanted == candidate.id or wanted.casefold() == candidate.name.casefold():
                return candidate.id
        raise UnknownVoiceError(voice, [v.name for v in known] + [v.id for v in known])

    # --- speech ---------------------------------------------------------------------

    async def stream(self, request: SpeechRequest) -> AsyncIterator[bytes]:
        if self._api_key is None:
            raise ProviderError(self.name, f"no API key configured: set {KEY_ENV}")
        chunks = self._sdk_chunks(request)
        async with contextlib.aclosing(chunks):
            if request.fmt != "wav":
                async for chunk in chunks:
                    yield chunk
                return
            encoder = StreamEncoder("wav", PCM_RATE)
            async for chunk in chunks:
                if out := encoder.encode(chunk):
                    yield out
            if tail := encoder.flush():
                yield tail

    async def _sdk_chunks(self, request: SpeechRequest) -> AsyncIterator[bytes]:
        """The SDK's byte stream with transport and API errors turned into ProviderError.

        Only the SDK call sits inside ``try``: an exception thrown in at our ``yield``
        (consumer gone, cancellation) must pass through untouched.
        """
        audio = self._client.text_to_speech.stream(
            self.resolve_voice(request.voice, request.lang),
            text=request.text,
            output_format=OUTPUT_FORMATS[request.fmt],
            **self._options(request),
        )
        async with contextlib.aclosing(audio):
            while True:
                try:
                    chunk = await anext(audio)
                except StopAsyncIteration:
                    return
                except ApiError as exc:
                    raise self._api_error(exc) from exc
                except httpx.TimeoutException as exc:
                    raise ProviderError(
                        self.name,
                        f"timeout: no answer from {self._base_url} within {self._timeout:g} s"
                        f" ({type(exc).__name__}; GENIE_ELEVENLABS_TIMEOUT sets the limit)",
                    ) from exc
                except httpx.HTTPError as exc:
                    raise ProviderError(
                        self.name, f"cannot reach {self._base_url}: {type(exc).__name__}: {exc}"
                    ) from exc
                if chunk:
                    yield chunk

    def _options(self, request: SpeechRequest) -> dict[str, Any]:
        lang = _language(request.lang)
        model = self._model_id
        if lang != "en" and model in ENGLISH_ONLY_MODELS:
            model = MULTILINGUAL_MODEL  # an English-only model would read it with an accent
        options: dict[str, Any] = {"model_id": model}
        if model.endswith("_v2_5"):
            options["language_code"] = lang  # only the v2.5 models accept it
        if request.speed != 1.0:
            # Sent only when asked: voice_settings overrides the voice's stored settings.
            low, high = SPEED_RANGE
            options["voice_settings"] = VoiceSettings(speed=min(high, max(low, request.speed)))
        return options

    def _api_error(self, exc: ApiError) -> ProviderError:
        status, detail = exc.status_code, _detail(exc.body)
        if status in (401, 403):
            return ProviderError(
                self.name, f"authentication failed ({status}): check {KEY_ENV} ({detail})"
            )
        return ProviderError(self.name, f"API error {status}: {detail}")


def _language(lang: str) -> str:
    """'en-US' -> 'en'; anything the models do not speak is refused with the list."""
    base = lang.replace("_", "-").split("-")[0].strip().lower()
    if base not in LANGUAGES:
        raise UnknownLanguageError(lang, LANGUAGES)
    return base


def _detail(body: object) -> str:
    """The human part of an error body: {"detail": {"message": ...}} or a 422 list."""
    detail = body.get("detail", body) if isinstance(body, dict) else body
    if isinstance(detail, dict):
        detail = detail.get("message") or detail.get("status") or detail
    elif isinstance(detail, list):
        detail = "; ".join(str(d.get("msg", d)) if isinstance(d, dict) else str(d) for d in detail)
    return str(detail)[:300] or "no detail"
