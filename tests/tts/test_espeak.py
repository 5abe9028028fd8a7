"""The espeak-ng provider: real library, real audio, decoded and measured."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tests import audio
from tts.base import SpeechProvider, SpeechRequest
from tts.errors import UnknownLanguageError, UnknownVoiceError
from tts.espeak import EspeakProvider, words_per_minute

pytestmark = pytest.mark.anyio

SHORT = "Hello there."
LONG = (
    "Hello there. This is a longer answer with several sentences in it. "
    "It keeps going for a while, so the audio must last much longer. "
    "Mr. Smith paid 3.5 dollars for it! Was it worth the money? Perhaps it was."
)
# Ten sentences: long enough that a stream served whole would finish before others start.
STORY = " ".join(f"This is sentence {i} of the story." for i in range(10))


@pytest.fixture
async def espeak() -> AsyncIterator[EspeakProvider]:
    async with EspeakProvider() as provider:
        yield provider


def request(provider: EspeakProvider, text: str, fmt: str = "mp3", **kw: object) -> SpeechRequest:
    voice = provider.resolve_voice(None, "en")
    return SpeechRequest(text=text, voice=voice, lang="en", fmt=fmt, **kw)  # type: ignore[arg-type]


async def speak(provider: EspeakProvider, text: str, fmt: str = "mp3", **kw: object) -> bytes:
    return b"".join([c async for c in provider.stream(request(provider, text, fmt, **kw))])


async def test_is_a_speech_provider_with_voices_from_the_library(espeak: EspeakProvider) -> None:
    assert isinstance(espeak, SpeechProvider)
    voices = {v.id: v for v in espeak.voices()}
    assert len(voices) > 100
    assert "en-us" in voices["en-us"].languages
    assert {"en", "en-us", "fr", "de"} <= set(espeak.languages())
    assert espeak.sample_rate == 22050


@pytest.mark.parametrize(
    ("voice", "lang", "expected"),
    [
        ("en-us", "xx", "gmw/en-US"),  # an explicit voice wins over the language
        ("English (America)", "en", "gmw/en-US"),
        ("GMW/EN-US", "en", "gmw/en-US"),
        (None, "fr", "roa/fr"),
        (None, "en_US", "gmw/en-US"),
        (None, "fr-XX", "roa/fr"),  # unknown region: the base language
    ],
)
async def test_resolve_voice(
    espeak: EspeakProvider, voice: str | None, lang: str, expected: str
) -> None:
    assert espeak.resolve_voice(voice, lang) == expected


async def test_unknown_voice_and_language_list_the_valid_ones(espeak: EspeakProvider) -> None:
    with pytest.raises(UnknownVoiceError) as voice_error:
        espeak.resolve_voice("no-such-voice", "en")
    assert "en-us" in voice_error.value.allowed and "en-us" in str(voice_error.value)
    with pytest.raises(UnknownLanguageError) as lang_error:
        espeak.resolve_voice(None, "xx-nowhere")
    assert {"en", "fr"} <= set(lang_error.value.allowed)


@pytest.mark.parametrize("fmt", ["mp3", "wav", "pcm"])
async def test_speech_grows_with_text_and_is_not_silence(espeak: EspeakProvider, fmt: str) -> None:
    short = audio.duration(await speak(espeak, SHORT, fmt), fmt)
    data = await speak(espeak, LONG, fmt)
    assert 0.4 < short < 2.0
    assert audio.duration(data, fmt) > 4 * short
    assert audio.rms(data, fmt) > 500


async def test_speed_maps_to_words_per_minute(espeak: EspeakProvider) -> None:
    assert words_per_minute(1.0) == 175
    assert (words_per_minute(0.25), words_per_minute(4.0)) == (80, 450)  # espeak's range
    normal = audio.duration(await speak(espeak, LONG, "pcm"), "pcm")
    fast = audio.duration(await speak(espeak, LONG, "pcm", speed=2.0), "pcm")
    assert fast < 0.7 * normal


async def test_one_encoder_per_stream_adds_no_gaps_between_sentences(
    espeak: EspeakProvider,
) -> None:
    sentences = ["Hello there.", "This is the second sentence.", "And a third one."]
    alone = [audio.duration(await speak(espeak, s, "pcm"), "pcm") for s in sentences]
    whole = audio.duration(await speak(espeak, " ".join(sentences), "mp3"))
    assert whole == pytest.approx(sum(alone), abs=0.1)  # LAME delay + padding only


async def test_sixteen_concurrent_streams_are_all_complete_and_correct(
    espeak: EspeakProvider,
) -> None:
    texts = [SHORT, LONG, STORY, "Number four is here."]
    expected = [audio.duration(await speak(espeak, t, "pcm"), "pcm") for t in texts]
    results = await asyncio.gather(*(speak(espeak, texts[i % 4]) for i in range(16)))
    for i, data in enumerate(results):
        assert audio.duration(data) == pytest.approx(expected[i % 4], abs=0.1)
        assert audio.rms(data) > 500


async def test_concurrent_streams_interleave_by_sentence(espeak: EspeakProvider) -> None:
    """Every stream hears its first audio before any stream has spoken its whole text."""
    events: list[tuple[str, int]] = []

    async def listen(index: int) -> None:
        async for _ in espeak.stream(request(espeak, STORY)):
            if ("first", index) not in events:
                events.append(("first", index))
        events.append(("done", index))

    await asyncio.gather(*(listen(i) for i in range(16)))
    first_done = events.index(next(e for e in events if e[0] == "done"))
    assert {i for kind, i in events[:first_done] if kind == "first"} == set(range(16))


async def test_a_cancelled_stream_stops_and_the_worker_stays_usable(
    espeak: EspeakProvider,
) -> None:
    text = " ".join([STORY] * 4)  # about 40 segments
    stream = espeak.stream(request(espeak, text))
    assert await anext(stream)
    await stream.aclose()  # the consumer went away
    assert audio.duration(await speak(espeak, SHORT)) > 0.4
    assert espeak.segments_synthesized < 10  # the rest of the 40 was never synthesized

    async def consume() -> None:
        async for _ in espeak.stream(request(espeak, text)):
            await asyncio.sleep(0)

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert audio.duration(await speak(espeak, LONG)) > 4


async def test_closed_provider_starts_again_on_use() -> None:
    provider = EspeakProvider()
    assert audio.duration(await speak(provider, SHORT)) > 0.4
    await provider.aclose()
    assert audio.duration(await speak(provider, SHORT)) > 0.4
    await provider.aclose()


async def test_two_providers_share_the_library_safely(espeak: EspeakProvider) -> None:
    async with EspeakProvider() as other:
        fr = SpeechRequest(text=LONG, voice=other.resolve_voice(None, "fr"), lang="fr")
        expected = audio.duration(await speak(espeak, LONG, "pcm"), "pcm")

        async def french() -> bytes:
            return b"".join([c async for c in other.stream(fr)])

        en, fr_audio = await asyncio.gather(speak(espeak, LONG), french())
    assert audio.duration(en) == pytest.approx(expected, abs=0.1)
    assert audio.duration(fr_audio) > 4
