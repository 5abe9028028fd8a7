"""The OpenAI-compatible provider through the official SDK against a fake server on
loopback, alone and in the engine's balanced chain. Audio is decoded and measured."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest

from tests import audio
from tests.fakes.openai_speech_server import SAMPLE_RATE, FakeOpenAISpeech
from tts.base import SpeechProvider, SpeechRequest
from tts.encoding import WAV_HEADER_BYTES
from tts.engine import SpeechEngine
from tts.errors import AllProvidersFailedError, ProviderError, UnknownVoiceError
from tts.espeak import EspeakProvider
from tts.openai_compatible import PCM_RATE, OpenAIProvider

pytestmark = pytest.mark.anyio

KEY = "test-key"
TEXT = "Hello from the fake speech server. This is a streaming test."
SECONDS = len(TEXT) * 0.07  # the fake's tone lasts this long at speed 1


@pytest.fixture
async def server() -> AsyncIterator[FakeOpenAISpeech]:
    async with FakeOpenAISpeech(api_key=KEY) as fake:
        yield fake


def provider_for(fake: FakeOpenAISpeech, **kw: object) -> OpenAIProvider:
    options: dict[str, object] = {"api_key": KEY, "voice": "af_bella", "timeout": 5.0, **kw}
    return OpenAIProvider(base_url=fake.url, name=f"openai@{fake.url}", **options)  # type: ignore[arg-type]


@pytest.fixture
async def provider(server: FakeOpenAISpeech) -> AsyncIterator[OpenAIProvider]:
    async with provider_for(server) as speech:
        yield speech


def request(text: str = TEXT, fmt: str = "mp3", **kw: object) -> SpeechRequest:
    fields: dict[str, object] = {"voice": "af_bella", "lang": "en", **kw}
    return SpeechRequest(text=text, fmt=fmt, **fields)  # type: ignore[arg-type]


async def collect(speech: SpeechProvider, req: SpeechRequest) -> bytes:
    return b"".join([chunk async for chunk in speech.stream(req)])


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- the provider -----------------------------------------------------------------------


async def test_mp3_streams_through_the_sdk_while_the_server_still_sends(
    provider: OpenAIProvider, server: FakeOpenAISpeech
) -> None:
    assert isinstance(provider, SpeechProvider)
    chunks: list[bytes] = []
    async for chunk in provider.stream(request()):
        if not chunks:
            assert not server.requests[0].finished  # first bytes are ours before the last
        chunks.append(chunk)
    seen = server.requests[0]
    assert (seen.model, seen.voice, seen.response_format, seen.api_key) == (
        "kokoro", "af_bella", "mp3", KEY,
    )  # fmt: skip
    data = b"".join(chunks)
    assert len(chunks) > 1 and seen.finished
    assert abs(audio.duration(data) - SECONDS) < 0.15
    assert audio.rms(data) > 1000


async def test_wav_gets_the_kits_header_whatever_chunks_the_server_adds() -> None:
    async with (
        FakeOpenAISpeech(api_key=KEY, wav_extra_chunk=True) as fake,
        provider_for(fake) as speech,
    ):
        data = await collect(speech, request(fmt="wav"))
    assert fake.requests[0].response_format == "wav"
    assert data[36:40] == b"data" and len(data) > WAV_HEADER_BYTES
    samples, rate = audio.decode(data, "wav")
    assert rate == SAMPLE_RATE
    assert abs(len(samples) / rate - SECONDS) < 0.01


async def test_pcm_is_resampled_to_the_kits_rate(
    provider: OpenAIProvider, server: FakeOpenAISpeech
) -> None:
    data = await collect(provider, request(fmt="pcm"))
    assert server.requests[0].response_format == "wav"  # the header says the rate
    assert len(data) % 2 == 0
    assert abs(audio.duration(data, "pcm", PCM_RATE) - SECONDS) < 0.01
    assert audio.rms(data, "pcm") > 1000


async def test_speed_is_passed_through(provider: OpenAIProvider, server: FakeOpenAISpeech) -> None:
    fast = await collect(provider, request(speed=2.0))
    assert server.requests[0].speed == 2.0
    assert abs(audio.duration(fast) - SECONDS / 2) < 0.15


async def test_voices_come_from_the_server_and_unknown_ones_are_refused(
    provider: OpenAIProvider,
) -> None:
    assert [v.id for v in provider.voices()] == ["af_bella", "af_sky", "am_adam", "bf_emma"]
    assert provider.resolve_voice("AF_SKY", "de") == "af_sky"  # any language: the server reads it
    assert provider.resolve_voice("af_bella+am_adam", "en") == "af_bella+am_adam"
    assert provider.resolve_voice("alloy", "en") == "alloy"  # OpenAI's names pass
    assert provider.resolve_voice(None, "en") == "af_bella"
    with pytest.raises(UnknownVoiceError, match="af_bella"):
        provider.resolve_voice("nobody", "en")


async def test_a_server_without_a_voice_list_offers_the_configured_voices() -> None:
    async with (
        FakeOpenAISpeech(api_key=KEY, list_voices=False) as fake,
        provider_for(fake, voices=["alloy", "nova"]) as speech,
    ):
        assert [v.id for v in speech.voices()] == ["alloy", "nova"]


@pytest.mark.parametrize(
    ("mode", "message"),
    [("500", "API error"), ("garbage", "no MP3"), ("die_mid_stream", "broke")],
)
async def test_server_failures_are_provider_errors(
    provider: OpenAIProvider, server: FakeOpenAISpeech, mode: str, message: str
) -> None:
    server.mode = mode  # type: ignore[assignment]
    with pytest.raises(ProviderError, match=message):
        await collect(provider, request())


async def test_a_wrong_key_and_a_dead_server_say_what_to_fix(server: FakeOpenAISpeech) -> None:
    async with provider_for(server, api_key="wrong") as speech:
        with pytest.raises(ProviderError, match="GENIE_OPENAI_TTS_API_KEY"):
            await collect(speech, request())
    url = f"http://127.0.0.1:{closed_port()}/v1"
    async with OpenAIProvider(base_url=url, voices=["alloy"], timeout=2.0) as speech:
        with pytest.raises(ProviderError, match="cannot reach"):
            await collect(speech, request(voice="alloy"))


async def test_one_pooled_connection_serves_every_request_until_close(
    server: FakeOpenAISpeech,
) -> None:
    speech = provider_for(server)
    async with speech:
        for n in range(5):
            await collect(speech, request(f"Request number {n}."))
        assert len(server.requests) == 5 and server.requests_total == 6  # and the voice list
        assert server.connections == 1  # keep-alive: no connection per request
    with pytest.raises(RuntimeError, match="client has been closed"):
        await collect(speech, request())  # the pool was closed with the provider


# --- in the engine: fallback, first-byte timeout, breaker, balancing ------------------


async def test_a_silent_provider_is_abandoned_for_the_next_before_any_byte() -> None:
    async with FakeOpenAISpeech(api_key=KEY, mode="hang") as fake:
        engine = SpeechEngine(
            [provider_for(fake), EspeakProvider()], fmt="mp3", first_byte_timeout=0.5
        )
        async with engine:
            data = b"".join([c async for c in engine.stream(TEXT)])
            (health,) = [h for h in engine.health() if h["kind"] == "openai"]
    assert audio.duration(data) > 1.0 and len(fake.requests) == 1
    assert health["failures"] == 1 and health["state"] == "up"  # one failure: still in


async def test_the_breaker_takes_a_failing_instance_out_and_a_probe_brings_it_back() -> None:
    async with (
        FakeOpenAISpeech(api_key=KEY, mode="500", voices=["af_bella", "bad_only"]) as bad,
        FakeOpenAISpeech(api_key=KEY, chunk_delay=0) as good,
    ):
        engine = SpeechEngine(
            [provider_for(bad), provider_for(good)], breaker_failures=2, breaker_cooldown=1.0
        )
        async with engine:
            for _ in range(4):
                data = b"".join([c async for c in engine.stream(TEXT, voice="af_bella")])
                assert abs(audio.duration(data) - SECONDS) < 0.15
            assert len(bad.requests) == 2  # open after two failures: not asked again
            assert engine.health()[0]["state"] == "cooling_down"
            assert "bad_only" not in {v.id for v in engine.voices()}  # only up providers'
            bad.mode = "ok"
            await asyncio.sleep(1.0)
            assert engine.health()[0]["state"] == "probing"
            b"".join([c async for c in engine.stream(TEXT, voice="af_bella")])
            assert len(bad.requests) == 3 and engine.health()[0]["state"] == "up"
            assert "bad_only" in {v.id for v in engine.voices()}


async def test_round_robin_spreads_requests_over_two_instances() -> None:
    async with FakeOpenAISpeech(api_key=KEY) as one, FakeOpenAISpeech(api_key=KEY) as two:
        engine = SpeechEngine([provider_for(one), provider_for(two)], policy="round_robin")
        async with engine:
            for n in range(6):
                b"".join([c async for c in engine.stream(f"Question {n}.")])
    assert (len(one.requests), len(two.requests)) == (3, 3)


async def test_least_busy_sends_the_next_request_to_the_idle_instance() -> None:
    async with FakeOpenAISpeech(api_key=KEY) as one, FakeOpenAISpeech(api_key=KEY) as two:
        engine = SpeechEngine([provider_for(one), provider_for(two)], policy="least_busy")
        async with engine:
            held = engine.stream("A long answer that is still playing. " * 4)
            assert await anext(held)  # one stream open on the first instance
            await collect_text(engine, "A second question.")
            await collect_text(engine, "A third question.")
            await held.aclose()
            await collect_text(engine, "A fourth question, once both are idle.")
    assert [len(one.requests), len(two.requests)] == [2, 2]
    assert [r.input[:8] for r in two.requests] == ["A second", "A third "]


async def collect_text(engine: SpeechEngine, text: str) -> bytes:
    return b"".join([c async for c in engine.stream(text)])


async def test_every_instance_failing_is_one_clear_error() -> None:
    async with FakeOpenAISpeech(api_key=KEY, mode="500") as one:
        engine = SpeechEngine([provider_for(one)])
        async with engine:
            with pytest.raises(AllProvidersFailedError, match="API error"):
                await collect_text(engine, TEXT)
