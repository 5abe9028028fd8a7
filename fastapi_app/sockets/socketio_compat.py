"""Socket.IO for the unmodified Genie page: a python-socketio ``AsyncServer`` that wraps
the FastAPI app (``socketio.ASGIApp(sio, other_asgi_app=api)``, never mounted under a
prefix) and the legacy half of the one emit path.

Broadcasts go through :class:`~fastapi_app.sockets.sio_manager.BroadcastManager`: each event is
encoded once and queued on every Engine.IO socket without an asyncio Task per recipient.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import socketio
from engineio import packet as eio_packet

from config import Settings
from fastapi_app.auth.access import Access
from fastapi_app.auth.security import AuthError, token_from_sio
from fastapi_app.guards.sio_guard import GuardedServer
from fastapi_app.metrics import AppMetrics
from fastapi_app.sockets.sio_manager import BroadcastManager, RedisBroadcastManager
from wire import legacy

log = logging.getLogger(__name__)


class LegacySocketIO:
    def __init__(
        self,
        settings: Settings,
        access: Access,
        metrics: AppMetrics | None,
        *,
        direct: bool = True,
    ) -> None:
        self._access = access
        self._metrics = metrics
        self._close_timeout = settings.ws_close_timeout
        manager: BroadcastManager
        if settings.redis_url:
            manager = RedisBroadcastManager(
                settings.redis_url, settings.socketio_channel, direct=direct
            )
        else:
            manager = BroadcastManager(direct=direct)
        self.sio = GuardedServer(  # checks client packets first: fastapi_app.guards.sio_guard
            async_mode="asgi",
            client_manager=manager,
            # An OriginPolicy is a valid engineio origin hook; None is engineio's own
            # default (same origin only).
            cors_allowed_origins=access.origins,
            ping_interval=settings.sio_ping_interval,
            ping_timeout=settings.sio_ping_timeout,
            max_http_buffer_size=settings.ws_max_frame_bytes,
            logger=False,
            engineio_logger=False,
        )
        self.sio.on("connect", self._on_connect)
        self.sio.on("disconnect", self._on_disconnect)
        self.connected = 0

    async def emit(self, event: str, data: dict[str, Any], *, fleet: bool = False) -> None:
        """Broadcast to every legacy client of this process (the original emitted
        everything to all). ``fleet``: to every process's clients as well, through the
        Socket.IO message queue (queue events need not: the fleet's bus brings them to
        every process, which emits them here)."""
        if fleet:
            await self.sio.emit(event, data)
        elif self.connected:
            await self.sio.emit(event, data, ignore_queue=True)

    async def run_clock(self, interval: float) -> None:
        """``time_update`` every ``interval`` seconds, as the original's clock thread."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.emit(legacy.TIME_UPDATE, legacy.time_update())
            except Exception:
                log.exception("time_update failed; the clock keeps going")

    async def close(self) -> None:
        """Disconnect every client (shutdown); long-polls return at once."""
        if self.sio.eio.sockets:
            # A polling client that never polls again never reads its CLOSE packet, and
            # Engine.IO waits for that read until its ping timeout (45 s): bound the wait.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._close_timeout):
                    await self.sio.eio.disconnect()
        await self.sio.shutdown()

    async def _on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        if self._access.auth:
            try:
                self._access.verifier.verify(token_from_sio(environ, auth))
            except AuthError as exc:
                if self._metrics is not None:
                    self._metrics.auth_failures.labels("socketio").inc()
                # The message reaches the client's connect_error handler.
                raise socketio.exceptions.ConnectionRefusedError(exc.code) from None
        self.connected += 1

    async def _on_disconnect(self, sid: str, reason: Any = None) -> None:
        self.connected = max(0, self.connected - 1)
        if reason == self.sio.reason.CLIENT_DISCONNECT:
            self._answer_pending_poll(sid)

    def _answer_pending_poll(self, sid: str) -> None:
        """A polling client that says goodbye still has a long-poll GET open, which
        python-engineio would hold until its timeout (and a python-engineio client waits
        for it, ~30 s). A NOOP answers it now; the client's read loop then ends."""
        eio_sid = self.sio.manager.eio_sid_from_sid(sid, "/")
        socket = self.sio.eio.sockets.get(eio_sid) if eio_sid else None
        if socket is not None and not socket.upgraded and not socket.closed:
            socket.queue.put_nowait(eio_packet.Packet(eio_packet.NOOP))
