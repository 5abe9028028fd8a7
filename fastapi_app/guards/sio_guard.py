"""Client packets python-engineio / python-socketio cannot act on end the session cleanly.

The libraries (pinned 4.15 / 5.18) decode client packets inside handlers that log any
exception with a traceback at ERROR and carry on, or let it escape as "Exception in
ASGI application": an empty or unknown Engine.IO packet, bad base64, a polling body
that is not UTF-8, JSON nested past the recursion limit, a Socket.IO event whose name
is no string, a placeholder that points at no attachment... Node's Socket.IO server
closes a connection whose packet it cannot parse; :class:`GuardedServer` does the
same, checking each packet before the libraries see it:

- websocket: close 1002, the reason says what was wrong;
- polling POST: HTTP 400 at once and the session is closed (python-engineio closed it
  too, but only after the next poll, holding the POST until then; open, ping and noop
  packets, which v4 clients never post, took that path);
- a well-formed Engine.IO message carrying a bad Socket.IO packet (either transport):
  the session is closed (a websocket with 1002).

Reserved events are refused the same way: python-socketio hands a client's
``42["disconnect"]`` to the server's own disconnect handler (the connected count then
reached zero and every legacy broadcast stopped). Transports end with a close code
where python-engineio left them hanging or dropped them: a websocket handshake asking
for polling is refused (it was accepted, then dropped without a close frame); a failed
upgrade closes 1002 (dropped), one whose probe never comes after ``UPGRADE_TIMEOUT``
(it waited forever); the client's CLOSE packet ends the websocket 1000 (it stayed open
for 45 s). A request for a session that is closed but not yet swept from
``eio.sockets`` (ping timeout, the client's CLOSE packet) gets the 400 of an unknown
session (a POST was a KeyError and HTTP 500).

What it relies on, all plain attributes of the pinned versions: the server's
``handle_request`` / ``_handle_eio_connect`` / ``_handle_eio_message`` /
``_binary_packet``, the Engine.IO driver table ``eio._async`` (as
``fastapi_app.sockets.sio_manager``), a socket's ``handle_post_request`` / ``upgraded`` /
``upgrading`` / ``connected``, and the websocket wrapper's ``wait``, ``handler`` and
``asgi_send``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import weakref
from typing import Any
from urllib.parse import parse_qs

import socketio
from engineio import exceptions as eio_exceptions
from socketio import packet as sio_packet

from fastapi_app.guards.peer_closed import after_close

log = logging.getLogger(__name__)

NORMAL_CLOSURE, PROTOCOL_ERROR, POLICY_VIOLATION = 1000, 1002, 1008
CLOSE_PACKET = "1"  # Engine.IO: the client ends the session
UPGRADE_TIMEOUT = 10.0  # seconds for an upgrade's probe and UPGRADE packet (Node's default)
# python-engineio's own limit (Payload.max_decode_packets), which a client in the same
# process may raise for itself (tests/flask_app/sio.py does): the server's stays.
MAX_PACKETS = 16
MAX_ATTACHMENTS = 10  # binary attachments one client packet may announce
MAX_BINARY_DEPTH = 64  # python-socketio rebuilds binary packets recursively
RESERVED_EVENTS = frozenset({"connect", "disconnect", "connect_error"})
_ENGINE_TYPES = "0123456"
BINARY_TYPES = (sio_packet.BINARY_EVENT, sio_packet.BINARY_ACK)
_NOT_BY_POST = ("0", "2", "6")  # open, ping, noop: the server's to send (Engine.IO v4)


def engineio_problem(packet: str | bytes) -> str | None:
    """What is wrong with one Engine.IO packet from a client, if anything."""
    if not isinstance(packet, str):
        return None  # a binary message (websocket): Socket.IO decides
    if not packet:
        return "empty packet"
    if packet[0] == "b":
        try:
            base64.b64decode(packet[1:], validate=True)
        except (binascii.Error, ValueError):
            return "binary packet with invalid base64"
        return None
    if packet[0] not in _ENGINE_TYPES:
        return f"unknown packet type {packet[:1]!r}"
    if len(packet) > 1 and not packet[1].isnumeric():
        # python-engineio tries JSON on such data; too deep a nesting raises RecursionError.
        try:
            json.loads(packet[1:])
        except RecursionError:
            return "data nested too deeply"
        except ValueError:
            pass
    return None


def payload_problem(body: bytes) -> str | None:
    """What is wrong with a polling POST body (packets joined by 0x1E), if anything."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return "payload is not UTF-8"
    if text.startswith("d="):
        return "JSONP payloads are not accepted"
    packets = text.split("\x1e") if text else []
    if len(packets) > MAX_PACKETS:
        return f"more than {MAX_PACKETS} packets in one payload"
    for packet in packets:
        if packet[:1] in _NOT_BY_POST:
            # python-engineio answers these with a disconnect that waits for the next poll.
            return f"packet type {packet[:1]} is not one a client posts"
    return next(filter(None, map(engineio_problem, packets)), None)


def socketio_problem(packet_class: type[Any], data: Any) -> tuple[Any, str | None]:
    """One Socket.IO packet (an Engine.IO message's data), decoded, and what is wrong
    with it if anything."""
    if not isinstance(data, str):
        return None, "binary data with no binary packet announcing it"
    try:
        pkt = packet_class(encoded_packet=data)
    except (ValueError, TypeError, RecursionError) as exc:
        return None, f"cannot decode: {exc}"[:200]
    return pkt, _packet_problem(pkt)


def _packet_problem(pkt: Any) -> str | None:
    kind = pkt.packet_type
    if kind in (sio_packet.CONNECT, sio_packet.DISCONNECT):
        return None if pkt.data is None or isinstance(pkt.data, dict) else "data must be an object"
    if kind in (sio_packet.EVENT, sio_packet.BINARY_EVENT):
        problem = _event_problem(pkt.data)
    elif kind in (sio_packet.ACK, sio_packet.BINARY_ACK):
        problem = None if isinstance(pkt.data, list) and pkt.id is not None else "bad ack"
    else:
        return f"packet type {kind!r} is not one a client sends"
    if problem is None and kind in BINARY_TYPES:
        problem = _binary_problem(pkt.data, pkt.attachment_count)
    return problem


def _event_problem(data: Any) -> str | None:
    if not isinstance(data, list) or not data or not isinstance(data[0], str):
        return "an event is a list starting with its name"
    if data[0] in RESERVED_EVENTS:
        return f"{data[0]!r} is a reserved event"
    return None


def _binary_problem(data: Any, attachments: int) -> str | None:
    """Attachments announced 1..MAX, every placeholder pointing at one, shallow data."""
    if not 1 <= attachments <= MAX_ATTACHMENTS:
        return f"binary packets carry 1 to {MAX_ATTACHMENTS} attachments"
    stack = [(data, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_BINARY_DEPTH:
            return "binary packet data nested too deeply"
        if isinstance(item, dict):
            if item.get("_placeholder") and "num" in item:
                num = item["num"]
                if isinstance(num, bool) or not isinstance(num, int) or not 0 <= num < attachments:
                    return "placeholder points at no attachment"
            stack.extend((value, depth + 1) for value in item.values())
        elif isinstance(item, list):
            stack.extend((value, depth + 1) for value in item)
    return None


class GuardedServer(socketio.AsyncServer):
    """``socketio.AsyncServer`` whose clients' packets are checked first (see module)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # eio sid -> its websocket wrapper, while the websocket is open.
        self._websockets: weakref.WeakValueDictionary[str, Any] = weakref.WeakValueDictionary()
        eio = self.eio
        # The driver table is shared by every server (sio_manager swaps it the same way).
        eio._async = {**eio._async, "websocket": self._checked_websocket(eio._async["websocket"])}

    async def handle_request(self, scope: Any, receive: Any, send: Any) -> Any:
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        if scope.get("type") == "websocket" and _first(query, "transport") != "websocket":
            # python-engineio would open a polling session, accept the websocket and drop
            # it without a close frame: refuse the handshake instead (HTTP 403).
            await send({"type": "websocket.close", "code": POLICY_VIOLATION})
            return None
        socket = self.eio.sockets.get(_first(query, "sid"))
        if socket is not None and socket.closed:
            # Closed (ping timeout, the client's CLOSE, a refusal) but not yet swept:
            # python-engineio would answer a POST for it with a KeyError and a 500.
            self.eio.sockets.pop(socket.sid, None)
        return await super().handle_request(scope, receive, send)

    async def _handle_eio_connect(self, eio_sid: str, environ: dict[str, Any]) -> Any:
        socket = self.eio.sockets.get(eio_sid)
        if socket is not None:
            socket.handle_post_request = _CheckedPost(self, socket, socket.handle_post_request)
        return await super()._handle_eio_connect(eio_sid, environ)

    async def _handle_eio_message(self, eio_sid: str, data: Any) -> None:
        if eio_sid not in self._binary_packet:  # else: an attachment it is waiting for
            problem = self._problem(eio_sid, data)
            if problem is not None:
                await self.refuse(eio_sid, f"invalid Socket.IO packet: {problem}")
                return
        await super()._handle_eio_message(eio_sid, data)

    def _problem(self, eio_sid: str, data: Any) -> str | None:
        pkt, problem = socketio_problem(self.packet_class, data)
        if problem is not None or pkt.packet_type not in BINARY_TYPES:
            return problem
        # python-socketio raises for these (logged) instead of ignoring them.
        if not self.manager.sid_from_eio_sid(eio_sid, pkt.namespace or "/"):
            return "binary packet for a namespace not connected"
        return None

    async def refuse(self, eio_sid: str, reason: str) -> None:
        """End a session whose client sent what it should not: 1002 on a websocket."""
        log.info("Engine.IO session %s closed: %s", eio_sid, reason)
        ws = self._websockets.get(eio_sid)
        if ws is not None:
            await close_websocket(ws, reason)
        socket = self.eio.sockets.pop(eio_sid, None)
        if socket is not None:
            # No wait: a polling client that never polls again would hold it 45 s.
            await socket.close(wait=False, reason=self.reason.SERVER_DISCONNECT)

    def _checked_websocket(self, driver: Any) -> Any:
        websockets = self._websockets

        def make(handler: Any, server: Any) -> Any:
            ws = driver(handler, server)
            socket = handler.__self__
            ws.wait = _CheckedWait(ws, socket, websockets)
            ws.handler = _Closing(ws.handler, socket)
            return ws

        return make


def _first(query: dict[str, list[str]], name: str) -> str:
    # python-engineio's default transport is polling.
    return query.get(name, ["polling" if name == "transport" else ""])[0]


async def close_websocket(ws: Any, reason: str, code: int = PROTOCOL_ERROR) -> None:
    reason = reason.encode()[:120].decode(errors="ignore")  # a close reason: <= 123 bytes
    try:
        await ws.asgi_send({"type": "websocket.close", "code": code, "reason": reason})
    except (OSError, RuntimeError):  # closed already: the peer is gone either way
        log.debug("websocket of a refused session was closed already")


class _CheckedWait:
    """The websocket wrapper's ``wait``, checked:

    - an invalid Engine.IO packet closes with 1002;
    - an upgrade from polling must send its probe and its UPGRADE packet within
      ``UPGRADE_TIMEOUT`` (python-engineio waits for them forever);
    - once the client's CLOSE packet has been handled the transport ends with 1000
      (python-engineio would keep reading for ping_interval + ping_timeout).
    """

    __slots__ = ("closing", "socket", "upgrade_waits", "wait", "websockets", "ws")

    def __init__(self, ws: Any, socket: Any, websockets: Any) -> None:
        self.ws, self.socket, self.websockets, self.wait = ws, socket, websockets, ws.wait
        # An upgrade (the socket is connected over polling) reads the probe, then "5".
        self.upgrade_waits = 2 if socket.connected else 0
        self.closing = False

    async def __call__(self) -> Any:
        if self.closing:
            await close_websocket(self.ws, "session closed by the client", NORMAL_CLOSURE)
            raise OSError("session closed by the client")
        data = await self._next()
        problem = engineio_problem(data)
        if problem is None:
            self.closing = data == CLOSE_PACKET
            return data
        log.info("Engine.IO websocket closed: invalid packet: %s", problem)
        await close_websocket(self.ws, f"invalid Engine.IO packet: {problem}")
        raise OSError(problem)  # python-engineio ends the socket as for a lost connection

    async def _next(self) -> Any:
        if not self.upgrade_waits:
            self.websockets[self.socket.sid] = self.ws  # this websocket carries the session
            return await self.wait()
        self.upgrade_waits -= 1
        try:
            async with asyncio.timeout(UPGRADE_TIMEOUT):
                return await self.wait()
        except TimeoutError:
            await close_websocket(self.ws, "upgrade timed out")
            raise OSError("upgrade timed out") from None


class _Closing:
    """The websocket handler, then a close frame if python-engineio sent none: after a
    failed upgrade (probe or UPGRADE packet missing) it just returned, and uvicorn
    dropped the TCP connection without a close code. A send on a connection uvicorn
    closed for a protocol error ends it quietly, as for a peer that left."""

    __slots__ = ("handler", "socket")

    def __init__(self, handler: Any, socket: Any) -> None:
        self.handler, self.socket = handler, socket

    async def __call__(self, ws: Any) -> None:
        try:
            await self.handler(ws)
        except RuntimeError as exc:
            # The upgrade's 3probe answered on a connection uvicorn had closed for a
            # protocol error: the peer is gone (fastapi_app.guards.peer_closed).
            if not after_close(exc):
                raise
        finally:
            if self.socket.upgraded:
                await close_websocket(ws, "session ended", NORMAL_CLOSURE)
            else:  # back to polling: python-engineio answers polls with NOOP while upgrading
                self.socket.upgrading = False
                await close_websocket(ws, "upgrade failed: expected 2probe, then 5")


class _CheckedPost:
    """A socket's ``handle_post_request`` that checks the body before python-engineio."""

    __slots__ = ("original", "server", "socket")

    def __init__(self, server: GuardedServer, socket: Any, original: Any) -> None:
        self.server, self.socket, self.original = server, socket, original

    async def __call__(self, environ: dict[str, Any]) -> None:
        body, problem = await self._read(environ)
        if problem is not None:
            log.info("Engine.IO session %s: invalid payload: %s", self.socket.sid, problem)
            # Closed here, not by python-engineio: its close would wait for the next poll.
            await self.socket.close(wait=False, reason=self.server.reason.SERVER_DISCONNECT)
            if self.socket.sid in self.server.eio.sockets:  # else it answers 500, not 400
                raise eio_exceptions.EngineIOError(problem)  # 400, the session is dropped
            return
        environ["wsgi.input"] = _Body(body)
        try:
            await self.original(environ)
        except eio_exceptions.EngineIOError:
            # A packet after one that ended the session (its socket is closed): the POST
            # is answered 200 and the next request 400, as python-engineio cannot do
            # better once the session is gone (it would answer 500).
            if self.socket.sid in self.server.eio.sockets:
                raise

    async def _read(self, environ: dict[str, Any]) -> tuple[bytes, str | None]:
        # Read the whole body whatever it holds (at most the limit is kept): one left
        # unread stalls the client, still writing it, until its own timeout.
        limit = self.server.eio.max_http_buffer_size
        data = await environ["wsgi.input"].read(limit + 1)
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return b"", "bad Content-Length"
        if not 0 <= length <= limit or len(data) > limit:
            return b"", f"payload of {max(length, len(data))} bytes"
        return data[:length], payload_problem(data[:length])


class _Body:
    """The body already read, offered again as python-engineio's ``wsgi.input``."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    async def read(self, length: int | None = None) -> bytes:
        return self.data
