"""The core's ``emit_audio`` / ``emit_event`` for Flask-SocketIO, and the 1 Hz clock.

The core calls these on its loop thread; they only *post* the emit to the handoff, so
the loop never blocks on a socket (or on a Redis message queue) and the emits reach
Flask-SocketIO from its own side, in the order the core made them.

``audio_update`` is built as the original server did (seed 003):
``url_for('get_tts_audio') + "?tts_text=" + quoted msg``, broadcast to every page.

On a fleet every process hears the queues' events on the fleet's own bus, so they go to
this server's pages only (``ignore_queue``): through the Socket.IO message queue as well,
each page would get one copy per server. ``broadcast`` (the delete gong) has no such
bus and goes through the message queue to every page of every server.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from flask_socketio import SocketIO

from flask_app.handoff import Handoff
from wire import legacy, urls

log = logging.getLogger(__name__)


class SocketEmitter:
    def __init__(
        self, socketio: SocketIO, handoff: Handoff, audio_path: str, *, fleet: bool = False
    ) -> None:
        self._socketio = socketio
        self._handoff = handoff
        self._local = fleet
        # url_for('legacy.get_tts_audio'), resolved once at app creation (it honours
        # APPLICATION_ROOT; a URL cannot be built outside a request without SERVER_NAME).
        self._audio_path = audio_path

    def audio_url(self, msg: str) -> str:
        # The quoting is wire.urls' (percent-encoded, so '&' or '#' cannot break it).
        _, _, query = urls.legacy_audio_url(msg).partition("?")
        return f"{self._audio_path}?{query}"

    # ``seq``: the fleet's number for a per-client frame; legacy pages have no numbers.
    async def emit_audio(self, msg: str, client_id: str | None, *, seq: int | None = None) -> None:
        self.emit(legacy.AUDIO_UPDATE, legacy.audio_update(self.audio_url(msg)), client_id)

    async def emit_event(
        self, name: str, data: dict[str, Any], client_id: str | None = None, *,
        seq: int | None = None,
    ) -> None:  # fmt: skip
        self.emit(name, data, client_id)

    def emit(self, name: str, data: dict[str, Any], to: str | None = None) -> None:
        """Broadcast (``to`` None: queue counts and legacy audio) or send to one sid."""
        self._handoff.post(self._socketio.emit, name, data, to=to, ignore_queue=self._local)

    def broadcast(self, name: str, data: dict[str, Any]) -> None:
        """To every page of every server (through the message queue, when there is one)."""
        self._handoff.post(self._socketio.emit, name, data)


class Clock:
    """``time_update {date}`` every ``interval`` seconds, as the original's clock thread."""

    def __init__(self, socketio: SocketIO, interval: float) -> None:
        self._socketio = socketio
        self._interval = interval
        self._stopped = threading.Event()  # read only; never waited on (gevent-safe)

    def run(self) -> None:
        while not self._stopped.is_set():
            self._socketio.sleep(self._interval)
            if self._stopped.is_set():
                return
            try:
                # Each server ticks its own pages: through a message queue every page
                # would get one tick per server.
                self._socketio.emit(legacy.TIME_UPDATE, legacy.time_update(), ignore_queue=True)
            except Exception:
                log.exception("time_update failed; the clock keeps going")

    def stop(self) -> None:
        self._stopped.set()
