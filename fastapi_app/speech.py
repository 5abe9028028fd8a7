"""Turn text into an HTTP audio response, the way the current stage does it.

- skeletal: ``static/sample-audio.mp3`` whatever the text (seed 003's stub).
- mvp: synthesize the whole file, then answer.
- full: validate eagerly (413/422 before anything is sent), wait for the first chunk
  (a failing provider chain is a clean 503, not a broken 200), then stream the rest as
  it is synthesized; the stream is tied to the ``/ws`` client that asked, if any.
"""

from __future__ import annotations

from fastapi.responses import FileResponse, Response, StreamingResponse

from config import STATIC_DIR
from fastapi_app.runtime import Runtime
from wire.legacy_http import AUDIO_HEADERS

SAMPLE = STATIC_DIR / "sample-audio.mp3"


async def speak(
    rt: Runtime,
    text: str,
    *,
    voice: str | None = None,
    speed: float | None = None,
    fmt: str | None = None,
    lang: str | None = None,
    client_id: str | None = None,
) -> Response:
    if rt.speech is None:
        return FileResponse(SAMPLE, media_type="audio/mpeg", headers=AUDIO_HEADERS)
    engine = rt.speech
    media_type = engine.media_type(fmt)
    if not rt.features.streaming:
        audio = await engine.synthesize(text, voice=voice, lang=lang, speed=speed, fmt=fmt)
        return Response(audio, media_type=media_type, headers=AUDIO_HEADERS)
    chunks = engine.stream(text, voice=voice, lang=lang, speed=speed, fmt=fmt)
    known_client = client_id if rt.connections and client_id in rt.connections.clients else None
    stream = await rt.streams.open(chunks, known_client)
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
