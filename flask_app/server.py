"""Serve an app with ``socketio.run`` (never ``flask run``, Flask-SocketIO#817), in
either async mode, with Nagle's algorithm off and a graceful stop on SIGINT/SIGTERM.

- threading: Werkzeug's threaded server with simple-websocket (how Genie ran). Its
  handler writes the status line, headers and body in separate ``send`` calls; with
  Nagle on, a small response can wait for the client's delayed ACK (~40 ms), so every
  accepted socket gets ``TCP_NODELAY``.
- gevent: gevent's pywsgi with gevent-websocket (how most production deployments run).
  Accepted sockets get ``TCP_NODELAY`` too, so the two modes compare fairly.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
from collections.abc import Callable
from typing import Any

from flask import Flask
from werkzeug.serving import WSGIRequestHandler

from flask_app.app import runtime, socketio_of
from wire import log_redaction

log = logging.getLogger(__name__)

# A 5,000-character question percent-encoded in the URL (up to 12 bytes per character)
# must reach the app and get its 413, not a 414 from the server.
MAX_REQUEST_LINE = 64 * 1024


def nodelay(sock: Any) -> None:
    # Not a TCP socket (a UNIX socket, a test double): nothing to switch off.
    with contextlib.suppress(OSError, AttributeError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class NoDelayRequestHandler(WSGIRequestHandler):
    """Werkzeug's handler with ``TCP_NODELAY`` on the accepted socket."""

    def setup(self) -> None:
        super().setup()
        nodelay(self.connection)


def nodelay_spawn(fn: Callable[..., Any], *args: Any) -> Any:
    """A gevent server ``spawn``: ``TCP_NODELAY`` on the client socket, then a greenlet.

    gevent calls it as ``spawn(fn, *args)`` with the client socket among the arguments
    (directly or in a tuple, depending on the gevent version), so look for it.
    """
    import gevent

    for arg in args:
        for item in arg if isinstance(arg, tuple) else (arg,):
            if hasattr(item, "setsockopt"):
                nodelay(item)
    return gevent.spawn(fn, *args)


def serve(app: Flask, host: str, port: int) -> None:
    """Start the core, serve until SIGINT/SIGTERM, then stop everything in order."""
    log_redaction.install()  # Werkzeug's request lines carry ?token= like uvicorn's
    rt = runtime(app)
    rt.start()
    try:
        if rt.async_mode == "gevent":
            _serve_gevent(app, host, port)
        else:
            _serve_threading(app, host, port)
    finally:
        log.info("stopping: closing Socket.IO clients and the core")
        rt.stop()


def _serve_threading(app: Flask, host: str, port: int) -> None:
    def interrupt(signum: int, frame: object) -> None:
        # Werkzeug's serve_forever ends quietly on KeyboardInterrupt (Ctrl-C does the same).
        raise KeyboardInterrupt

    # SIGINT too: a process started in the background inherits it ignored.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, interrupt)
    socketio_of(app).run(
        app,
        host=host,
        port=port,
        use_reloader=False,
        log_output=False,
        allow_unsafe_werkzeug=True,  # the legacy baseline is Werkzeug, on purpose
        request_handler=NoDelayRequestHandler,
    )


def _serve_gevent(app: Flask, host: str, port: int) -> None:
    import gevent
    from gevent import pywsgi

    socketio = socketio_of(app)
    pywsgi.MAX_REQUEST_LINE = max(pywsgi.MAX_REQUEST_LINE, MAX_REQUEST_LINE)

    def stop() -> None:
        server = getattr(socketio, "wsgi_server", None)
        if server is not None:
            server.stop(timeout=1.0)

    # Run as greenlets on the hub: serve_forever returns once the server has stopped.
    handlers = [gevent.signal_handler(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)]
    try:
        socketio.run(app, host=host, port=port, use_reloader=False, log_output=False,
                     spawn=nodelay_spawn)  # fmt: skip
    finally:
        for handler in handlers:
            handler.cancel()
