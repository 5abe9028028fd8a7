"""Turn text into an HTTP audio response, the way the current stage does it.

- skeletal: ``static/sample-audio.mp3`` whatever the text (seed 003's stub).
- mvp: synthesize the whole file, then answer.
- full: validate eagerly (413/422 before anything is sent), wait for the first chunk
  (a failing provider chain is a clean 503, not a broken 200), then stream the rest as
  it is synthesized; the stream is tied to the ``/ws`` client that asked, if any.

mvp and full take a synthesis slot first (``tts.admission``): past a cap the answer is
503 (total) or 429 (the caller's share) with ``Retry-After``, before any work.
"""

from __future__ import annotations

from fastapi.responses import FileResponse, Response, StreamingResponse

from config import STATIC_DIR
from fastapi_app.runtime import Runtime
from fastapi_app.streams import AudioStream
from fastapi_app.synthesis import release_when_done
from wire.legacy_http import AUDIO_HEADERS

SAMPLE = STATIC_DIR / "sample-audio.mp3"


async def speak(
    rt: Runtime,
    text: str,
    *,
    caller: str,
    voice: str | None = None,
    speed: float | None = None,
    fmt: str | None = None,
    lang: str | None = None,
    client_id: str | None = None,
) -> Response:
    """``caller``: whose synthesis share this counts against (``fastapi_app.synthesis``)."""
    if rt.speech is None:
        return FileResponse(SAMPLE, media_type="audio/mpeg", headers=AUDIO_HEADERS)
    engine = rt.speech
    media_type = engine.media_type(fmt)
    lease = rt.synthesis.acquire(caller)  # past a cap: 503 / 429 now, before any work
    if not rt.features.streaming:
        with lease:
            audio = await engine.synthesize(text, voice=voice, lang=lang, speed=speed, fmt=fmt)
        return Response(audio, media_type=media_type, headers=AUDIO_HEADERS)
    known_client = client_id if rt.connections and client_id in rt.connections.clients else None
    try:
        chunks = engine.stream(text, voice=voice, lang=lang, speed=speed, fmt=fmt)
        stream = await rt.streams.open(chunks, known_client)
    except BaseException:
        lease.release()
        raise
    # The synthesis ends with its producer task, which always ends: done, failed, or
    # cancelled when the answer ends (client gone included) or its /ws client leaves.
    release_when_done(stream.task, lease)
    return await _answer(rt, stream, media_type)


async def _answer(rt: Runtime, stream: AudioStream, media_type: str) -> Response:
    """200 with the stream once its first chunk is in; raises what synthesis raised."""
    try:
        first = await stream.first()
    except BaseException:
        rt.streams.close(stream)
        raise
    if first is None:
        rt.streams.close(stream)
        return Response(b"", media_type=media_type, headers=AUDIO_HEADERS)
    body = rt.streams.body(stream, first)
    return StreamingResponse(body, media_type=media_type, headers=AUDIO_HEADERS)
