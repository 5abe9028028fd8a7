"""The sample provider streams the committed clip; wav/pcm are decoded from it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import audio
from tts.base import SpeechProvider, SpeechRequest
from tts.errors import ProviderError, UnknownLanguageError, UnknownVoiceError
from tts.sample import SAMPLE_PATH, SampleProvider

pytestmark = pytest.mark.anyio


async def speak(provider: SampleProvider, fmt: str = "mp3") -> list[bytes]:
    req = SpeechRequest(text="ignored", voice="sample", lang="en", fmt=fmt)  # type: ignore[arg-type]
    return [chunk async for chunk in provider.stream(req)]


def test_the_clip_is_a_few_seconds_of_speech() -> None:
    data = SAMPLE_PATH.read_bytes()
    assert 2.0 < audio.duration(data) < 15.0
    assert audio.rms(data) > 500


@pytest.mark.parametrize("fmt", ["mp3", "wav", "pcm"])
async def test_streams_the_clip_in_chunks(fmt: str) -> None:
    provider = SampleProvider(chunk_bytes=4096)
    assert isinstance(provider, SpeechProvider)
    chunks = await speak(provider, fmt)
    assert len(chunks) > 1 and all(len(c) <= 4096 for c in chunks)
    data = b"".join(chunks)
    expected = audio.duration(SAMPLE_PATH.read_bytes())
    assert audio.duration(data, fmt) == pytest.approx(expected, abs=0.05)
    assert audio.rms(data, fmt) > 500
    await provider.aclose()


def test_voice_and_language_are_checked() -> None:
    provider = SampleProvider()
    assert provider.resolve_voice(None, "en-GB") == "sample"
    with pytest.raises(UnknownVoiceError, match="sample"):
        provider.resolve_voice("en-us", "en")
    with pytest.raises(UnknownLanguageError, match="en"):
        provider.resolve_voice(None, "fr")


async def test_missing_file_is_a_provider_error(tmp_path: Path) -> None:
    with pytest.raises(ProviderError, match="cannot read"):
        await speak(SampleProvider(tmp_path / "missing.mp3"))
