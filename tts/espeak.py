"""The default, offline provider: espeak-ng from the ``espeakng-loader`` wheel.

libespeak-ng is not thread-safe, so each provider owns ONE worker thread that makes all
its library calls (``tts.espeak_worker``); the providers of a process take turns on the
library segment by segment (``tts.espeak_native.SHARED``).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import espeakng_loader

from tts.base import FORMATS, SpeechRequest, Voice
from tts.encoding import StreamEncoder
from tts.errors import ProviderError, UnknownLanguageError, UnknownVoiceError
from tts.espeak_native import NAME, VoiceEntry
from tts.espeak_worker import StreamRun, Worker
from tts.sentences import MAX_CHARS, iter_segments

BASE_WPM = 175  # espeak's default rate: speed 1.0
MIN_WPM, MAX_WPM = 80, 450  # the rates espeak accepts
FIRST_SEGMENT_CHARS = 60  # a short first segment keeps first audio cheap under load


def words_per_minute(speed: float) -> int:
    return max(MIN_WPM, min(MAX_WPM, round(BASE_WPM * speed)))


# OpenAI's voice names -> espeak-ng voices, so clients written for OpenAI (and a chain
# whose OpenAI-compatible provider is down) still speak; the names reach an ``openai``
# provider of the chain unchanged.
OPENAI_ALIASES: dict[str, str] = {
    "alloy": "en-us",
    "ash": "en-us-nyc",
    "ballad": "en-gb-x-rp",
    "coral": "en-029",
    "echo": "en-gb-x-rp",
    "fable": "en-gb-scotland",
    "onyx": "en-us-nyc",
    "nova": "en",
    "sage": "en-gb-x-gbclan",
    "shimmer": "en-029",
    "verse": "en-gb-x-gbcwmd",
    "marin": "en-us",
    "cedar": "en-gb-x-rp",
}


class EspeakProvider:
    """Speech from espeak-ng in every format of ``FORMATS``; voices from the library.

    Start it with ``async with`` (or let the first call start it: that blocks a few ms
    once); ``aclose()`` stops the worker. Voices are accepted by id ("en-us"), espeak
    identifier ("gmw/en-US") or name ("English (America)"), case-insensitively.
    """

    name = NAME
    formats = frozenset(FORMATS)

    def __init__(
        self,
        *,
        bitrate_kbps: int = 48,
        buflen_ms: int = 60,
        max_segment_chars: int = MAX_CHARS,
        first_segment_chars: int = FIRST_SEGMENT_CHARS,
        library_path: str | Path | None = None,
        data_path: str | Path | None = None,
    ) -> None:
        if min(max_segment_chars, first_segment_chars) < 1:
            raise ValueError("segment sizes must be at least 1 character")
        self.bitrate_kbps = bitrate_kbps
        self.max_segment_chars, self.first_segment_chars = max_segment_chars, first_segment_chars
        self._paths = (
            str(library_path or espeakng_loader.get_library_path()),
            str(data_path or espeakng_loader.get_data_path()),
            buflen_ms,
        )
        self._worker: Worker | None = None
        self._start_lock = threading.Lock()
        self._by_key: dict[str, str] = {}  # lower-cased id, identifier or name -> identifier
        self._by_lang: dict[str, str] = {}  # language -> its best voice's identifier
        self._voices: list[Voice] = []

    # --- lifecycle ------------------------------------------------------------------
    def start(self) -> None:
        """Start the worker thread and read the voice list (a few ms, once)."""
        with self._start_lock:
            if self._worker is not None and self._worker.is_alive():
                return
            worker = Worker(*self._paths)
            worker.start()
            worker.ready.wait()
            if worker.error is not None or not worker.is_alive():
                raise ProviderError(NAME, f"cannot start espeak-ng: {worker.error}")
            self._index(worker.voices)
            self._worker = worker

    async def __aenter__(self) -> EspeakProvider:
        await asyncio.to_thread(self.start)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        with self._start_lock:
            worker, self._worker = self._worker, None
        if worker is not None:
            worker.stop()
            await asyncio.to_thread(worker.join)

    def _started(self) -> Worker:
        worker = self._worker
        if worker is None or not worker.is_alive():
            self.start()
            worker = self._worker
        assert worker is not None
        return worker

    @property
    def sample_rate(self) -> int:
        return self._started().sample_rate

    @property
    def segments_synthesized(self) -> int:
        """Segments the current worker has synthesized (a cancelled stream stops adding)."""
        return self._worker.segments_synthesized if self._worker is not None else 0

    # --- voices ---------------------------------------------------------------------
    def voices(self) -> list[Voice]:
        self._started()
        return list(self._voices)

    def languages(self) -> list[str]:
        self._started()
        return sorted(self._by_lang)

    def resolve_voice(self, voice: str | None, lang: str) -> str:
        """The espeak identifier for ``voice``, else the best voice for ``lang``."""
        self._started()
        if voice:
            key = voice.strip().lower()
            found = self._by_key.get(key) or self._by_key.get(OPENAI_ALIASES.get(key, ""))
            if found is None:
                raise UnknownVoiceError(voice, (v.id for v in self._voices))
            return found
        code = lang.strip().lower().replace("_", "-")
        found = self._by_lang.get(code) or self._by_lang.get(code.split("-", 1)[0])
        if found is None:
            raise UnknownLanguageError(lang, self._by_lang)
        return found

    def _index(self, entries: list[VoiceEntry]) -> None:
        best: dict[str, tuple[int, int, str]] = {}
        for voice, identifier, languages in entries:
            for key in (voice.id, identifier, voice.name):
                self._by_key.setdefault(key.lower(), identifier)
            for priority, language in languages:
                # Lowest espeak priority wins; on a tie, the voice named after the language.
                rank = (priority, 0 if voice.id == language else 1, identifier)
                best[language] = min(best.get(language, rank), rank)
        self._by_lang = {language: rank[2] for language, rank in best.items()}
        self._voices = [voice for voice, _, _ in entries]

    # --- speech ---------------------------------------------------------------------
    async def stream(self, request: SpeechRequest) -> AsyncIterator[bytes]:
        worker = self._started()
        text = request.text.replace("\x00", " ")  # espeak reads C strings: NUL ends them
        segments = iter_segments(
            text, self.max_segment_chars, first_max_chars=self.first_segment_chars
        )
        run = StreamRun(
            asyncio.get_running_loop(),
            worker,
            segments,
            StreamEncoder(request.fmt, worker.sample_rate, self.bitrate_kbps),
            voice=self.resolve_voice(request.voice, request.lang),
            rate=words_per_minute(request.speed),
        )
        try:
            async for chunk in run.chunks():
                yield chunk
        finally:
            run.cancel()  # a consumer that went away stops the synthesis
