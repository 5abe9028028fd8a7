"""Real servers for wire tests, on 127.0.0.1 only.

- :class:`ThreadServer`: ``create_app(settings)`` under uvicorn (the same
  ``GenieServer`` and config as ``python -m fastapi_app``) in a thread with its own
  event loop, on a socket bound to a free port before start (no port race). Usable as
  ``with`` or ``async with``; ``stop()`` runs the graceful shutdown.
- :class:`ProcessServer`: ``python -m fastapi_app`` as a subprocess with ``GENIE_*``
  settings, for what only a process can show (SIGTERM, a restart). ``terminate()``
  sends SIGTERM and waits.

Both expose ``url`` (http://127.0.0.1:PORT), ``ws_url`` and ``port``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import anyio
import httpx

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


class _Urls:
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"


class ThreadServer(_Urls):
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


class ProcessServer(_Urls):
    def __init__(self, *args: str, **settings: Any) -> None:
        self.args = list(args)  # extra command-line flags, e.g. "--stage", "mvp"
        self.settings = {"log_level": "warning", **settings}
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.returncode: int | None = None
        # A file, not a pipe: a chatty server must never block on a full pipe.
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in __exit__

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GENIE_")}
        for name, value in self.settings.items():
            text = value if isinstance(value, str) else json.dumps(value)
            env[f"GENIE_{name.upper()}"] = text
        env["PYTHONPATH"] = str(ROOT)
        return env

    def start(self) -> ProcessServer:
        cmd = [sys.executable, "-m", "fastapi_app", "--host", "127.0.0.1", "--port", str(self.port)]
        cmd += self.args
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=self._env(), stderr=self._log)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.log_text()[-2000:]
                raise RuntimeError(f"server exited with {self.proc.returncode}: {err}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/health", timeout=1.0).status_code == 200:
                    return self
            time.sleep(0.05)
        self.kill()
        raise RuntimeError("server did not answer /health in time")

    def terminate(self, timeout: float = 20.0) -> int:
        """SIGTERM, then wait for a clean exit; returns the exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.returncode = self.proc.wait(timeout=timeout)
        finally:
            self.kill()
        return self.returncode

    def log_text(self) -> str:
        """What the server wrote to stderr so far."""
        self._log.seek(0)
        return self._log.read().decode(errors="replace")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def __enter__(self) -> ProcessServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.kill()
        self._log.close()
