"""The ``sample`` provider: always the same short clip, ``static/sample-audio.mp3``.

For the skeletal stage and for demos without speech synthesis: the text, voice and
speed of a request are ignored. MP3 is streamed from the file as is; wav and pcm are
decoded once with miniaudio (22,050 Hz mono, the kit's PCM rate) and then streamed
through a ``StreamEncoder``. The clip is English, so only ``en`` / ``en-*`` are valid.

Regenerate the file with espeak-ng: ``python -m tts.sample --write``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import miniaudio

from config import STATIC_DIR
from tts.base import FORMATS, SpeechRequest, Voice
from tts.encoding import StreamEncoder
from tts.errors import ProviderError, UnknownLanguageError, UnknownVoiceError

NAME = "sample"
VOICE = Voice(id="sample", name="Sample answer (English)", languages=("en",))
SAMPLE_PATH = STATIC_DIR / "sample-audio.mp3"
SAMPLE_TEXT = (
    "This is a sample answer from the Genie migration kit. "
    "Real answers are spoken here once speech synthesis is switched on."
)
PCM_RATE = 22050
CHUNK_BYTES = 8192


class SampleProvider:
    name = NAME
    formats = frozenset(FORMATS)

    def __init__(self, path: str | Path = SAMPLE_PATH, *, chunk_bytes: int = CHUNK_BYTES) -> None:
        self.path, self.chunk_bytes = Path(path), chunk_bytes
        self._mp3: bytes | None = None
        self._pcm: bytes | None = None

    def voices(self) -> list[Voice]:
        return [VOICE]

    def languages(self) -> list[str]:
        return list(VOICE.languages)

    def resolve_voice(self, voice: str | None, lang: str) -> str:
        if voice and voice.strip().lower() != VOICE.id:
            raise UnknownVoiceError(voice, [VOICE.id])
        if lang.strip().lower().replace("_", "-").split("-", 1)[0] != "en":
            raise UnknownLanguageError(lang, VOICE.languages)
        return VOICE.id

    async def stream(self, request: SpeechRequest) -> AsyncIterator[bytes]:
        self.resolve_voice(request.voice, request.lang)
        if request.fmt == "mp3":
            data = await self._load_mp3()
        else:
            encoder = StreamEncoder(request.fmt, PCM_RATE)
            data = encoder.encode(await self._load_pcm()) + encoder.flush()
        for start in range(0, len(data), self.chunk_bytes):
            yield data[start : start + self.chunk_bytes]

    async def aclose(self) -> None:
        self._mp3 = self._pcm = None

    async def _load_mp3(self) -> bytes:
        if self._mp3 is None:
            try:
                self._mp3 = await asyncio.to_thread(self.path.read_bytes)
            except OSError as exc:
                raise ProviderError(NAME, f"cannot read {self.path}: {exc}") from exc
        return self._mp3

    async def _load_pcm(self) -> bytes:
        if self._pcm is None:
            mp3 = await self._load_mp3()
            try:
                decoded = await asyncio.to_thread(_decode, mp3)
            except miniaudio.MiniaudioError as exc:
                raise ProviderError(NAME, f"cannot decode {self.path}: {exc}") from exc
            self._pcm = decoded
        return self._pcm


def _decode(mp3: bytes) -> bytes:
    sound = miniaudio.decode(
        mp3, output_format=miniaudio.SampleFormat.SIGNED16, nchannels=1, sample_rate=PCM_RATE
    )
    return sound.samples.tobytes()


async def speak_sample(text: str = SAMPLE_TEXT) -> bytes:
    """``text`` as MP3 from espeak-ng (American English voice)."""
    from tts.espeak import EspeakProvider  # only the generator needs espeak

    async with EspeakProvider() as espeak:
        voice = espeak.resolve_voice(None, "en-us")
        request = SpeechRequest(text=text, voice=voice, lang="en-us", fmt="mp3")
        return b"".join([chunk async for chunk in espeak.stream(request)])


def write_sample(path: Path = SAMPLE_PATH, text: str = SAMPLE_TEXT) -> int:
    """Write the spoken ``text`` to ``path`` atomically; returns the file size."""
    data = asyncio.run(speak_sample(text))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".sample-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a static file is for everyone
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return len(data)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="(re)generate the sample file")
    parser.add_argument("--out", type=Path, default=SAMPLE_PATH, help="file to write")
    parser.add_argument("--text", default=SAMPLE_TEXT, help="what the sample says")
    args = parser.parse_args(argv)
    if not args.write:
        parser.error("nothing to do: pass --write")
    size = write_sample(args.out, args.text)
    print(f"wrote {args.out} ({size} bytes)")


if __name__ == "__main__":
    main()
