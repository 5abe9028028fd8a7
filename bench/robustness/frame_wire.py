"""Raw wire clients for generated frames: RFC 6455 frames as they are, Engine.IO polls.

The ``websockets`` client refuses to write what a hostile peer writes (invalid UTF-8 in a
text frame, a continuation with no start, a control frame inside a fragmented message,
reserved opcodes or RSV bits, unmasked frames, lying lengths), so :class:`RawSocket`
builds every frame byte by byte from a :class:`Frame`. It reads the server's frames in
a task of its own: text and binary messages go to a queue, pings are answered, and a
close frame is echoed and remembered (``close_code``), so a connection's fate is known.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
from dataclasses import dataclass, field

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
NO_CLOSE_FRAME = 1006  # RFC 6455: the connection ended without a close frame


@dataclass(frozen=True, slots=True)
class Frame:
    """One WebSocket frame as it goes on the wire, valid or not."""

    opcode: int
    payload: bytes = b""
    fin: bool = True
    rsv: int = 0  # RSV1..3 as a 3-bit number; nonzero without an extension is invalid
    masked: bool = True  # a client must mask
    length: int | None = None  # the declared length, when it lies (None: the real one)

    def encode(self) -> bytes:
        first = (0x80 if self.fin else 0) | (self.rsv & 0x7) << 4 | (self.opcode & 0xF)
        n = len(self.payload) if self.length is None else self.length
        mask_bit = 0x80 if self.masked else 0
        if n < 126:
            header = bytes((first, mask_bit | n))
        elif n < 65536:
            header = bytes((first, mask_bit | 126)) + n.to_bytes(2, "big")
        else:
            header = bytes((first, mask_bit | 127)) + n.to_bytes(8, "big")
        if not self.masked:
            return header + self.payload
        key = os.urandom(4)
        return header + key + _mask(self.payload, key)


def _mask(payload: bytes, key: bytes) -> bytes:
    n = len(payload)
    if not n:
        return b""
    stream = int.from_bytes((key * (n // 4 + 1))[:n], "big")
    return (int.from_bytes(payload, "big") ^ stream).to_bytes(n, "big")


def text(payload: str | bytes) -> Frame:
    return Frame(OP_TEXT, payload.encode() if isinstance(payload, str) else payload)


def close_frame(code: int = 1000, reason: bytes = b"") -> Frame:
    return Frame(OP_CLOSE, code.to_bytes(2, "big") + reason)


class HandshakeRefused(ConnectionError):
    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(f"handshake answered {status}: {body[:200]!r}")
        self.status, self.body = status, body


@dataclass
class RawSocket:
    """A connected WebSocket; ``messages`` holds ("text"|"binary", data) in order."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    messages: asyncio.Queue[tuple[str, str | bytes]] = field(default_factory=asyncio.Queue)
    close_code: int | None = None  # the server's close code once it closed
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    received: int = 0
    _task: asyncio.Task[None] | None = None

    def start(self) -> RawSocket:
        self._task = asyncio.create_task(self._read_all())
        return self

    def send(self, frame: Frame) -> bool:
        """Write one frame; False once the connection is gone (nothing written)."""
        if self.closed.is_set() or self.writer.is_closing():
            return False
        self.writer.write(frame.encode())
        return True

    async def drain(self) -> None:
        with contextlib.suppress(ConnectionError):
            await self.writer.drain()

    async def next_message(self, within: float) -> tuple[str, str | bytes] | None:
        """The next message, or None when the server closed (or nothing came in time)."""
        if self.messages.empty() and self.closed.is_set():
            return None
        getter = asyncio.ensure_future(self.messages.get())
        closer = asyncio.ensure_future(self.closed.wait())
        try:
            await asyncio.wait({getter, closer}, timeout=within, return_when="FIRST_COMPLETED")
        finally:
            closer.cancel()
            if not getter.done():
                getter.cancel()
        return getter.result() if getter.done() and not getter.cancelled() else None

    async def aclose(self) -> None:
        """Drop the TCP connection (after a polite close frame, if it is still open)."""
        self.send(close_frame(1000))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.closed.wait(), 2.0)
        self.writer.close()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _read_all(self) -> None:
        fragments: list[bytes] = []
        kind = "text"
        try:
            while True:
                opcode, fin, payload = await _read_frame(self.reader)
                self.received += 1
                if opcode == OP_CLOSE:
                    code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
                    self.close_code = code
                    self.send(close_frame(code if code in _ECHOABLE else 1000))
                    return
                if opcode == OP_PING:
                    self.send(Frame(OP_PONG, payload))
                    continue
                if opcode in (OP_TEXT, OP_BINARY):
                    kind, fragments = ("text" if opcode == OP_TEXT else "binary"), []
                if opcode in (OP_TEXT, OP_BINARY, OP_CONT):
                    fragments.append(payload)
                    if fin:
                        data = b"".join(fragments)
                        message = data.decode(errors="replace") if kind == "text" else data
                        self.messages.put_nowait((kind, message))
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            if self.close_code is None:
                self.close_code = NO_CLOSE_FRAME
        finally:
            self.closed.set()
            self.writer.close()


_ECHOABLE = (
    frozenset(range(1000, 1004)) | frozenset(range(1007, 1015)) | frozenset(range(3000, 5000))
)


async def _read_frame(reader: asyncio.StreamReader) -> tuple[int, bool, bytes]:
    head = await reader.readexactly(2)
    n = head[1] & 0x7F
    if n == 126:
        n = int.from_bytes(await reader.readexactly(2), "big")
    elif n == 127:
        n = int.from_bytes(await reader.readexactly(8), "big")
    if head[1] & 0x80:  # a server must not mask, but read it right if it does
        key = await reader.readexactly(4)
        return head[0] & 0x0F, bool(head[0] & 0x80), _mask(await reader.readexactly(n), key)
    return head[0] & 0x0F, bool(head[0] & 0x80), await reader.readexactly(n)


async def connect(port: int, path: str, within: float = 10.0) -> RawSocket:
    """Open a WebSocket to 127.0.0.1:``port`` at ``path`` (query included, sent as is).

    HandshakeRefused when the server answers anything but 101 (its status and body).
    """
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), within)
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    writer.write(request.encode("latin-1"))
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), within)
    except (asyncio.IncompleteReadError, ConnectionError) as exc:
        writer.close()
        raise HandshakeRefused(0, str(exc).encode()) from None
    status = int(head.split(b" ", 2)[1])
    if status != 101:
        with contextlib.suppress(Exception):
            head += await asyncio.wait_for(reader.read(2000), 1.0)
        writer.close()
        raise HandshakeRefused(status, head)
    return RawSocket(reader, writer).start()
