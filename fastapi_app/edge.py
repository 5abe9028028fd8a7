"""``GenieApp``: the one ASGI layer uvicorn calls, in front of Socket.IO and FastAPI.

Per connection it (1) checks the Origin of WebSocket and Socket.IO handshakes (full
stage), (2) serves ``/ws`` itself, (3) guards Engine.IO long-polls, (4) refuses
cross-site requests that change state (full stage, ``fastapi_app.guards.csrf``), (5) adds the
security headers to every HTTP response (``fastapi_app.guards.headers``), and hands the rest
to ``socketio.ASGIApp(sio, other_asgi_app=api)``: Socket.IO at ``/socket.io/``,
everything else FastAPI. Before all of it, each connection is counted against the
per-address and total caps (``fastapi_app.guards.connection_caps``): past one it gets 503 or,
a WebSocket, close 1013.

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

from fastapi_app.auth.security import OriginPolicy
from fastapi_app.guards.connection_caps import ConnectionCaps, client_address
from fastapi_app.guards.connection_caps import refuse as refuse_busy
from fastapi_app.guards.csrf import CrossSiteGuard
from fastapi_app.guards.csrf import refuse as refuse_cross_site
from fastapi_app.guards.headers import SecurityHeaders
from fastapi_app.guards.origin_guard import origin_allowed, refuse
from fastapi_app.guards.peer_closed import peer_closed_aware
from fastapi_app.runtime import Runtime
from fastapi_app.sockets.longpoll import is_long_poll, serve_long_poll
from fastapi_app.sockets.socketio_compat import LegacySocketIO
from fastapi_app.sockets.ws_session import SERVICE_RESTART, WsSession

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
        caps: ConnectionCaps | None = None,
    ) -> None:
        self.api = api
        self.legacy = legacy_io
        self._inner = socketio.ASGIApp(legacy_io.sio, other_asgi_app=api)
        self._origins = origins
        self._on_refused = on_origin_refused
        self._native_ws = native_ws
        self._caps = caps  # connections open at once (fastapi_app.guards.connection_caps)
        # The same allow-list decides for sockets and for state-changing requests.
        self._cross_site = CrossSiteGuard(origins) if origins is not None else None
        self._headers = SecurityHeaders(
            (api.docs_url, api.redoc_url, api.swagger_ui_oauth2_redirect_url)
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        caps = self._caps
        if caps is None or scope["type"] == "lifespan":
            await self._dispatch(scope, receive, send)
            return
        # Counted before any other work: a flood is refused at the cost of one answer.
        address = client_address(scope)
        refused = caps.enter(address)
        if refused is not None:
            await refuse_busy(scope, receive, send, refused)
            return
        try:
            await self._dispatch(scope, receive, send)
        finally:
            caps.leave(address)

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            send = self._headers.wrap(scope, send)
        if kind == "websocket":
            if not self._origin_ok(scope):
                await refuse(scope, receive, send)
            elif self._native_ws and scope["path"] == "/ws":
                await self._serve_ws(scope, receive, send)  # its Outbox handles a gone peer
            elif scope["path"].startswith(SOCKETIO_PATH):
                # Unwrapped: direct frames need uvicorn's own send (sio_guard handles it).
                await self._inner(scope, receive, send)
            else:
                await self._inner(scope, receive, peer_closed_aware(send))
        elif kind == "http" and scope["path"].startswith(SOCKETIO_PATH):
            if not self._origin_ok(scope):
                await refuse(scope, receive, send)
            elif is_long_poll(scope):
                await serve_long_poll(self._inner, scope, receive, send)
            else:
                await self._inner(scope, receive, send)
        elif kind == "http" and (refusal := self._cross_site_refusal(scope)) is not None:
            await refuse_cross_site(send, refusal)
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

    def _cross_site_refusal(self, scope: Scope) -> str | None:
        return self._cross_site.refusal(scope) if self._cross_site is not None else None

    async def _serve_ws(self, scope: Scope, receive: Receive, send: Send) -> None:
        ws = WebSocket(scope, receive=receive, send=send)
        runtime = self.runtime
        if runtime is None:  # starting or stopping
            await ws.close(SERVICE_RESTART, "server not ready")
            return
        await WsSession(runtime, ws, send).run()
