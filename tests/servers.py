"""Real servers for wire tests, on 127.0.0.1 only.

- :class:`ThreadServer`: ``create_app(settings)`` under uvicorn (the same
  ``GenieServer`` and config as ``python -m fastapi_app``) in a thread with its own
  event loop, on a socket bound to a free port before start (no port race). Usable as
  ``with`` or ``async with``; ``stop()`` runs the graceful shutdown.
- Servers as subprocesses (``python -m fastapi_app`` / ``flask_app``, for what only a
  process can show: SIGTERM, a restart) are in ``tests/flask_app/launch.py``.

Both expose ``url`` (http://127.0.0.1:PORT), ``ws_url`` and ``port`` (LoopbackUrls).
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from pathlib import Path
from typing import Any

import anyio

from config import Settings

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 20.0


def server_settings(**overrides: Any) -> Settings:
    """Settings for a test server: no .env file, quiet logs, loopback, free port."""
    base: dict[str, Any] = {"host": "127.0.0.1", "port": 0, "log_level": "warning"}
    return Settings(_env_file=None, **{**base, **overrides})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LoopbackUrls:
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"


class ThreadServer(LoopbackUrls):
    def __init__(self, settings: Settings | None = None, **overrides: Any) -> None:
        from fastapi_app.main import create_app
        from fastapi_app.server import GenieServer, uvicorn_config

        self.settings = settings if settings is not None else server_settings(**overrides)
        self.app = create_app(self.settings)
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self.port = int(self._sock.getsockname()[1])
        config = uvicorn_config(self.app, self.settings, port=self.port, log_config=None)
        self.server = GenieServer(config, self.app)
        self._thread = threading.Thread(target=self._run, name=f"server-{self.port}", daemon=True)
        self._error: BaseException | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    @property
    def runtime(self) -> Any:
        return self.app.runtime

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported to the test thread by start()
            self._error = exc

    async def _serve(self) -> None:
        self.loop = asyncio.get_running_loop()
        await self.server.serve(sockets=[self._sock])

    def start(self) -> ThreadServer:
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self._sock.close()
                raise RuntimeError(f"test server did not start: {self._error!r}")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=START_TIMEOUT)
        self._sock.close()

    def call(self, fn: Any, *args: Any) -> Any:
        """Run ``fn(*args)`` (sync or async) on the server's loop and return its result."""
        assert self.loop is not None

        async def run() -> Any:
            result = fn(*args)
            return await result if asyncio.iscoroutine(result) else result

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout=10)

    def __enter__(self) -> ThreadServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> ThreadServer:
        return await anyio.to_thread.run_sync(self.start)

    async def __aexit__(self, *exc: object) -> None:
        await anyio.to_thread.run_sync(self.stop)
