"""Text frames written straight to a uvicorn ``websockets-sansio`` socket's transport.

A frame the server sends is never masked, so it is just a 2-10 byte header and the
UTF-8 text. Going through ASGI instead costs, per frame and recipient, starlette's state
checks, uvicorn's ``send`` coroutine and its flow-control wait, and a ``websockets``
``Frame`` object that is serialized and joined: about a third of the server's CPU per
broadcast delivery here (most of the rest is the ``send()`` system call). So while a socket is
open, writable and uncompressed, :class:`DirectFrames` frames the text itself and hands
the bytes to the transport; whenever it cannot (buffer full, closing, another uvicorn
protocol, permessage-deflate on) it says so and the caller takes the ASGI path, which
waits, raises or closes exactly as before.

It reads private attributes of uvicorn's ``WebSocketsSansIOProtocol`` (``requirements.txt``
pins uvicorn; ``tests/fastapi_app/test_direct_frames.py`` fails if they move).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import State

_TEXT_FIN = 0x81  # FIN bit + opcode 1 (text)
DirectWrite = Callable[[str], bool]  # True: on the wire; False: take the ASGI path


def frame_header(length: int) -> bytes:
    """RFC 6455 section 5.2 header of an unmasked, unfragmented text frame."""
    if length < 126:
        return bytes((_TEXT_FIN, length))
    if length < 1 << 16:
        return bytes((_TEXT_FIN, 126)) + length.to_bytes(2, "big")
    return bytes((_TEXT_FIN, 127)) + length.to_bytes(8, "big")


class DirectFrames:
    __slots__ = ("_conn", "_proto", "_transport", "_writable")

    def __init__(self, proto: WebSocketsSansIOProtocol) -> None:
        self._proto = proto
        self._conn = proto.conn
        self._transport = proto.transport
        self._writable = proto.writable

    def write_text(self, text: str) -> bool:
        """Put ``text`` on the wire now and return True, or return False and do nothing."""
        proto = self._proto
        if (
            proto.close_sent
            or proto.disconnected
            or not self._writable.is_set()
            or self._conn.state is not State.OPEN
            or self._transport.is_closing()
        ):
            return False
        data = text.encode()
        self._transport.write(frame_header(len(data)) + data)
        return True


def direct_text_writer(send: Callable[..., Any]) -> DirectWrite | None:
    """``write_text`` for the socket behind the ASGI ``send`` uvicorn gave us, or None
    when ``send`` is wrapped, comes from another WebSocket implementation, or the
    connection negotiated an extension (permessage-deflate) that changes the framing."""
    proto = getattr(send, "__self__", None)
    if type(proto) is not WebSocketsSansIOProtocol or not proto.handshake_complete:
        return None
    if proto.conn.extensions:
        return None
    return DirectFrames(proto).write_text
