"""The ElevenLabs provider through the real SDK against the fake server on loopback."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest

from config import Settings
from tests import audio
from tests.fakes.elevenlabs_server import FakeElevenLabs, run_in_thread
from tts.base import SpeechProvider, SpeechRequest
from tts.elevenlabs import OUTPUT_FORMATS, ElevenLabsProvider
from tts.errors import ProviderError, UnknownLanguageError, UnknownVoiceError

KEY = "test-key"
MULTI = "eleven_multilingual_v2"
TEXT = "Hello from the fake ElevenLabs server. This is a streaming test."


@pytest.fixture
async def server() -> AsyncIterator[FakeElevenLabs]:
    async with FakeElevenLabs(api_key=KEY) as fake:
        yield fake


@pytest.fixture
async def provider(server: FakeElevenLabs) -> AsyncIterator[ElevenLabsProvider]:
    async with ElevenLabsProvider(KEY, base_url=server.url, timeout=5.0) as speech:
        yield speech


def request(text: str = TEXT, fmt: str = "mp3", **kw: object) -> SpeechRequest:
    fields: dict[str, object] = {"voice": "21m00Tcm4TlvDq8ikWAM", "lang": "en", **kw}
    return SpeechRequest(text=text, fmt=fmt, **fields)  # type: ignore[arg-type]


async def collect(speech: ElevenLabsProvider, req: SpeechRequest) -> list[bytes]:
    return [chunk async for chunk in speech.stream(req)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.anyio
async def test_is_a_speech_provider(provider: ElevenLabsProvider) -> None:
    assert isinstance(provider, SpeechProvider)
    assert provider.formats == {"mp3", "wav", "pcm"}


@pytest.mark.anyio
async def test_audio_streams_while_the_server_is_still_sending(
    provider: ElevenLabsProvider, server: FakeElevenLabs
) -> None:
    chunks: list[bytes] = []
    async for chunk in provider.stream(request()):
        if not chunks:
            # The first bytes are ours before the server wrote its last one: not buffered.
            assert not server.requests[0].finished
        chunks.append(chunk)
    assert len(chunks) > 1
    assert server.requests[0].finished and server.requests[0].chunks_sent > 1
    data = b"".join(chunks)
    assert audio.duration(data) > 1.0
    assert audio.rms(data) > 1000  # a tone, not silence


@pytest.mark.anyio
async def test_duration_grows_with_text(provider: ElevenLabsProvider) -> None:
    short = b"".join(await collect(provider, request("Short one.")))
    long = b"".join(await collect(provider, request("A much longer sentence. " * 8)))
    assert audio.duration(long) > 3 * audio.duration(short) > 0


@pytest.mark.anyio
@pytest.mark.parametrize("fmt", ["mp3", "pcm", "wav"])
async def test_every_format_decodes(
    provider: ElevenLabsProvider, server: FakeElevenLabs, fmt: str
) -> None:
    data = b"".join(await collect(provider, request(fmt=fmt)))
    samples, rate = audio.decode(data, fmt)
    assert fmt == "mp3" or rate == 22050  # miniaudio hands mp3 back resampled to 44.1 kHz
    # The fake makes 0.07 s of tone per character; nothing may be lost on the way.
    expected = len(TEXT) * server.seconds_per_char
    assert expected * 0.9 < len(samples) / rate < expected * 1.2
    assert audio.rms(data, fmt) > 1000
    assert server.requests[0].output_format == OUTPUT_FORMATS[fmt]


@pytest.mark.anyio
async def test_request_carries_key_voice_model_and_format(
    provider: ElevenLabsProvider, server: FakeElevenLabs
) -> None:
    await collect(provider, request(voice="adam", lang="de-DE", speed=3.0))
    seen = server.requests[0]
    assert seen.api_key == KEY
    assert seen.voice_id == "pNInz6obpgDQGcFmaJgB"  # the name was resolved to the id
    assert seen.model_id == "eleven_flash_v2_5"
    assert seen.output_format == "mp3_22050_32"
    assert seen.text == TEXT
    assert seen.body["language_code"] == "de"
    assert seen.body["voice_settings"]["speed"] == 1.2  # clamped to the API's range


@pytest.mark.anyio
async def test_default_speed_leaves_stored_voice_settings_alone(
    provider: ElevenLabsProvider, server: FakeElevenLabs
) -> None:
    await collect(provider, request())
    assert "voice_settings" not in server.requests[0].body


@pytest.mark.anyio
async def test_english_only_model_switches_to_multilingual(server: FakeElevenLabs) -> None:
    async with ElevenLabsProvider(KEY, base_url=server.url, model_id="eleven_turbo_v2") as speech:
        await collect(speech, request(lang="en"))
        await collect(speech, request(lang="fr"))
    assert [r.model_id for r in server.requests] == ["eleven_turbo_v2", "eleven_multilingual_v2"]


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["401", "wrong-key"])
async def test_refused_key_fails_before_any_byte(server: FakeElevenLabs, mode: str) -> None:
    server.mode = "401" if mode == "401" else "ok"
    key = KEY if mode == "401" else "not-the-key"
    async with ElevenLabsProvider(key, base_url=server.url) as speech:
        stream = speech.stream(request())
        with pytest.raises(ProviderError) as caught:
            await anext(stream)  # the very first byte already fails
    message = str(caught.value)
    assert "authentication failed (401)" in message
    assert "GENIE_ELEVENLABS_API_KEY" in message and "Invalid API key" in message
    assert caught.value.provider == "elevenlabs"


@pytest.mark.anyio
async def test_missing_key_is_a_provider_error_without_a_request(server: FakeElevenLabs) -> None:
    async with ElevenLabsProvider(None, base_url=server.url) as speech:
        with pytest.raises(ProviderError, match="no API key configured: set GENIE_ELEVENLABS"):
            await collect(speech, request())
    assert server.requests == []


@pytest.mark.anyio
async def test_timeout_is_a_provider_error(server: FakeElevenLabs) -> None:
    server.mode = "slow"
    async with ElevenLabsProvider(KEY, base_url=server.url, timeout=0.3) as speech:
        with pytest.raises(ProviderError, match=r"timeout: no answer from .* within 0\.3 s"):
            await anext(speech.stream(request()))


@pytest.mark.anyio
async def test_server_error_names_status_and_message(server: FakeElevenLabs) -> None:
    server.mode = "500"
    async with ElevenLabsProvider(KEY, base_url=server.url) as speech:
        with pytest.raises(ProviderError, match="API error 500: synthetic failure"):
            await collect(speech, request())
    assert len(server.requests) == 1  # the SDK does not retry streaming calls


@pytest.mark.anyio
async def test_unreachable_server_is_a_provider_error() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    async with ElevenLabsProvider(KEY, base_url=url) as speech:
        with pytest.raises(ProviderError, match=r"cannot reach http://127\.0\.0\.1:"):
            await collect(speech, request())


@pytest.mark.anyio
async def test_unknown_voice_and_language(
    provider: ElevenLabsProvider, server: FakeElevenLabs
) -> None:
    with pytest.raises(UnknownVoiceError) as caught:
        provider.resolve_voice("Nobody", "en")
    assert "Rachel" in caught.value.allowed and "21m00Tcm4TlvDq8ikWAM" in caught.value.allowed
    assert "Rachel" in str(caught.value)
    with pytest.raises(UnknownVoiceError):
        await collect(provider, request(voice="Nobody"))
    with pytest.raises(UnknownLanguageError, match="valid languages: ar, bg"):
        provider.resolve_voice(None, "xx")
    assert server.requests == []


@pytest.mark.anyio
async def test_voices_and_resolution(provider: ElevenLabsProvider) -> None:
    names = {v.name for v in provider.voices()}
    assert {"Rachel", "Adam", "George"} <= names
    assert provider.resolve_voice(None, "en") == "21m00Tcm4TlvDq8ikWAM"
    assert provider.resolve_voice("  GEORGE ", "en_GB") == "JBFqnCBsd6RMkjVDRZzb"
    assert provider.resolve_voice("TxGEqnHWrfWFTfGW9XjX", "ja") == "TxGEqnHWrfWFTfGW9XjX"


@pytest.mark.anyio
async def test_from_settings(server: FakeElevenLabs) -> None:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        elevenlabs_api_key=KEY,
        elevenlabs_base_url=server.url,
        elevenlabs_voice_id="my-cloned-voice",
        elevenlabs_model_id=MULTI,
        elevenlabs_timeout=2.0,
    )
    async with ElevenLabsProvider.from_settings(settings) as speech:
        assert speech.resolve_voice(None, "en") == "my-cloned-voice"
        assert "my-cloned-voice" in {v.id for v in speech.voices()}
        data = b"".join(await collect(speech, request(voice="my-cloned-voice")))
    assert audio.duration(data) > 0
    seen = server.requests[0]
    assert (seen.voice_id, seen.model_id, seen.api_key) == ("my-cloned-voice", MULTI, KEY)
    assert "language_code" not in seen.body  # multilingual v2 refuses it


@pytest.mark.anyio
async def test_early_close_then_reuse(provider: ElevenLabsProvider) -> None:
    stream = provider.stream(request("Long text. " * 30))
    assert await anext(stream)
    await stream.aclose()  # a listener went away mid-stream
    data = b"".join(await collect(provider, request()))
    assert audio.duration(data) > 0


@pytest.mark.anyio
async def test_aclose_closes_the_http_client_the_sdk_uses(server: FakeElevenLabs) -> None:
    speech = ElevenLabsProvider(KEY, base_url=server.url)
    await speech.aclose()
    with pytest.raises(RuntimeError, match="client has been closed"):
        await collect(speech, request())
    assert server.requests == []


def test_fake_server_runs_in_a_thread_for_sync_callers() -> None:
    with run_in_thread(api_key=KEY) as fake:

        async def speak() -> bytes:
            async with ElevenLabsProvider(KEY, base_url=fake.url) as speech:
                return b"".join(await collect(speech, request(fmt="pcm")))

        data = asyncio.run(speak())
    assert audio.duration(data, "pcm") > 0
    assert fake.requests[0].output_format == "pcm_22050"
