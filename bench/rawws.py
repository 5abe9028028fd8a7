"""A lean WebSocket client for load generation: one asyncio Protocol per connection.

A python-socketio AsyncClient (or even a ``websockets`` connection with its reader task)
saturates the load generator's core long before the server's, so the benches speak the
protocols directly: RFC 6455 framing here, plus the two dialects the server offers:

- ``native``: ``/ws`` JSON frames; answers ``{"type":"ping"}`` with a pong.
- ``socketio``: Engine.IO v4 / Socket.IO v5 text protocol over ``/socket.io/``:
  ``0{...}`` open -> send ``40`` -> ``40{"sid":...}`` connected; ``2`` ping -> ``3`` pong;
  events arrive as ``42["name",{...}]``.

No task per connection: frames are parsed in ``data_received`` and handed to a callback
with the arrival time, so ten thousand idle clients cost the generator almost nothing.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
from collections.abc import Callable
from typing import Any

OnEvent = Callable[["WsClient", str, dict[str, Any], float], None]

NATIVE_PATH = "/ws"
SOCKETIO_PATH = "/socket.io/?EIO=4&transport=websocket"


def _frame(opcode: int, payload: bytes) -> bytes:
    """A masked client frame (clients must mask; the key need not be secret here)."""
    mask = os.urandom(4)
    n = len(payload)
    if n < 126:
        header = bytes((0x80 | opcode, 0x80 | n))
    elif n < 65536:
        header = bytes((0x80 | opcode, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        header = bytes((0x80 | opcode, 0x80 | 127)) + n.to_bytes(8, "big")
    key = int.from_bytes((mask * (n // 4 + 1))[:n], "big")
    masked = (int.from_bytes(payload, "big") ^ key).to_bytes(n, "big") if n else b""
    return header + mask + masked


class WsClient(asyncio.Protocol):
    def __init__(self, host: str, path: str, dialect: str, on_event: OnEvent) -> None:
        self.host = host
        self.path = path
        self.dialect = dialect
        self.on_event = on_event
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.upgraded = False
        self.cookies: dict[str, str] = {}  # from the handshake's Set-Cookie (a proxy's)
        loop = asyncio.get_running_loop()
        self.ready: asyncio.Future[dict[str, Any]] = loop.create_future()
        self.closed: asyncio.Future[int | None] = loop.create_future()
        self.close_code: int | None = None
        self.last_seq = 0

    # --- asyncio.Protocol -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET {self.path} HTTP/1.1\r\nHost: {self.host}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        )
        transport.write(request.encode())

    def data_received(self, data: bytes) -> None:
        now = time.time()
        buf = self.buffer
        buf += data
        if not self.upgraded and not self._read_handshake():
            return
        while len(buf) >= 2:
            length = buf[1] & 0x7F
            start = 2
            if length == 126:
                if len(buf) < 4:
                    return
                length, start = int.from_bytes(buf[2:4], "big"), 4
            elif length == 127:
                if len(buf) < 10:
                    return
                length, start = int.from_bytes(buf[2:10], "big"), 10
            end = start + length
            if len(buf) < end:
                return
            opcode = buf[0] & 0x0F
            payload = bytes(buf[start:end])
            del buf[:end]
            self._on_frame(opcode, payload, now)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"closed before ready: {exc!r}"))
        if not self.closed.done():
            self.closed.set_result(self.close_code)

    # --- frames -----------------------------------------------------------------------

    def _read_handshake(self) -> bool:
        buf = self.buffer
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            return False
        status = bytes(buf[: buf.find(b"\r\n")])
        if b" 101 " not in status:
            self._fail(f"handshake refused: {status.decode(errors='replace')}")
            return False
        for line in bytes(buf[:end]).decode(errors="replace").split("\r\n")[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "set-cookie":
                key, _, rest = value.strip().partition("=")
                self.cookies[key] = rest.split(";", 1)[0]
        del buf[: end + 4]
        self.upgraded = True
        return True

    def _on_frame(self, opcode: int, payload: bytes, now: float) -> None:
        if opcode == 0x1:
            self._on_text(payload.decode(), now)
        elif opcode == 0x9:
            self._write(_frame(0xA, payload))
        elif opcode == 0x8:
            self.close_code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None
            self._write(_frame(0x8, payload[:2]))
            if self.transport is not None:
                self.transport.close()

    def _on_text(self, text: str, now: float) -> None:
        if self.dialect == "native":
            frame = json.loads(text)
            kind = frame.get("type")
            seq = frame.get("seq")
            if seq is not None:
                self.last_seq = max(self.last_seq, seq)
            if kind == "ping":
                self.send_text('{"type":"pong"}')
            elif kind == "connection_established" and not self.ready.done():
                self.ready.set_result(frame)
            self.on_event(self, kind, frame, now)
            return
        # Engine.IO v4 / Socket.IO v5
        if text.startswith("42"):
            name, *args = json.loads(text[2:])
            self.on_event(self, name, args[0] if args and isinstance(args[0], dict) else {}, now)
        elif text == "2":
            self.send_text("3")
        elif text.startswith("0{"):
            self.send_text("40")
        elif text.startswith("40") and not self.ready.done():
            self.ready.set_result(json.loads(text[2:]) if len(text) > 2 else {})
        elif text.startswith(("44", "41", "1")) and not self.ready.done():
            self._fail(f"refused: {text[:200]}")

    # --- sending ----------------------------------------------------------------------

    def send_text(self, text: str) -> None:
        self._write(_frame(0x1, text.encode()))

    def send_json(self, payload: dict[str, Any]) -> None:
        self.send_text(json.dumps(payload, separators=(",", ":")))

    def close(self, code: int = 1000) -> None:
        self._write(_frame(0x8, code.to_bytes(2, "big")))

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def _fail(self, message: str) -> None:
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(message))
        if self.transport is not None:
            self.transport.close()


async def connect(
    port: int, dialect: str, on_event: OnEvent, *, path: str | None = None, within: float = 30.0
) -> WsClient:
    """Open one connection to 127.0.0.1:``port`` and wait until the server greeted it."""
    loop = asyncio.get_running_loop()
    path = path or (NATIVE_PATH if dialect == "native" else SOCKETIO_PATH)
    host = f"127.0.0.1:{port}"
    _, client = await asyncio.wait_for(
        loop.create_connection(lambda: WsClient(host, path, dialect, on_event), "127.0.0.1", port),
        within,
    )
    await asyncio.wait_for(asyncio.shield(client.ready), within)
    return client


async def connect_many(
    port: int,
    dialect: str,
    count: int,
    on_event: OnEvent,
    *,
    parallel: int = 100,
    within: float = 120.0,
) -> list[WsClient]:
    """Open ``count`` connections, ``parallel`` handshakes at a time, all within ``within`` s."""
    gate = asyncio.Semaphore(parallel)

    async def one() -> WsClient:
        async with gate:
            return await connect(port, dialect, on_event)

    return await asyncio.wait_for(asyncio.gather(*(one() for _ in range(count))), within)


async def close_all(clients: list[WsClient], within: float = 10.0) -> None:
    for client in clients:
        client.close()
    pending = [c.closed for c in clients if not c.closed.done()]
    if pending:
        _, still_open = await asyncio.wait(pending, timeout=within)
        for client in clients:
            if not client.closed.done():
                client.abort()
        if still_open:
            await asyncio.wait(still_open, timeout=2)
