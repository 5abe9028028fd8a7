"""Seeds 000-002: scenes, the old REST chunk flow and the new session WebSocket.

- ``POST /api/scenes`` / ``GET /api/scenes/{id}``: scenes in SQLite (``scenes_db``).
- Old flow (fallback and benchmark baseline): ``POST /api/tts/generate/{scene_id}``
  speaks every chunk before answering ``{chunk_count, duration}``; ``GET
  /api/tts/audio/{scene_id}/chunk/{n}`` is 404 until chunk ``n`` exists (from any flow).
- New flow: ``POST /api/tts/generate-ws/{scene_id}`` -> ``{session_id, status:
  "initiated"}`` and generation starts; ``WS /ws/tts/{session_id}`` streams it (frames in
  ``wire.tts_frames``). Query: ``token`` (or a first ``{"type": "auth"}`` frame) when
  auth is on, ``binary=1`` for binary audio frames, ``last_chunk=n`` to resume after a
  reconnect (also ``{"type": "resume", "last_chunk": n}``). Closes 1000 after
  ``complete``/``stopped``/``error``, 1008 on a bad token, 4404 for an unknown session.
- Both ``generate`` routes count against ``GENIE_RATE_LIMIT_SPEECH`` (429 + Retry-After).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Body, FastAPI, Path, WebSocket
from fastapi.responses import Response
from pydantic import AfterValidator, BaseModel, Field
from starlette.requests import HTTPConnection
from starlette.websockets import WebSocketDisconnect

from config import Settings
from fastapi_app.deps import RuntimeDep, SpeechAllowed, Subject
from fastapi_app.errors import BAD_BODY, ERRORS, ApiError, error_doc
from fastapi_app.routers.scene_socket import SceneSocket
from fastapi_app.scenes import SceneNotFoundError, SceneStore, SessionManager
from fastapi_app.synthesis import Caller, release_when_done

SESSION_TTL = 300.0  # the seeds' 5 minutes


def _speakable(chunk: str) -> str:
    # The engine refuses a blank text: refuse it here, not when the scene is spoken.
    if not chunk.strip():
        raise ValueError("a chunk must have more than whitespace")
    return chunk


class SceneBody(BaseModel):
    title: str | None = Field(None, max_length=200)
    chunks: list[
        Annotated[
            str,
            Field(min_length=1, max_length=5000, description="Not only whitespace."),
            AfterValidator(_speakable),
        ]
    ] = Field(min_length=1, max_length=500)


# What the JSON routes answer, documented (response_schema_conformance checks it).
class SceneCreated(BaseModel):
    id: int


class SceneOut(BaseModel):
    id: int
    title: str | None
    chunks: list[str]


class SceneSpoken(BaseModel):
    scene_id: int
    chunk_count: int
    duration: float


class SessionStarted(BaseModel):
    session_id: str
    status: str
    total_chunks: int


# SQLite's INTEGER is 64-bit: a larger id gets a 422, not an OverflowError (500).
SceneId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The id POST /api/scenes gave.")]
# Every scene route: auth, no such scene (or chunk, or chunk not ready yet), no speech.
SCENE_ERRORS: dict[int | str, dict[str, Any]] = {
    401: ERRORS[401],
    404: error_doc("No such scene, no such chunk, or the chunk is not ready yet."),
    503: error_doc("No speech in the skeletal stage, or every speech provider failed."),
}
SPEECH_ERRORS = {**ERRORS, **SCENE_ERRORS}  # routes that synthesize: also 413, 429


def _link(operation_id: str, **parameters: object) -> dict[str, Any]:
    return {"operationId": operation_id, "parameters": parameters}


# OpenAPI links: how a client (and schemathesis' state machine, bench.robustness.http)
# walks create -> generate -> chunk.
NEW_SCENE = "$response.body#/id"
CREATED_LINKS = {
    "GetScene": _link("get_scene", scene_id=NEW_SCENE),
    "GenerateScene": _link("generate_scene", scene_id=NEW_SCENE),
    "StartSession": _link("start_scene_session", scene_id=NEW_SCENE),
}
GENERATED_LINKS = {
    "GetLastChunk": _link("scene_chunk_audio", scene_id="$response.body#/scene_id",
                          number="$response.body#/chunk_count"),
}  # fmt: skip
STARTED_LINKS = {
    "GetFirstChunk": _link("scene_chunk_audio", scene_id="$request.path.scene_id", number=1),
}


def manager_of(conn: HTTPConnection) -> SessionManager:
    manager = getattr(conn.app.state, "scenes", None)
    if manager is None:
        raise ApiError(503, "no_speech", "scene speech is not available (skeletal stage)")
    return manager


def build_router(settings: Settings) -> APIRouter:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = getattr(app.state, "runtime", None)
        engine = runtime.speech if runtime is not None else None
        if engine is None:
            app.state.scenes = None
            yield
            return
        store = SceneStore(settings.scenes_db or ":memory:")
        await store.open()
        manager = SessionManager(
            store,
            engine,
            ttl=settings.scene_session_ttl,
            slots=settings.scene_synth_slots,
        )
        sweeper = asyncio.create_task(manager.run_sweeper(), name="scene-sweeper")
        app.state.scenes = manager
        try:
            yield
        finally:
            app.state.scenes = None
            sweeper.cancel()
            await asyncio.gather(sweeper, return_exceptions=True)
            await manager.aclose()
            await store.close()

    router = APIRouter(tags=["scenes"], lifespan=lifespan)
    _add_routes(router)
    return router


def _add_routes(router: APIRouter) -> None:
    @router.post(
        "/api/scenes",
        status_code=201,
        operation_id="create_scene",
        response_model=SceneCreated,
        responses={201: {"links": CREATED_LINKS}, **BAD_BODY, **SCENE_ERRORS},
        summary="Store a scene",
    )
    async def create_scene(
        conn: HTTPConnection, _: Subject, body: Annotated[SceneBody, Body()]
    ) -> dict[str, Any]:
        return {"id": await manager_of(conn).store.create(body.title, body.chunks)}

    @router.get(
        "/api/scenes/{scene_id}",
        operation_id="get_scene",
        response_model=SceneOut,
        responses=SCENE_ERRORS,
        summary="A stored scene",
    )
    async def get_scene(conn: HTTPConnection, _: Subject, scene_id: SceneId) -> dict[str, Any]:
        scene = await _scene(conn, scene_id)
        return {"id": scene.id, "title": scene.title, "chunks": list(scene.chunks)}

    @router.post(
        "/api/tts/generate/{scene_id}",
        operation_id="generate_scene",
        response_model=SceneSpoken,
        responses={200: {"links": GENERATED_LINKS}, **SPEECH_ERRORS},
        summary="Old flow: speak every chunk, then answer",
    )
    async def generate(
        conn: HTTPConnection,
        _: Subject,
        _limit: SpeechAllowed,
        rt: RuntimeDep,
        who: Caller,
        scene_id: SceneId,
    ) -> dict[str, Any]:
        try:
            with rt.synthesis.acquire(who):  # past a cap: 503 / 429 + Retry-After
                chunks = await manager_of(conn).generate_all(scene_id)
        except SceneNotFoundError as exc:
            raise ApiError(404, "scene_not_found", str(exc)) from None
        duration = round(sum(c.duration for c in chunks), 3)
        return {"scene_id": scene_id, "chunk_count": len(chunks), "duration": duration}

    @router.get(
        "/api/tts/audio/{scene_id}/chunk/{number}",
        response_class=Response,
        operation_id="scene_chunk_audio",
        responses={200: {"content": {"audio/mpeg": {}}}, **SCENE_ERRORS},
        summary="Old flow: one chunk's MP3, 404 until it is ready",
    )
    async def chunk_audio(
        conn: HTTPConnection, _: Subject, scene_id: SceneId, number: int
    ) -> Response:
        manager = manager_of(conn)
        scene = await _scene(conn, scene_id)
        if not 1 <= number <= len(scene.chunks):
            raise ApiError(404, "chunk_not_found", f"scene {scene_id} has no chunk {number}")
        key = manager.default_voice.key(scene.chunks[number - 1])
        chunk = await manager.store.audio(scene_id, number, key)
        if chunk is None:
            raise ApiError(404, "chunk_not_ready", f"chunk {number} is not ready yet")
        return Response(chunk.audio, media_type="audio/mpeg")

    @router.post(
        "/api/tts/generate-ws/{scene_id}",
        operation_id="start_scene_session",
        response_model=SessionStarted,
        responses={200: {"links": STARTED_LINKS}, **SPEECH_ERRORS},
        summary="New flow: start a session",
    )
    async def generate_ws(
        conn: HTTPConnection,
        subject: Subject,
        _limit: SpeechAllowed,
        rt: RuntimeDep,
        who: Caller,
        scene_id: SceneId,
    ) -> dict[str, Any]:
        lease = rt.synthesis.acquire(who)  # held while the session generates
        try:
            session = await manager_of(conn).create(scene_id, subject)
        except BaseException as exc:
            lease.release()
            if isinstance(exc, SceneNotFoundError):
                raise ApiError(404, "scene_not_found", str(exc)) from None
            raise
        release_when_done(session.task, lease)
        return {"session_id": session.id, "status": "initiated", "total_chunks": session.total}

    @router.websocket("/ws/tts/{session_id}")
    async def session_socket(websocket: WebSocket, session_id: str) -> None:
        await websocket.accept()
        manager = getattr(websocket.app.state, "scenes", None)
        runtime = getattr(websocket.app.state, "runtime", None)
        if manager is None or runtime is None:
            await websocket.send_text(json.dumps({"type": "error", "message": "not available"}))
            await websocket.close(1011)
            return
        with contextlib.suppress(WebSocketDisconnect):
            await SceneSocket(websocket, manager, runtime, session_id).run()


async def _scene(conn: HTTPConnection, scene_id: int) -> Any:
    try:
        return await manager_of(conn).store.get(scene_id)
    except SceneNotFoundError as exc:
        raise ApiError(404, "scene_not_found", str(exc)) from None
