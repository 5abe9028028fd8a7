"""``create_app(settings)``: the only place that wires the Flask server together.

The app is built here; the core (queues, speech) starts with ``runtime(app).start()``
(``python -m flask_app`` does it), so importing or building an app starts nothing.
"""

from __future__ import annotations

from typing import Literal

from flask import Flask, url_for
from flask_socketio import SocketIO

from config import Settings
from flask_app import client_config
from flask_app.errors import install_error_handlers
from flask_app.routes import legacy, service
from flask_app.runtime import Runtime
from flask_app.sockets import register_socket_handlers

AsyncMode = Literal["threading", "gevent"]
ASYNC_MODES: tuple[AsyncMode, ...] = ("threading", "gevent")


def create_app(
    settings: Settings | None = None,
    *,
    async_mode: AsyncMode = "threading",
    message_queue: str | None = None,
) -> Flask:
    """The Flask app; its ``SocketIO`` is ``app.extensions["socketio"]``.

    ``message_queue`` (e.g. ``redis://host:6379/0``) goes to Flask-SocketIO so several
    server processes can emit to each other's clients. On a fleet (``redis_url``) it is
    the fleet's Redis, on the channel the FastAPI servers use (``socketio_channel``).
    """
    if async_mode not in ASYNC_MODES:
        raise ValueError(f"unsupported async mode {async_mode!r}; valid: threading, gevent")
    settings = settings if settings is not None else Settings()
    queue = _message_queue(settings, message_queue)
    # No built-in static route: ours refuses anything outside static/ with a JSON 404.
    app = Flask(__name__, static_folder=None)
    # "//" in a path would otherwise be a 308 redirect instead of a plain refusal.
    app.url_map.merge_slashes = False
    socketio = SocketIO(
        app,
        async_mode=async_mode,
        **queue,
        cors_allowed_origins=_origins(settings.allowed_origins),
        ping_interval=settings.sio_ping_interval,
        ping_timeout=settings.sio_ping_timeout,
        max_http_buffer_size=settings.ws_max_frame_bytes,
        logger=False,
        engineio_logger=False,
    )
    app.register_blueprint(legacy)
    app.register_blueprint(service)
    app.register_blueprint(client_config.create_blueprint(settings))
    install_error_handlers(app)
    with app.test_request_context():
        audio_path = url_for("legacy.get_tts_audio")
    rt = Runtime(settings, socketio, async_mode, audio_path)
    app.extensions["genie"] = rt
    register_socket_handlers(socketio, rt)
    return app


def runtime(app: Flask) -> Runtime:
    return app.extensions["genie"]


def socketio_of(app: Flask) -> SocketIO:
    return app.extensions["socketio"]


def _message_queue(settings: Settings, given: str | None) -> dict[str, str | None]:
    """Flask-SocketIO's queue options. On a fleet: its Redis and the channel every server
    shares (a second URL would split the pages). Else ``given`` on Flask-SocketIO's own
    default channel, as the legacy set-up had it."""
    if settings.redis_url is None:
        return {"message_queue": given}
    if given not in (None, settings.redis_url):
        from fleet.link import redact

        raise ValueError(
            f"--message-queue {redact(given)} differs from GENIE_REDIS_URL "
            f"{redact(settings.redis_url)}: on a fleet, Socket.IO shares the fleet's Redis "
            "(leave --message-queue out)"
        )
    return {"message_queue": settings.redis_url, "channel": settings.socketio_channel}


def _origins(allowed: list[str]) -> str | list[str] | None:
    """Settings' list -> Flask-SocketIO: [] same origin only, ["*"] any, else the list."""
    if not allowed:
        return None
    if "*" in allowed:
        return "*"
    return list(allowed)
