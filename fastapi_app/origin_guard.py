"""ASGI middleware: refuse WebSocket and Socket.IO handshakes from origins not allowed.

Browsers apply no CORS to WebSockets, so without this any page a user visits could
open a socket to this server with the user's cookies. Refusals are 403 (a WebSocket
closed before accept is answered 403 by the server, per the ASGI spec).
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from fastapi_app.security import OriginPolicy

POLICY_VIOLATION = 1008
BODY = b'{"code":"origin_not_allowed","message":"this Origin may not open a connection"}'


class OriginGuard:
    def __init__(
        self,
        app: ASGIApp,
        policy: OriginPolicy,
        *,
        on_reject: Callable[[], None] | None = None,
        socketio_path: str = "/socket.io/",
    ) -> None:
        self.app = app
        self.policy = policy
        self.on_reject = on_reject
        self.socketio_path = socketio_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        guarded = kind == "websocket" or (
            kind == "http" and scope["path"].startswith(self.socketio_path)
        )
        if guarded:
            headers = Headers(scope=scope)
            if not self.policy.allows(headers.get("origin"), headers.get("host")):
                if self.on_reject is not None:
                    self.on_reject()
                await self._reject(kind, receive, send)
                return
        await self.app(scope, receive, send)

    @staticmethod
    async def _reject(kind: str, receive: Receive, send: Send) -> None:
        if kind == "websocket":
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": POLICY_VIOLATION})
            return
        await send(
            {
                "type": "http.response.start",
                "status": 403,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": BODY})
