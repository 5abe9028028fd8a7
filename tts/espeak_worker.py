"""The espeak worker thread and the per-stream hand-off to the event loop.

Per stream:

    event loop: split text, submit ONE segment ..................... yield bytes
    worker:     espeak_Synth(segment) -> callback(PCM) -> StreamEncoder -> hand-off

Only a stream's next segment waits in the worker queue, and first segments jump ahead
of later ones, so concurrent streams interleave by sentence and a new stream's first
audio never waits for another stream's whole text. When other streams are waiting for
their first audio, a first segment encodes only until its first bytes exist and sets
the rest of its PCM aside, encoded in a second pass after their first bytes went out.
"""

from __future__ import annotations

import asyncio
import ctypes
import heapq
import itertools
import threading
from collections.abc import AsyncIterator, Iterator

from tts.encoding import StreamEncoder
from tts.errors import ProviderError
from tts.espeak_native import NAME, SHARED, Library, SynthCallback, VoiceEntry

AHEAD = 2  # segments a stream may have finished but not yet consumed (back-pressure)
WAKE_BYTES = 16 * 1024  # after the first bytes, wake the event loop per this much audio
_STOP, _FIRST, _LATER = 0, 1, 2  # worker queue priorities


class _Job:
    __slots__ = ("error", "first", "pcm", "run", "text")

    def __init__(self, run: StreamRun, text: str, first: bool) -> None:
        self.run, self.text, self.first = run, text, first
        self.pcm: list[bytes] | None = None  # PCM set aside to encode in a second pass
        self.error: BaseException | None = None


class Worker(threading.Thread):
    """The thread that makes every libespeak-ng call for one provider."""

    def __init__(self, library_path: str, data_path: str, buflen_ms: int) -> None:
        super().__init__(name="espeak-worker", daemon=True)
        self._paths = (library_path, data_path, buflen_ms)
        self._heap: list[tuple[int, int, _Job | None]] = []
        self._cond = threading.Condition()
        self._seq = itertools.count()
        self._closed = False
        self._waiting_first = 0  # first segments in the queue
        self._job: _Job | None = None  # the job being synthesized, for the callback
        self._callback = SynthCallback(self._on_audio)  # kept alive as long as we are
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self.sample_rate = 0
        self.voices: list[VoiceEntry] = []
        self.segments_synthesized = 0  # espeak_Synth calls, for tests and diagnostics

    def submit(self, job: _Job) -> None:
        self._put(_FIRST if job.first else _LATER, job)

    def stop(self) -> None:
        self._put(_STOP, None)

    def _put(self, priority: int, job: _Job | None) -> None:
        with self._cond:
            if not self._closed:
                self._waiting_first += priority == _FIRST
                heapq.heappush(self._heap, (priority, next(self._seq), job))
                self._cond.notify()
                return
        if job is not None:
            job.run.segment_finished(ProviderError(NAME, "the espeak worker has stopped"))

    def _take(self) -> _Job | None:
        with self._cond:
            while not self._heap:
                self._cond.wait()
            priority, _, job = heapq.heappop(self._heap)
            self._waiting_first -= priority == _FIRST
            return job

    def run(self) -> None:
        try:
            library = SHARED.acquire(*self._paths)
        except (OSError, ProviderError) as exc:
            self.error = exc
            self.ready.set()
            return
        try:
            self._serve(library)
        except Exception as exc:  # start() must see why, not wait for a dead thread
            self.error = exc
            raise
        finally:
            self.ready.set()
            self._fail_pending()
            SHARED.release()

    def _serve(self, library: Library) -> None:
        with SHARED.lock:
            self.sample_rate, self.voices = library.sample_rate, library.list_voices()
        self.ready.set()
        while (job := self._take()) is not None:
            try:
                self._process(library, job)
            except Exception as exc:  # a bug fails one stream; it must not hang it
                job.run.segment_finished(ProviderError(NAME, f"internal error: {exc!r}"))
            except BaseException as exc:
                # The thread is dying (SystemExit, an exception raised into it): its
                # stream hears so now; the next request starts a new worker.
                job.run.segment_finished(ProviderError(NAME, f"the espeak worker died: {exc!r}"))
                raise

    def _fail_pending(self) -> None:
        with self._cond:
            self._closed = True
            pending, self._heap = self._heap, []
        for _, _, job in pending:
            if job is not None:
                job.run.segment_finished(ProviderError(NAME, "the espeak worker has stopped"))

    def _process(self, library: Library, job: _Job) -> None:
        run = job.run
        if run.cancelled:
            return
        if job.pcm:  # second pass over a first segment: encode what was set aside
            self._encode(job, b"".join(job.pcm))
            job.pcm = None
            run.segment_finished(job.error)
            return
        # Others wait for their first audio: encode only up to our first bytes for now.
        job.pcm = [] if job.first and self._waiting_first else None
        with SHARED.lock:
            self._job = job
            try:
                library.prepare(self._callback, run.voice, run.rate)
                code = library.synth(job.text)
                self.segments_synthesized += 1
            except ProviderError as exc:
                job.error, code = exc, 0
            finally:
                self._job = None
        if code != 0 and job.error is None:
            job.error = ProviderError(NAME, f"espeak_Synth failed with code {code}")
        if job.pcm and job.error is None and not run.cancelled:
            self._put(_LATER, job)
            return
        run.segment_finished(job.error)

    def _on_audio(self, wav: ctypes._Pointer[ctypes.c_short], count: int, _events: int) -> int:
        """espeak's synth callback (worker thread): 0 = go on, 1 = abort."""
        job = self._job
        if job is None:
            return 0
        if job.run.cancelled or job.error is not None:
            return 1
        if count > 0 and wav:
            pcm = ctypes.string_at(wav, count * 2)
            if job.pcm is not None and job.run.started:
                job.pcm.append(pcm)
            else:
                self._encode(job, pcm)
        return 1 if job.error is not None else 0

    @staticmethod
    def _encode(job: _Job, pcm: bytes) -> None:
        try:
            data = job.run.encoder.encode(pcm)
        except Exception as exc:  # a failing encoder must not unwind through C code
            job.error = ProviderError(NAME, f"encoding failed: {exc!r}")
            return
        if data:
            job.run.put(data)


_SEGMENT_END = object()


class StreamRun:
    """One stream's segments, submitted one at a time; bytes handed to the event loop.

    The worker appends to ``_items`` under a lock and wakes the loop
    (``call_soon_threadsafe``) for the first bytes, then per ``WAKE_BYTES`` and at each
    segment's end; the loop drains everything queued at each wake-up.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        worker: Worker,
        segments: Iterator[str],
        encoder: StreamEncoder,
        *,
        voice: str,
        rate: int,
    ) -> None:
        self._loop, self._worker, self._segments = loop, worker, segments
        self.encoder, self.voice, self.rate = encoder, voice, rate
        self._lock = threading.Lock()
        self._items: list[object] = []
        self._wake_pending = False
        self._unsent = 0  # bytes put since the last wake-up
        self._ready = asyncio.Event()
        self._submitted = self._consumed = 0
        self._exhausted = False  # the segment iterator is used up
        self._in_flight = False
        self._ahead = 0  # finished segments the consumer has not reached yet
        self.cancelled = False
        self.started = False  # some encoded bytes were handed over

    # --- worker thread --------------------------------------------------------------
    def put(self, item: object) -> None:
        with self._lock:
            self._items.append(item)
            if isinstance(item, bytes):
                # The first bytes leave at once; later ones wake the loop per WAKE_BYTES
                # or at a segment's end: a wake-up per encoder output costs the worker
                # more GIL hand-offs than the encoding itself.
                first, self.started = not self.started, True
                self._unsent += len(item)
                if not first and self._unsent < WAKE_BYTES:
                    return
            if self._wake_pending:
                return
            self._wake_pending, self._unsent = True, 0
        try:
            self._loop.call_soon_threadsafe(self._wake)
        except RuntimeError:  # the loop is closed: nobody will read this stream
            self.cancelled = True

    def segment_finished(self, error: BaseException | None) -> None:
        with self._lock:
            self._in_flight = False
            self._ahead += 1
        self.put(_SEGMENT_END if error is None else error)
        if error is None:
            self._submit_next()  # prefetch: the next segment is queued right away

    def _submit_next(self) -> None:
        with self._lock:
            if self.cancelled or self._in_flight or self._exhausted or self._ahead >= AHEAD:
                return
            text = next(self._segments, None)  # the text is split lazily, as it is spoken
            if text is None:
                self._exhausted = True
                return
            first = self._submitted == 0
            self._submitted += 1
            self._in_flight = True
        self._worker.submit(_Job(self, text, first=first))

    # --- event loop -----------------------------------------------------------------
    def cancel(self) -> None:
        self.cancelled = True

    def _wake(self) -> None:
        with self._lock:
            self._wake_pending = False
        self._ready.set()

    async def _take(self) -> list[object]:
        while True:
            with self._lock:
                items, self._items = self._items, []
                if not items:
                    self._ready.clear()
            if items:
                return items
            await self._ready.wait()

    def _done(self) -> bool:
        with self._lock:
            return self._exhausted and self._consumed == self._submitted

    async def chunks(self) -> AsyncIterator[bytes]:
        self._submit_next()
        while not self._done():
            data: list[bytes] = []
            for item in await self._take():
                if isinstance(item, bytes):
                    data.append(item)
                    continue
                if isinstance(item, BaseException):
                    if data:
                        yield b"".join(data)
                    raise item
                with self._lock:
                    self._ahead -= 1
                    self._consumed += 1
                self._submit_next()
            if data:
                yield b"".join(data)
        tail = self.encoder.flush()  # safe here: the worker is done with this stream
        if tail:
            yield tail
