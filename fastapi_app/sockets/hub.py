"""The one emit path. The queues call ``emit_event`` / ``emit_audio`` and know nothing of
transports; the hub turns each call into frames for both of them.

- Queue-count events describe the shared queue: every client of both transports.
- ``audio_update`` for a job with a client id goes to that ``/ws`` client only (its voice
  and speed in the URL, plus its id so its disconnect can stop the stream).
- ``audio_update`` for a job without a client (legacy ``/push``) is broadcast to the
  Socket.IO clients, as the original did, with the original ``/get_tts_audio`` URL.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi_app.sockets.connections import ConnectionManager
from fastapi_app.sockets.socketio_compat import LegacySocketIO
from wire import frames, legacy, urls

log = logging.getLogger(__name__)


class Hub:
    def __init__(
        self,
        *,
        connections: ConnectionManager | None,
        legacy_io: LegacySocketIO,
        link_streams: bool,
        log_audio: bool,
    ) -> None:
        self.connections = connections
        self.legacy = legacy_io
        self._link_streams = link_streams
        self._log_audio = log_audio

    async def emit_event(
        self, name: str, data: dict[str, Any], client_id: str | None = None, *,
        seq: int | None = None,
    ) -> None:  # fmt: skip
        conns = self.connections
        if client_id is not None:
            if conns is not None:
                conns.send(client_id, frames.queue_event(name, data), seq)
            return
        if conns is not None:
            conns.broadcast(frames.queue_event(name, data))
        await self.legacy.emit(name, data)

    async def emit_audio(self, msg: str, client_id: str | None, *, seq: int | None = None) -> None:
        if self._log_audio:
            # The skeletal stage's stub (seed 003): the call is visible, nothing more.
            log.info("[STUB] emit_audio called - msg: %r, client_id: %s", msg[:80], client_id)
        if client_id is None:
            url = urls.legacy_audio_url(msg)
            await self.legacy.emit(legacy.AUDIO_UPDATE, legacy.audio_update(url))
            return
        conns = self.connections
        if conns is None:
            return
        client = conns.clients.get(client_id)
        voice = client.voice if client is not None else None
        speed = client.speed if client is not None else None
        url = urls.audio_url(
            msg,
            voice=voice,
            speed=speed,
            client_id=client_id if self._link_streams else None,
        )
        conns.send(client_id, frames.audio_update(url), seq)
