"""``GenieApp``: the one ASGI layer uvicorn calls, in front of Socket.IO and FastAPI.

Per connection it (1) checks the Origin of WebSocket and Socket.IO handshakes (full
stage), (2) serves ``/ws`` itself, (3) guards Engine.IO long-polls, and hands the rest
to ``socketio.ASGIApp(sio, other_asgi_app=api)``: Socket.IO at ``/socket.io/``,
everything else FastAPI.

``/ws`` bypasses FastAPI's router on purpose: a WebSocket lives for hours and every
layer it passes keeps a frame alive for that long and sits on its send path. Served
here, an idle client costs several KB less and each frame skips two wrappers. FastAPI
has nothing to add to a WebSocket anyway (no OpenAPI, no per-frame dependencies).
"""

from __future__ import annotations

from collections.abc import Callable

import socketio
from fastapi import FastAPI
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket

from fastapi_app.longpoll import is_long_poll, serve_long_poll
from fastapi_app.origin_guard import origin_allowed, refuse
from fastapi_app.runtime import Runtime
from fastapi_app.security import OriginPolicy
from fastapi_app.socketio_compat import LegacySocketIO
from fastapi_app.ws_session import SERVICE_RESTART, WsSession

SOCKETIO_PATH = "/socket.io/"


class GenieApp:
    """What uvicorn serves. ``api`` is the FastAPI app, ``drain()`` starts a shutdown."""

    def __init__(
        self,
        api: FastAPI,
        legacy_io: LegacySocketIO,
        *,
        origins: OriginPolicy | None,
        on_origin_refused: Callable[[], None] | None,
        native_ws: bool,
    ) -> None:
        self.api = api
        self.legacy = legacy_io
        self._inner = socketio.ASGIApp(legacy_io.sio, other_asgi_app=api)
        self._origins = origins
        self._on_refused = on_origin_refused
        self._native_ws = native_ws

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "websocket":
            if not self._origin_ok(scope):
                await refuse(scope, receive, send)
            elif self._native_ws and scope["path"] == "/ws":
                await self._serve_ws(scope, receive, send)
            else:
                await self._inner(scope, receive, send)
        elif kind == "http" and scope["path"].startswith(SOCKETIO_PATH):
            if not self._origin_ok(scope):
                await refuse(scope, receive, send)
            elif is_long_poll(scope):
                await serve_long_poll(self._inner, scope, receive, send)
            else:
                await self._inner(scope, receive, send)
        else:
            await self._inner(scope, receive, send)

    @property
    def runtime(self) -> Runtime | None:
        return getattr(self.api.state, "runtime", None)

    async def drain(self) -> None:
        runtime = self.runtime
        if runtime is not None:
            await runtime.drain()

    def _origin_ok(self, scope: Scope) -> bool:
        if self._origins is None or origin_allowed(self._origins, scope):
            return True
        if self._on_refused is not None:
            self._on_refused()
        return False

    async def _serve_ws(self, scope: Scope, receive: Receive, send: Send) -> None:
        ws = WebSocket(scope, receive=receive, send=send)
        runtime = self.runtime
        if runtime is None:  # starting or stopping
            await ws.close(SERVICE_RESTART, "server not ready")
            return
        await WsSession(runtime, ws, send).run()
