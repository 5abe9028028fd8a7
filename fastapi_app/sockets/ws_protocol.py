"""uvicorn's websockets-sansio protocol, answering a text message that is not UTF-8 right.

uvicorn 0.54 decodes each text message itself. One that is not UTF-8 is logged with a
traceback at ERROR ("Invalid UTF-8 sequence received from client.") and answered with
close 1007. When the peer's close frame came in the same read, the websockets parser
has already answered it (the connection is CLOSING) and uvicorn's ``send_close(1007)``
raises InvalidState inside ``data_received``: asyncio logs "Fatal error on transport"
and the connection is aborted without a close frame.

:func:`websocket_protocol` builds uvicorn's own protocol object (so
``fastapi_app.sockets.direct_frames`` still recognises it) with one method checked first:
``send_receive_event_to_app`` closes a text message that is not UTF-8 with 1007 when the
connection is still open (a close under way stands), logs one INFO line, and leaves
every other message to uvicorn. It reads what uvicorn's own method reads (``frames``,
``curr_msg_data_type``, ``close_sent``, ``conn``) and calls its
``handle_parser_exception``; ``requirements.txt`` pins uvicorn.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import State

log = logging.getLogger(__name__)

INVALID_DATA = 1007


def websocket_protocol(*args: Any, **kwargs: Any) -> WebSocketsSansIOProtocol:
    """What uvicorn's ``ws`` setting names: a factory of its websockets-sansio protocol."""
    proto = WebSocketsSansIOProtocol(*args, **kwargs)
    proto.send_receive_event_to_app = functools.partial(  # type: ignore[method-assign]
        _deliver, proto, proto.send_receive_event_to_app
    )
    return proto


def _deliver(proto: WebSocketsSansIOProtocol, uvicorn_deliver: Callable[[], None]) -> None:
    if proto.curr_msg_data_type == "text" and not proto.close_sent and _not_utf8(proto.frames):
        proto.frames = []
        log.info("WebSocket from %s: a text message that is not UTF-8: closed 1007",
                 _peer(proto))  # fmt: skip
        if proto.conn.state is State.OPEN:
            proto.conn.send_close(INVALID_DATA)
        proto.handle_parser_exception()  # uvicorn's own: tell the app, flush, close
        return
    uvicorn_deliver()


def _not_utf8(frames: list[bytes]) -> bool:
    try:
        b"".join(frames).decode()
    except UnicodeDecodeError:
        return True
    return False


def _peer(proto: WebSocketsSansIOProtocol) -> str:
    client = getattr(proto, "client", None)
    return f"{client[0]}:{client[1]}" if client else "?"
