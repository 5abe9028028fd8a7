"""The original Genie HTTP routes, unchanged on the wire (see DESIGN "Wire protocols")."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import PlainTextResponse, Response

from fastapi_app.deps import AudioAllowed, QueryAllowed, RuntimeDep, authenticate
from fastapi_app.errors import ERRORS, error_doc
from fastapi_app.routers.audio import AUDIO_RESPONSES
from fastapi_app.speech import speak
from fastapi_app.synthesis import Caller
from wire import legacy, legacy_http

router = APIRouter(tags=["legacy Genie"], dependencies=[Depends(authenticate)])

NOT_FOUND: dict[int | str, dict[str, Any]] = {404: error_doc("No such job.")}


@router.get(
    "/push",
    response_class=PlainTextResponse,
    responses={**ERRORS, 503: error_doc("Queue full or store busy; see Retry-After.")},
    summary="Queue a question (legacy)",
    description="The original page sends the text unencoded (`/push?question=` + text), so "
    "everything after `question=` in the raw query string is the question.",
)
async def push(
    request: Request,
    rt: RuntimeDep,
    _: QueryAllowed,
    question: Annotated[str | None, Query(description="The question, 1-5,000 characters.")] = None,
) -> PlainTextResponse:
    text = legacy_http.push_question(request.scope.get("query_string", b""))
    job = await rt.queues.push_job(text)
    return PlainTextResponse(legacy_http.pushed(job))


@router.get(
    "/get_queue/{queue_name}",
    responses=NOT_FOUND,
    summary="List a queue as <li> strings, newest first (legacy)",
)
async def get_queue(
    rt: RuntimeDep,
    queue_name: Annotated[str, Path(description="todo, run, done or dead")],
) -> dict[str, list[str]]:
    name = legacy_http.checked_queue_name(queue_name)
    return legacy.queue_listing(name, await rt.queues.listing(name))


@router.get(
    "/get_tts_audio",
    response_class=Response,
    responses=AUDIO_RESPONSES,
    summary="Speak a text (legacy name of /api/get-audio)",
)
async def get_tts_audio(
    rt: RuntimeDep,
    _: AudioAllowed,
    who: Caller,
    tts_text: Annotated[str, Query(description="Text to speak, 1-5,000 characters.")],
) -> Response:
    return await speak(rt, tts_text, caller=who)


@router.get(
    "/get-answer/{id_hash}",
    response_class=Response,
    responses={**AUDIO_RESPONSES, **NOT_FOUND},
    summary="Speak the answer of a done job (legacy)",
)
async def get_answer(rt: RuntimeDep, _: AudioAllowed, who: Caller, id_hash: str) -> Response:
    text = legacy_http.answer_text(await rt.queues.find(id_hash), id_hash)
    return await speak(rt, text, caller=who)


@router.get(
    "/delete-snapshot/{id_hash}",
    response_class=PlainTextResponse,
    responses={
        **NOT_FOUND,
        409: error_doc("Job still queued or running."),
    },
    summary="Forget a finished job (legacy)",
)
async def delete_snapshot(rt: RuntimeDep, id_hash: str) -> PlainTextResponse:
    await rt.queues.delete(id_hash)
    sound = legacy.notification_sound(rt.settings.notification_sound)
    await rt.legacy.emit(legacy.NOTIFICATION_SOUND_UPDATE, sound, fleet=True)
    return PlainTextResponse(legacy_http.deleted(id_hash))
