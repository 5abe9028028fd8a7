"""The speech engine: eager validation, fallback chain, cache, settings."""

from __future__ import annotations

import io
import wave
from collections.abc import AsyncIterator

import pytest
from prometheus_client import REGISTRY

from config import Settings
from tests import audio
from tts.base import FORMATS, SpeechRequest, Voice
from tts.cache import AudioCache
from tts.engine import SpeechEngine, build_speech_engine
from tts.errors import (
    AllProvidersFailedError,
    InvalidSpeedError,
    InvalidTextError,
    ProviderError,
    TextTooLongError,
    UnknownLanguageError,
    UnknownVoiceError,
    UnsupportedFormatError,
)
from tts.espeak import EspeakProvider
from tts.sample import SAMPLE_PATH, SampleProvider

pytestmark = pytest.mark.anyio

TEXT = "Hello there. This is the speech engine talking."


class BrokenProvider:
    """A real provider that fails: before any audio, or after ``good_chunks`` chunks."""

    formats = frozenset(FORMATS)

    def __init__(self, name: str = "broken", good_chunks: int = 0, exc: Exception | None = None):
        self.name, self.good_chunks = name, good_chunks
        self.exc = exc or ProviderError(name, "service unavailable")
        self.closed = False

    def voices(self) -> list[Voice]:
        return [Voice(id="robot", name="Robot", languages=("en",))]

    def resolve_voice(self, voice: str | None, lang: str) -> str:
        if voice not in (None, "robot"):
            raise UnknownVoiceError(voice or "", ["robot"])
        return "robot"

    async def stream(self, request: SpeechRequest) -> AsyncIterator[bytes]:
        for _ in range(self.good_chunks):
            yield b"\xff\xfb" + bytes(100)
        raise self.exc

    async def aclose(self) -> None:
        self.closed = True


def sample_seconds() -> float:
    return audio.duration(SAMPLE_PATH.read_bytes())


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
async def engine() -> AsyncIterator[SpeechEngine]:
    async with SpeechEngine([EspeakProvider()], max_chars=5000) as speech:
        yield speech


async def collect(stream: AsyncIterator[bytes]) -> list[bytes]:
    return [chunk async for chunk in stream]


# --- validation ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "names"),
    [
        ({"text": ""}, InvalidTextError, "1 to 5000"),
        ({"text": "  \n "}, InvalidTextError, "1 to 5000"),
        ({"text": "x" * 5001}, TextTooLongError, "5000"),
        ({"text": "hi", "voice": "no-such-voice"}, UnknownVoiceError, "en-us"),
        ({"text": "hi", "lang": "xx-nowhere"}, UnknownLanguageError, "fr"),
        ({"text": "hi", "fmt": "ogg"}, UnsupportedFormatError, "mp3, pcm, wav"),
        ({"text": "hi", "speed": 4.5}, InvalidSpeedError, "0.25 to 4"),
        ({"text": "hi", "speed": float("nan")}, InvalidSpeedError, "0.25 to 4"),
    ],
)
async def test_bad_input_is_refused_before_streaming_starts(
    engine: SpeechEngine, kwargs: dict[str, object], error: type[Exception], names: str
) -> None:
    text = kwargs.pop("text")
    with pytest.raises(error, match=names) as caught:
        engine.stream(text, **kwargs)  # type: ignore[arg-type]  # no iteration: eager
    assert isinstance(caught.value, ValueError)  # adapters answer 413/422
    assert caught.value.code  # type: ignore[attr-defined]


async def test_text_at_the_limit_is_accepted(engine: SpeechEngine) -> None:
    engine.stream("x" * 5000)  # validated, never iterated: nothing is synthesized


async def test_what_is_on_offer(engine: SpeechEngine) -> None:
    assert engine.formats() == ["mp3", "wav", "pcm"]
    assert engine.media_type("mp3") == "audio/mpeg" and engine.media_type("wav") == "audio/wav"
    with pytest.raises(UnsupportedFormatError):
        engine.media_type("flac")
    assert "en-us" in {v.id for v in engine.voices()}
    assert {"en", "fr"} <= set(engine.languages())


# --- speech -------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["mp3", "wav", "pcm"])
async def test_streams_and_synthesizes_every_format(engine: SpeechEngine, fmt: str) -> None:
    streamed = b"".join(await collect(engine.stream(TEXT, fmt=fmt)))
    whole = await engine.synthesize(TEXT, fmt=fmt)
    assert audio.duration(streamed, fmt) > 1.5 and audio.rms(whole, fmt) > 500
    assert audio.duration(whole, fmt) == pytest.approx(audio.duration(streamed, fmt), abs=0.01)


async def test_synthesized_wav_has_real_sizes(engine: SpeechEngine) -> None:
    data = await engine.synthesize(TEXT, fmt="wav")
    with wave.open(io.BytesIO(data)) as reader:
        assert reader.getnframes() == (len(data) - 44) // 2


async def test_voice_and_speed_reach_the_provider(engine: SpeechEngine) -> None:
    normal = audio.duration(await engine.synthesize(TEXT, voice="en-us"))
    fast = audio.duration(await engine.synthesize(TEXT, voice="en-us", speed=2.0))
    assert fast < 0.7 * normal


async def test_an_abandoned_stream_stops_synthesis() -> None:
    espeak = EspeakProvider()
    async with SpeechEngine([espeak]) as speech:
        stream = speech.stream(" ".join([TEXT] * 30))  # about 60 segments
        assert await anext(stream)
        await stream.aclose()  # type: ignore[attr-defined]
        assert audio.duration(await speech.synthesize("Still here.")) > 0.4
        assert espeak.segments_synthesized < 10


# --- fallback -----------------------------------------------------------------------


@pytest.mark.parametrize("exc", [ProviderError("broken", "down"), RuntimeError("boom")])
async def test_next_provider_speaks_when_the_first_fails(exc: Exception) -> None:
    broken = BrokenProvider(exc=exc)
    before = metric("genie_tts_failures_total", provider="broken")
    async with SpeechEngine([broken, EspeakProvider()]) as speech:
        data = await speech.synthesize(TEXT)
        assert speech.failures == {"broken": 1}
    assert audio.duration(data) > 1.5 and audio.rms(data) > 500
    assert metric("genie_tts_failures_total", provider="broken") == before + 1
    assert broken.closed  # the engine closes its providers


async def test_a_provider_that_cannot_start_is_skipped_and_counted() -> None:
    dead = EspeakProvider(library_path="/nonexistent/libespeak-ng.so")
    async with SpeechEngine([dead, SampleProvider()]) as speech:
        data = await speech.synthesize(TEXT)
        assert speech.failures == {"espeak": 1}
    assert audio.duration(data) == pytest.approx(sample_seconds(), abs=0.05)
    async with SpeechEngine([EspeakProvider(library_path="/nonexistent/lib.so")]) as speech:
        with pytest.raises(AllProvidersFailedError, match="cannot start espeak-ng"):
            speech.stream(TEXT)


async def test_an_error_after_the_first_byte_propagates() -> None:
    async with SpeechEngine([BrokenProvider(good_chunks=2), SampleProvider()]) as speech:
        chunks: list[bytes] = []
        with pytest.raises(ProviderError, match="service unavailable"):
            async for chunk in speech.stream(TEXT):
                chunks.append(chunk)
        assert len(chunks) == 2  # what was sent stays sent; the sample never spoke
        assert speech.failures == {"broken": 1}


async def test_all_providers_failing_names_every_failure() -> None:
    chain = [BrokenProvider("one"), BrokenProvider("two", exc=OSError("no route"))]
    async with SpeechEngine(chain) as speech:
        with pytest.raises(AllProvidersFailedError) as caught:
            await speech.synthesize(TEXT)
    assert [f.provider for f in caught.value.failures] == ["one", "two"]
    assert "no route" in str(caught.value)


async def test_a_provider_that_refuses_the_request_is_skipped_not_failed() -> None:
    async with SpeechEngine([SampleProvider(), EspeakProvider()]) as speech:
        french = await speech.synthesize(TEXT, lang="fr")  # the sample speaks only English
        assert speech.failures == {}
        assert audio.duration(french) > 1.5
        unknown = "no-such-voice"
        with pytest.raises(UnknownVoiceError) as caught:
            speech.stream(TEXT, voice=unknown)
        assert {"sample", "en-us"} <= set(caught.value.allowed)  # from both providers


async def test_default_voice_of_another_provider_does_not_exclude_a_provider() -> None:
    async with SpeechEngine([SampleProvider(), EspeakProvider()], voice="en-us") as speech:
        data = await speech.synthesize(TEXT)  # the sample speaks with its own voice
    assert audio.duration(data) == pytest.approx(sample_seconds(), abs=0.05)


# --- cache --------------------------------------------------------------------------


async def test_cache_hit_streams_the_same_audio_and_is_counted() -> None:
    cache = AudioCache(max_entries=8)
    hits, misses = metric("genie_tts_cache_hits_total"), metric("genie_tts_cache_misses_total")
    long_text = " ".join([TEXT] * 8)
    async with SpeechEngine([EspeakProvider()], cache=cache) as speech:
        first = b"".join(await collect(speech.stream(long_text)))
        again = await collect(speech.stream(long_text))
    assert metric("genie_tts_cache_misses_total") == misses + 1
    assert metric("genie_tts_cache_hits_total") == hits + 1
    assert len(again) > 1  # a hit streams in chunks too
    assert audio.duration(b"".join(again)) == pytest.approx(audio.duration(first), abs=0.01)


async def test_a_streamed_wav_has_unknown_sizes_and_a_cache_hit_its_true_ones() -> None:
    async with SpeechEngine([EspeakProvider()], cache=AudioCache(max_entries=8)) as speech:
        streamed = b"".join(await collect(speech.stream(TEXT, fmt="wav")))
        hit = b"".join(await collect(speech.stream(TEXT, fmt="wav")))
    assert streamed[4:8] == streamed[40:44] == b"\xff\xff\xff\xff"  # length unknown yet
    with wave.open(io.BytesIO(hit)) as reader:
        assert reader.getnframes() == (len(hit) - 44) // 2 == (len(streamed) - 44) // 2


async def test_an_unfinished_stream_is_not_cached() -> None:
    cache = AudioCache(max_entries=8)
    async with SpeechEngine([EspeakProvider()], cache=cache) as speech:
        stream = speech.stream(" ".join([TEXT] * 8))
        await anext(stream)
        await stream.aclose()  # type: ignore[attr-defined]
        assert len(cache) == 0
        await speech.synthesize(TEXT)
        assert len(cache) == 1


# --- settings -----------------------------------------------------------------------


async def test_build_from_settings() -> None:
    settings = Settings(
        tts_providers=["sample", "espeak"], tts_format="wav", tts_lang="en", tts_cache_entries=4
    )
    async with build_speech_engine(settings) as speech:
        assert [p.name for p in speech.providers] == ["sample", "espeak"]
        assert speech.cache is not None and speech.fmt == "wav"
        data = await speech.synthesize("ignored by the sample")
    assert audio.duration(data, "wav") > 2.0


def test_unknown_provider_name_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="espeak, sample, elevenlabs, openai"):
        build_speech_engine(Settings(tts_providers=["festival"]))


async def test_several_openai_instances_from_settings() -> None:
    settings = Settings(
        _env_file=None,
        tts_providers="openai@http://127.0.0.1:1/v1,openai@http://127.0.0.1:2/v1,espeak",
        tts_policy="least_busy",
        openai_tts_voices="alloy,nova",
    )
    speech = build_speech_engine(settings)
    try:
        assert [p.name for p in speech.providers] == [
            "openai@127.0.0.1:1", "openai@127.0.0.1:2", "espeak",
        ]  # fmt: skip
        assert speech.balancer.policy == "least_busy"
        assert [v.id for v in speech.providers[0].voices()] == ["alloy", "nova"]
    finally:
        await speech.aclose()
    with pytest.raises(ValueError, match="listed twice"):
        build_speech_engine(Settings(_env_file=None, tts_providers=["openai", "openai"]))
    with pytest.raises(ValueError, match="only openai@URL"):
        build_speech_engine(Settings(_env_file=None, tts_providers=["espeak@http://x"]))


async def test_elevenlabs_without_a_key_falls_back_to_espeak() -> None:
    pytest.importorskip("tts.elevenlabs")
    settings = Settings(tts_providers=["elevenlabs", "espeak"], elevenlabs_api_key=None)
    async with build_speech_engine(settings) as speech:
        data = await speech.synthesize(TEXT)
        assert speech.failures == {"elevenlabs": 1}
    assert audio.duration(data) > 1.5
