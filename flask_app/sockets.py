"""Socket.IO handlers: thin. The legacy page only listens; the server only broadcasts."""

from __future__ import annotations

from typing import Any

from flask_socketio import SocketIO

from flask_app.runtime import Runtime


def register_socket_handlers(socketio: SocketIO, runtime: Runtime) -> None:
    @socketio.on("connect")
    def on_connect(auth: Any = None) -> None:
        runtime.client_connected()

    @socketio.on("disconnect")
    def on_disconnect(*reason: Any) -> None:  # Flask-SocketIO >= 5.5 passes a reason
        runtime.client_disconnected()
