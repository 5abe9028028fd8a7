"""``python -m flask_app [--host H] [--port P] [--async-mode threading|gevent]
[--redis-url URL] [--message-queue URL] [--log-level L] [--any-setting ...]``

Flask's own defaults (127.0.0.1:7999, threading) are the flags' defaults, layered over
``config.Settings``: every other Settings field is a ``GENIE_*`` variable or a
``--kebab-case`` flag, as for ``python -m fastapi_app``. ``GENIE_HOST`` is honoured;
``GENIE_PORT`` is not (it is the FastAPI server's port).

``--redis-url`` (``GENIE_REDIS_URL``) joins the fleet: the job queue, history and counts
on Redis, shared with the FastAPI servers, and Flask-SocketIO's message queue on the same
Redis and channel as theirs. ``--message-queue`` alone is the legacy set-up: Socket.IO
broadcasts shared, each process with its own queue.

gevent mode does NOT monkey-patch threads: the shared core runs on a real OS thread
(its asyncio loop, the espeak worker) and talks to the hub through ``flask_app.handoff``.
Only with a message queue are sockets, DNS and SSL patched, so the Redis client's
listener (a greenlet) does not block the hub.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7999


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(
        prog="python -m flask_app",
        description="The legacy Genie server (Flask + Flask-SocketIO).",
        epilog="Any other config.Settings field: --kebab-case flag or GENIE_* variable.",
    )
    parser.add_argument("--host", help=f"address to bind (default: GENIE_HOST or {DEFAULT_HOST})")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="port (default: %(default)s)"
    )
    parser.add_argument("--async-mode", choices=("threading", "gevent"), default="threading",
                        help="Flask-SocketIO async mode (default: %(default)s)")  # fmt: skip
    parser.add_argument("--message-queue", help="e.g. redis://127.0.0.1:6379/0 (multi-process)")
    parser.add_argument("--log-level", help="logging level (default: GENIE_LOG_LEVEL or info)")
    return parser.parse_known_args(argv)


def redis_url_hint(rest: list[str]) -> str | None:
    """``GENIE_REDIS_URL`` as Settings will read it, found without importing Settings:
    gevent must patch before anything imports ``ssl`` (pydantic-settings does)."""
    peek = argparse.ArgumentParser(add_help=False)
    peek.add_argument("--redis-url")
    flag = peek.parse_known_args(rest)[0].redis_url
    if flag is not None:
        return flag or None
    if "GENIE_REDIS_URL" in os.environ:
        return os.environ["GENIE_REDIS_URL"] or None
    from dotenv import dotenv_values  # pydantic-settings' own .env reader; no ssl

    return dotenv_values(".env").get("GENIE_REDIS_URL") or None


def _patch_for_gevent() -> None:
    from gevent import monkey

    monkey.patch_socket()
    monkey.patch_dns()
    monkey.patch_ssl()


def main(argv: list[str] | None = None) -> None:
    args, rest = parse_args(sys.argv[1:] if argv is None else argv)
    patched = args.async_mode == "gevent" and bool(args.message_queue or redis_url_hint(rest))
    if patched:
        _patch_for_gevent()

    # Imported only now: after gevent is set up.
    from config import Settings
    from flask_app.app import create_app
    from flask_app.server import serve

    settings = Settings(_cli_parse_args=rest, _cli_prog_name="python -m flask_app")
    level = (args.log_level or settings.log_level).upper()
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    # Werkzeug sets its own logger to INFO unless it has a level: give it ours.
    logging.getLogger("werkzeug").setLevel(level)
    if args.async_mode == "gevent" and settings.redis_url and not patched:
        sys.exit("python -m flask_app: set GENIE_REDIS_URL in the environment or as "
                 "--redis-url (gevent must know it before start-up)")  # fmt: skip
    from fleet import FleetConfigError

    try:
        app = create_app(settings, async_mode=args.async_mode, message_queue=args.message_queue)
    except ValueError as exc:
        sys.exit(f"python -m flask_app: {exc}")
    host = args.host or settings.host or DEFAULT_HOST
    logging.getLogger("flask_app").info(
        "Genie Flask server on http://%s:%d (%s)", host, args.port, args.async_mode
    )
    try:
        serve(app, host, args.port)
    except FleetConfigError as exc:  # Redis unusable, or peers that disagree
        sys.exit(f"python -m flask_app: {exc}")


if __name__ == "__main__":
    main()
