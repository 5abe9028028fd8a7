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

It reads private attributes of uvicorn's ``WebSocketsSansIOProtocol`` and of
python-engineio's sockets (``fastapi_app.sockets.sio_manager``); ``requirements.txt`` pins both.
So it can step aside: ``GENIE_DIRECT_FRAMES=false`` turns it off, and
:func:`direct_frames_on` checks at start-up that the installed libraries still have what
it reads, and turns it off with one warning when they do not. A socket that lacks an
attribute at run time turns it off the same way. Either way the server is slower, never
broken: every frame takes the ASGI path. ``tests/fastapi_app/test_direct_frames.py``
fails if the path silently stops being taken.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

import engineio
from engineio.async_drivers import asgi as eio_asgi
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import State
from websockets.server import ServerProtocol

from fastapi_app.internals import attribute_names

log = logging.getLogger(__name__)

_TEXT_FIN = 0x81  # FIN bit + opcode 1 (text)

# Everything the direct paths read that is not a public API, by owner.
READS: dict[type, tuple[str, ...]] = {
    WebSocketsSansIOProtocol: (
        "conn", "transport", "writable", "close_sent", "disconnected", "handshake_complete",
    ),
    ServerProtocol: ("state", "extensions"),
    engineio.AsyncServer: ("sockets", "ping_timeout", "ping_interval", "_async"),
    engineio.async_socket.AsyncSocket: (
        "queue", "closed", "last_ping", "upgraded", "poll", "sid", "server",
    ),
    eio_asgi.WebSocket: ("asgi_send",),
}  # fmt: skip
_off = False  # set for good when a socket turns out to lack what is read


def missing_internals() -> list[str]:
    """``Class.attribute`` for each read the installed libraries no longer support."""
    missing = [
        f"{cls.__module__}.{cls.__qualname__}.{name}"
        for cls, names in READS.items()
        for name in names
        if name not in attribute_names(cls)
    ]
    if getattr(State, "OPEN", None) is None:
        missing.append("websockets.protocol.State.OPEN")
    return missing


@functools.cache
def direct_frames_on(wanted: bool = True) -> bool:
    """Whether to write frames directly: asked for, and the libraries have what it reads.
    Warns once (per process) when it has to say no."""
    if not wanted:
        return False
    missing = missing_internals()
    if missing:
        _turn_off(f"the installed libraries lack {', '.join(missing)}")
        return False
    return not _off


def _turn_off(why: str) -> None:
    global _off
    if not _off:
        _off = True
        log.warning(
            "direct frames are off: %s; every frame takes the ASGI path (slower, same "
            "wire). Pin the versions in requirements.txt to get them back.",
            why,
        )


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

    def write_texts(self, texts: list[str]) -> bool:
        """Put every text on the wire, each its own frame, in ONE transport write; or
        return False and do nothing."""
        if not self._open():
            return False
        if len(texts) == 1:  # the common case: one frame, no list to join
            data = texts[0].encode()
            self._transport.write(frame_header(len(data)) + data)
            return True
        parts = []
        for text in texts:
            data = text.encode()
            parts.append(frame_header(len(data)))
            parts.append(data)
        self._transport.write(b"".join(parts))
        return True

    def _open(self) -> bool:
        proto = self._proto
        try:
            if (
                _off
                or proto.close_sent
                or proto.disconnected
                or not self._writable.is_set()
                or self._conn.state is not State.OPEN
                or self._transport.is_closing()
            ):
                return False
        except AttributeError as exc:
            _turn_off(f"a socket lacks {exc.name!r}")
            return False
        return True


def direct_writer(send: Callable[..., Any]) -> DirectFrames | None:
    """The direct writer of the socket behind the ASGI ``send`` uvicorn gave us, or None
    when ``send`` is wrapped, comes from another WebSocket implementation, or the
    connection negotiated an extension (permessage-deflate) that changes the framing."""
    proto = getattr(send, "__self__", None)
    if _off or type(proto) is not WebSocketsSansIOProtocol:
        return None
    try:
        if not proto.handshake_complete or proto.conn.extensions:
            return None
        return DirectFrames(proto)
    except AttributeError as exc:
        _turn_off(f"a socket lacks {exc.name!r}")
        return None
