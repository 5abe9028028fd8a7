"""``GET /api/get-audio``: speech for a text (seed 003), and what voices are on offer."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from fastapi_app.deps import AudioAllowed, RuntimeDep, authenticate
from fastapi_app.errors import ERRORS, ApiError, ErrorBody
from fastapi_app.speech import speak
from fastapi_app.synthesis import Caller

router = APIRouter(tags=["audio"], dependencies=[Depends(authenticate)])

AUDIO_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Audio (audio/mpeg by default), streamed as it is synthesized in the "
        "full stage. The skeletal stage always returns static/sample-audio.mp3.",
        "content": {"audio/mpeg": {}, "audio/wav": {}, "audio/L16": {}},
    },
    **ERRORS,
    503: {
        "model": ErrorBody,
        "description": "Every speech provider failed, or the server is synthesizing all "
        "it may at once (GENIE_MAX_SYNTHESES; see Retry-After). Past the caller's own share "
        "(GENIE_MAX_SYNTHESES_PER_CLIENT): 429 with Retry-After.",
    },
}


@router.get(
    "/api/get-audio",
    response_class=Response,
    responses=AUDIO_RESPONSES,
    summary="Speak a text",
)
async def get_audio(
    rt: RuntimeDep,
    _: AudioAllowed,
    who: Caller,
    msg: Annotated[str, Query(description="Text to speak, 1-5,000 characters.")],
    voice: Annotated[str | None, Query(description="Voice id (see /api/voices).")] = None,
    speed: Annotated[float | None, Query(description="Speaking speed, 0.25-4.")] = None,
    format: Annotated[str | None, Query(description="mp3 (default), wav or pcm.")] = None,
    lang: Annotated[str | None, Query(description="Language code, e.g. en.")] = None,
    client_id: Annotated[
        str | None, Query(description="The /ws client this stream belongs to (full stage).")
    ] = None,
) -> Response:
    return await speak(
        rt, msg, caller=who, voice=voice, speed=speed, fmt=format, lang=lang, client_id=client_id
    )


@router.get(
    "/api/voices",
    responses={404: {"model": ErrorBody, "description": "Skeletal stage: no speech engine."}},
    summary="Voices, languages and formats on offer",
)
async def list_voices(rt: RuntimeDep) -> dict[str, Any]:
    engine = rt.speech
    if engine is None:
        raise ApiError(404, "no_speech", "the skeletal stage only plays the sample file")
    return {
        "voices": [
            {"id": v.id, "name": v.name, "languages": list(v.languages)} for v in engine.voices()
        ],
        "languages": engine.languages(),
        "formats": engine.formats(),
    }
