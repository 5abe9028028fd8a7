"""One meaning for "the peer is gone" on a WebSocket send, whoever closed the connection.

uvicorn's websockets-sansio protocol closes a connection by itself when the peer breaks
RFC 6455 (a text frame that is not UTF-8: 1007; a message over ``ws_max_size``: 1009;
bad framing: 1002). An application send that was already under way then raises a bare
``RuntimeError("Unexpected ASGI message 'websocket.send', after sending
'websocket.close'.")`` instead of the ``ClientDisconnected`` it raises once a peer has
left, so a handler that ends quietly for a departed client logged "Exception in ASGI
application" for a misbehaving one. :func:`peer_closed_aware` turns the first into the
second; a send after the application's own close still raises as before (a bug).
Socket.IO's websockets are not wrapped (``fastapi_app.sockets.direct_frames`` needs uvicorn's
own ``send``): ``fastapi_app.guards.sio_guard`` uses :func:`after_close` instead.
"""

from __future__ import annotations

from starlette.types import Message, Send
from uvicorn.protocols.utils import ClientDisconnected

_AFTER_CLOSE = "after sending 'websocket.close'"


def after_close(exc: BaseException) -> bool:
    """Whether ``exc`` is uvicorn's complaint about a send on a connection it closed."""
    return isinstance(exc, RuntimeError) and _AFTER_CLOSE in str(exc)


def peer_closed_aware(send: Send) -> Send:
    closed_by_app = False

    async def checked(message: Message) -> None:
        nonlocal closed_by_app
        closed_by_app = closed_by_app or message["type"] == "websocket.close"
        try:
            await send(message)
        except RuntimeError as exc:
            if closed_by_app or not after_close(exc):
                raise
            raise ClientDisconnected() from None

    return checked
