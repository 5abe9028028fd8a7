"""Real servers as subprocesses on 127.0.0.1: ``python -m flask_app`` (either async mode)
and ``python -m fastapi_app``, started the same way so the parity suite treats them alike.

Settings go in as ``GENIE_*`` variables; ``env`` adds others (e.g. a test handler's
gate file). Ready means ``GET /health`` answered 200. The server's output goes to a
temporary file (a chatty server never blocks on a full pipe); ``log_text()`` reads it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
import httpx

from tests.servers import LoopbackUrls, free_port

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 30.0
# Quiet, and the clock fast enough that a short test sees time_update.
BASE_SETTINGS: dict[str, Any] = {"log_level": "warning", "clock_interval": 0.25}


class ServerProcess(LoopbackUrls):
    def __init__(
        self,
        name: str,
        module: str,
        *,
        args: tuple[str, ...] = (),
        settings: dict[str, Any] | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.module = module
        self.args = args
        self.settings = {**BASE_SETTINGS, **(settings or {})}
        self.extra_env = env or {}
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in close()

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GENIE_")}
        for key, value in self.settings.items():
            env[f"GENIE_{key.upper()}"] = value if isinstance(value, str) else json.dumps(value)
        env.update(self.extra_env)
        env["PYTHONPATH"] = str(ROOT)
        return env

    def start(self) -> ServerProcess:
        cmd = [sys.executable, "-m", self.module, "--host", "127.0.0.1"]
        cmd += ["--port", str(self.port), *self.args]
        # A session of its own: kill() reaches the children too (uvicorn's --workers).
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, env=self._env(), stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}: {self.tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/health", timeout=1.0).status_code == 200:
                    return self
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"{self.name} did not answer /health in time: {self.tail()}")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, signum: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        """Send ``signum`` and wait for the exit code."""
        assert self.proc is not None
        self.proc.send_signal(signum)
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            self.kill()

    def log_text(self) -> str:
        self._log.seek(0)
        return self._log.read().decode(errors="replace")

    def tail(self, chars: int = 3000) -> str:
        return self.log_text()[-chars:]

    def kill(self) -> None:
        """SIGKILL the server and whatever it started (its process group)."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        if self.proc.poll() is None:
            self.proc.wait(timeout=10)

    def close(self) -> None:
        self.kill()
        self._log.close()

    def __enter__(self) -> ServerProcess:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc: object) -> None:
        self.close()


def flask_server(async_mode: str = "threading", **kwargs: Any) -> ServerProcess:
    args = ("--async-mode", async_mode, *kwargs.pop("args", ()))
    return ServerProcess(f"flask-{async_mode}", "flask_app", args=args, **kwargs)


def fastapi_server(**kwargs: Any) -> ServerProcess:
    return ServerProcess("fastapi", "fastapi_app", **kwargs)


def server_of(kind: str, **kwargs: Any) -> ServerProcess:
    """A server by kind: "fastapi", "flask-threading" or "flask-gevent"."""
    if kind == "fastapi":
        return fastapi_server(**kwargs)
    return flask_server(kind.removeprefix("flask-"), **kwargs)


async def raw_get(port: int, path: str) -> tuple[int, bytes]:
    """(status, raw response) for ``path`` sent as is: no client normalises it first."""
    stream = await anyio.connect_tcp("127.0.0.1", port)
    async with stream:
        request = f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        await stream.send(request.encode())
        data = b""
        with anyio.move_on_after(5):
            while True:
                try:
                    data += await stream.receive()
                except (anyio.EndOfStream, anyio.BrokenResourceError):
                    break
    return int(data.split(b" ", 2)[1]), data
