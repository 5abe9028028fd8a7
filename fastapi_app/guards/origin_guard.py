"""Refuse WebSocket and Socket.IO handshakes from origins not allowed.

Browsers apply no CORS to WebSockets, so without this any page a user visits could
open a socket to this server with the user's cookies. Refusals are 403 (a WebSocket
closed before accept is answered 403 by the server, per the ASGI spec).
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.types import Receive, Scope, Send

from fastapi_app.auth.security import OriginPolicy

POLICY_VIOLATION = 1008
BODY = b'{"code":"origin_not_allowed","message":"this Origin may not open a connection"}'


def origin_allowed(policy: OriginPolicy, scope: Scope) -> bool:
    headers = Headers(scope=scope)
    return policy.allows(headers.get("origin"), headers.get("host"))


async def refuse(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "websocket":
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
