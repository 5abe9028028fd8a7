"""Everything a running Flask server holds: the bridge to the core, the emitter, the clock.

``start()`` order: the handoff's drainer (so the core's first emits have somewhere to
go), the core on its loop thread, the clock. ``stop()`` unwinds it: the clock stops,
every Socket.IO client is told goodbye, the core closes on its loop (consumers
cancelled, store closed, speech engine last), then the drainer finishes what was posted.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from flask_socketio import SocketIO

from config import Settings
from flask_app.bridge import CoreBridge
from flask_app.core import Core
from flask_app.emitter import Clock, SocketEmitter
from flask_app.handoff import make_handoff

log = logging.getLogger(__name__)

R = TypeVar("R")
# Longest a request waits for the core (a 5,000-character text takes well under it).
CALL_TIMEOUT = 60.0
# Longest a shutdown waits for the Socket.IO clients' close packets to go out.
GOODBYE_TIMEOUT = 2.0


class Runtime:
    def __init__(
        self, settings: Settings, socketio: SocketIO, async_mode: str, audio_path: str
    ) -> None:
        self.settings = settings
        self.socketio = socketio
        self.async_mode = async_mode
        self.handoff = make_handoff(async_mode)
        self.bridge: CoreBridge[Core] = CoreBridge(self.handoff, call_timeout=CALL_TIMEOUT)
        self.emitter = SocketEmitter(
            socketio, self.handoff, audio_path, fleet=settings.redis_url is not None
        )
        self.clock = Clock(socketio, settings.clock_interval)
        self._drainer: Any = None
        self._lock = threading.Lock()  # never held across a switch: gevent-safe too
        self.connected = 0

    def start(self) -> None:
        self._drainer = self.socketio.start_background_task(self.handoff.drain)
        try:
            self.bridge.start(lambda stack: Core.open(self.settings, self.emitter, stack))
        except BaseException:
            self.handoff.close()
            raise
        # The clock only reads a stop flag; it is never joined (it may be mid-sleep).
        self.socketio.start_background_task(self.clock.run)

    def call(self, fn: Callable[..., R], *args: Any) -> R:
        """``fn(core, *args)`` on the core's loop; e.g. ``rt.call(Core.push, raw)``."""
        return self.bridge.call(fn, self.bridge.core, *args)

    def stop(self, timeout: float = 30.0) -> None:
        self.clock.stop()
        self._say_goodbye(timeout)
        self.bridge.stop(timeout)
        self.handoff.close()
        if self._drainer is not None:
            self._drainer.join(timeout)
        self.socketio.server.shutdown()

    def _say_goodbye(self, timeout: float) -> None:
        """Disconnect every Socket.IO client (a close packet, not a dropped connection).

        In a task, with a time limit: python-engineio's ``Socket.close()`` joins the
        socket's send queue, and when the client answers the close packet quickly its
        handler puts one more item in that queue after the writer has gone, so the join
        can wait forever (python-engineio 4.x, both async modes).
        """

        def disconnect_all() -> None:
            try:
                self.socketio.server.eio.disconnect()
            except Exception:
                log.exception("disconnecting Socket.IO clients failed")

        task = self.socketio.start_background_task(disconnect_all)
        task.join(min(timeout, GOODBYE_TIMEOUT))

    def client_connected(self) -> None:
        with self._lock:
            self.connected += 1

    def client_disconnected(self) -> None:
        with self._lock:
            self.connected = max(0, self.connected - 1)
