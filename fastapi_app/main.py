"""``create_app(settings)``: the only place that wires the FastAPI server together.

The ASGI app served is :class:`~fastapi_app.edge.GenieApp`: native ``/ws``, then
python-socketio's ``ASGIApp`` wrapping FastAPI (Socket.IO at ``/socket.io/``,
everything else FastAPI), with Origin checks in the full stage.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import AsyncIterator

from fastapi import FastAPI

from config import Settings
from fastapi_app.auth import login
from fastapi_app.auth.access import Access
from fastapi_app.edge import GenieApp
from fastapi_app.errors import install_error_handlers
from fastapi_app.features import Features
from fastapi_app.guards.connection_caps import ConnectionCaps
from fastapi_app.metrics import AppMetrics
from fastapi_app.routers import audio, client_config, health, legacy, static
from fastapi_app.routers.openai_speech import router as openai_speech_router
from fastapi_app.routers.scenes import build_router as build_scenes_router
from fastapi_app.routers.tts_stream import router as tts_stream_router
from fastapi_app.runtime import Runtime
from fastapi_app.sockets.socketio_compat import LegacySocketIO
from wire import log_redaction

DESCRIPTION = """Genie-in-the-Box on FastAPI. Native WebSocket at `/ws` (JSON frames, see
`wire/frames.py`), Socket.IO at `/socket.io/` for the original page, speech at
`/api/get-audio`. Auth (full stage, when `GENIE_JWT_SECRET` is set): `Authorization:
Bearer <jwt>`, or `?token=` (least safe: it lands in logs and history)."""


def create_app(settings: Settings | None = None) -> GenieApp:
    settings = settings if settings is not None else Settings()
    features = Features.for_settings(settings)
    access = Access.from_settings(settings, features)
    metrics = AppMetrics() if features.metrics else None
    caps = ConnectionCaps.from_settings(settings)
    if metrics is not None and caps is not None:
        metrics.watch_connections(caps)
    legacy_io = LegacySocketIO(settings, access, metrics, direct=features.direct_frames)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = Runtime.assemble(settings, features, access, legacy_io, metrics)
        async with contextlib.AsyncExitStack() as stack:
            await runtime.start(stack)
            app.state.runtime = runtime
            # Move the ~100k start-up objects out of the GC's reach: a full collection over
            # them stalls every socket for ~60 ms (bench.ws_broadcast --gc, py-spy).
            gc.collect()
            gc.freeze()
            yield
            await runtime.drain()
            await runtime.finish_running_jobs()
        app.state.runtime = None

    api = FastAPI(title="Genie", version="1.0", description=DESCRIPTION, lifespan=lifespan)
    api.state.runtime = None
    install_error_handlers(api)
    api.include_router(health.router)
    if metrics is not None:
        api.include_router(health.metrics_router)
    api.include_router(audio.router)
    api.include_router(legacy.router)
    api.include_router(static.router)
    api.include_router(client_config.build_router(settings, features, metrics))
    api.include_router(tts_stream_router)
    api.include_router(openai_speech_router)
    api.include_router(build_scenes_router(settings))
    if (login_router := login.build_router(settings, access.auth)) is not None:
        api.include_router(login_router)
    return GenieApp(
        api,
        legacy_io,
        origins=access.origins,
        on_origin_refused=metrics.origin_rejected.inc if metrics is not None else None,
        native_ws=features.native_ws,  # served by GenieApp itself, see fastapi_app.edge
        caps=caps,
    )


def app_from_env() -> GenieApp:
    """Factory for ``uvicorn --factory fastapi_app.main:app_from_env`` (GENIE_* env)."""
    # A worker process configured uvicorn's loggers itself: redact tokens there too.
    log_redaction.install()
    return create_app(Settings())
