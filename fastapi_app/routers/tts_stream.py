"""Seed 004: ``WS /ws/tts``, ``POST /api/v1/tts`` and the ``/stream-player`` page.

``WS /ws/tts`` serves many requests per connection. A request that arrives while one is
streaming is QUEUED (up to ``QUEUE_LIMIT``) and streamed after it, each with its own
``generating ... complete`` sequence: the seed's clients collect binary frames between
``ready`` and ``complete``, so interleaving or silently dropping a request would give
them someone else's audio. ``{"cancel": true}`` stops the current one (``cancelled``).
Each request counts against ``GENIE_RATE_LIMIT_SPEECH`` (so does ``POST /api/v1/tts``);
past it the request is answered ``{"status": "error", "code": "rate_limited",
"retry_after": s}`` and the socket stays open.
Frames: the first binary frame goes out as soon as the first sentence is encoded; every
later chunk as soon as it exists, split into frames of at most 8 KB.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, WebSocket
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, Field
from starlette.websockets import WebSocketDisconnect, WebSocketDisconnected

from config import STATIC_DIR
from fastapi_app.auth.access import subject_of
from fastapi_app.auth.security import AuthError, token_from_connection
from fastapi_app.deps import RuntimeDep, SpeechAllowed, authenticate, caller_key, refused_for
from fastapi_app.errors import BAD_BODY, ERRORS, ApiError, ErrorBody
from fastapi_app.runtime import Runtime
from fastapi_app.synthesis import Caller
from tts.admission import SpeechBusyError, SynthesisCaps
from tts.engine import SpeechEngine
from tts.errors import TTSError, UnknownLanguageError
from wire import tts_frames as frames

log = logging.getLogger(__name__)

PAGE = STATIC_DIR / "stream-player.html"
QUEUE_LIMIT = 8  # requests waiting behind the one streaming, per socket
POLICY_VIOLATION = 1008

# The seed page's 11 languages -> espeak-ng voice ids (what /api/v1/tts/languages shows).
LANGUAGES: dict[str, str] = {
    "en": "en-us",
    "es": "es",
    "fr": "fr",
    "de": "de",
    "it": "it",
    "pt": "pt",
    "ru": "ru",
    "ja": "ja",
    "ko": "ko",
    "zh": "cmn",
    "hi": "hi",
}


def language_of(lang: object) -> str:
    """The language to ask the engine for, for a seed language code; every provider of
    the chain then picks its own voice for it (the seed page's English is American).
    UnknownLanguageError lists the valid codes."""
    code = lang.strip().lower() if isinstance(lang, str) else str(lang)
    if code not in LANGUAGES:
        raise UnknownLanguageError(code, LANGUAGES)
    return "en-us" if code == "en" else code


def engine_of(rt: Runtime) -> SpeechEngine:
    if rt.speech is None:
        raise ApiError(503, "no_speech", "speech synthesis is off in the skeletal stage")
    return rt.speech


class TtsRequest(BaseModel):
    text: str = Field(description="Text to speak, 1-5,000 characters.")
    lang: str = Field("en", description=f"Language code: {', '.join(LANGUAGES)}.")


router = APIRouter(tags=["streaming speech"])


@router.post(
    "/api/v1/tts",
    response_class=Response,
    dependencies=[Depends(authenticate)],
    responses={
        200: {"content": {"audio/mpeg": {}}},
        **BAD_BODY,
        **ERRORS,
        503: {"model": ErrorBody},
    },
    summary="The whole MP3 of a text, as a download",
)
async def tts_file(
    rt: RuntimeDep, _: SpeechAllowed, who: Caller, body: Annotated[TtsRequest, Body()]
) -> Response:
    engine = engine_of(rt)
    language = language_of(body.lang)
    with rt.synthesis.acquire(who):  # past a cap: 503 / 429 + Retry-After
        audio = await engine.synthesize(body.text, lang=language, fmt="mp3")
    headers = {"Content-Disposition": 'attachment; filename="speech.mp3"'}
    return Response(audio, media_type="audio/mpeg", headers=headers)


@router.get("/api/v1/tts/languages", summary="Language codes of /ws/tts and /api/v1/tts")
async def tts_languages() -> dict[str, Any]:
    return {"languages": LANGUAGES, "default": "en"}


@router.get("/stream-player", response_class=FileResponse, summary="The streaming player page")
async def stream_player() -> FileResponse:
    return FileResponse(PAGE, media_type="text/html")


@router.websocket("/ws/tts")
async def ws_tts(websocket: WebSocket) -> None:
    rt: Runtime | None = getattr(websocket.app.state, "runtime", None)
    await websocket.accept()
    if rt is None or rt.speech is None:
        await websocket.send_json(frames.status_error("speech is not available", "no_speech"))
        await websocket.close(1011)
        return
    try:
        subject = subject_of(rt.access.verifier.verify(token_from_connection(websocket)))
    except AuthError as exc:
        await websocket.send_json(frames.status_error(exc.message, exc.code))
        await websocket.close(POLICY_VIOLATION)
        return
    key = caller_key(websocket, subject)
    socket = TtsSocket(
        websocket,
        rt.speech,
        lambda: refused_for(rt, rt.access.speech, "speech", key),
        caps=rt.synthesis,
        caller=key,
    )
    # An answer to a client that just left: the first send raises WebSocketDisconnect,
    # any later one (the reader answering while the worker's send failed) the other.
    with contextlib.suppress(WebSocketDisconnect, WebSocketDisconnected):
        await socket.run()


@dataclass(slots=True)
class _Job:
    text: str
    chunks: AsyncIterator[bytes]


class TtsSocket:
    """One ``/ws/tts`` connection: a reader that answers at once, a worker that speaks."""

    def __init__(
        self,
        ws: WebSocket,
        engine: SpeechEngine,
        limit: Callable[[], Awaitable[int | None]],
        *,
        caps: SynthesisCaps | None = None,
        caller: str = "",
    ) -> None:
        self.ws, self.engine = ws, engine
        # Each request holds a synthesis slot while it streams (taken at its first chunk).
        self._caps, self._caller = caps if caps is not None else SynthesisCaps(), caller
        self._limit = limit  # one synthesis request spent: None, or seconds to wait
        self._jobs: asyncio.Queue[_Job] = asyncio.Queue(QUEUE_LIMIT)
        self._send_lock = asyncio.Lock()
        self._current: asyncio.Task[None] | None = None

    async def run(self) -> None:
        worker = asyncio.create_task(self._work(), name="ws-tts-worker")
        try:
            await self._read()
        finally:
            # The request being spoken runs in a task of its own: stop its synthesis too.
            tasks = [worker, *([self._current] if self._current is not None else [])]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            while not self._jobs.empty():
                await _close(self._jobs.get_nowait().chunks)

    async def _read(self) -> None:
        while True:
            message = await self.ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            raw = message.get("text")
            if raw is None:
                await self._json(frames.status_error("send JSON text frames", "invalid_frame"))
                continue
            await self._handle(raw)

    async def _handle(self, raw: str) -> None:
        try:
            frame = frames.parse(raw)
        except ValueError as exc:
            await self._json(frames.status_error(str(exc), "invalid_json"))
            return
        if frame.get("ping"):
            await self._json(frames.pong())
        elif frame.get("cancel"):
            if self._current is not None:
                self._current.cancel()
        else:
            await self._enqueue(frame)

    async def _enqueue(self, frame: dict[str, Any]) -> None:
        if (wait := await self._limit()) is not None:
            # An error frame, not a close: the socket and the request streaming stay.
            message = f"too many speech requests; retry in {wait} s"
            await self._json({**frames.status_error(message, "rate_limited"), "retry_after": wait})
            return
        text, lang = frame.get("text"), frame.get("lang", "en")
        try:
            language = language_of(lang)
            if not isinstance(text, str):
                text = ""  # the engine answers "text is empty" with the limits
            speech = self.engine.stream(text, lang=language, fmt="mp3")
            chunks = self._caps.capped(self._caller, speech)
        except TTSError as exc:
            await self._json(frames.status_error(str(exc), exc.code))
            return
        try:
            self._jobs.put_nowait(_Job(text, chunks))
        except asyncio.QueueFull:
            await _close(chunks)
            message = f"{QUEUE_LIMIT} requests are already waiting; wait for one to complete"
            await self._json(frames.status_error(message, "busy"))

    async def _work(self) -> None:
        while True:
            job = await self._jobs.get()
            self._current = asyncio.create_task(self._speak(job))
            await asyncio.wait([self._current])
            task, self._current = self._current, None
            if task.cancelled():
                await _close(job.chunks)
                await self._json({"status": "cancelled", "message": "request cancelled"})
            elif (exc := task.exception()) is not None:
                raise exc  # the socket is gone: end the worker

    async def _speak(self, job: _Job) -> None:
        await self._json(frames.generating(job.text))
        size = count = 0
        try:
            async with contextlib.aclosing(job.chunks) as chunks:  # type: ignore[type-var]
                async for chunk in chunks:
                    if size == 0:
                        await self._json(frames.ready(len(chunk)))
                    for piece in frames.split_frames(chunk):
                        await self._bytes(piece)
                        count += 1
                    size += len(chunk)
        except SpeechBusyError as exc:  # refused at once: nothing was synthesized
            busy = frames.status_error(str(exc), exc.code)
            await self._json({**busy, "retry_after": exc.retry_after})
            return
        except TTSError as exc:
            log.warning("/ws/tts synthesis failed: %s", exc)
            await self._json(frames.status_error(str(exc), exc.code))
            return
        await self._json(frames.complete(size, count))

    async def _json(self, payload: dict[str, Any]) -> None:
        async with self._send_lock:
            await self.ws.send_json(payload)

    async def _bytes(self, data: bytes) -> None:
        async with self._send_lock:
            await self.ws.send_bytes(data)


async def _close(chunks: AsyncIterator[bytes]) -> None:
    close = getattr(chunks, "aclose", None)
    if close is not None:
        with contextlib.suppress(Exception):
            await close()
