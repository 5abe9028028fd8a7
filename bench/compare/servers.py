"""The four targets and how to start them: own process group, taskset, stopped always."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx

from bench.common import (
    NO_CLIENT_LIMITS_ENV,
    ROOT,
    ServerProcess,
    python,
    taskset_prefix,
    wait_for_port,
)

# Same settings for every server: quiet logs, no 1 Hz clock traffic, no per-client
# limits and no queue caps (one load generator sends everything; the capacity workload
# saturates on purpose), no audio cache (every request speaks).
SERVER_ENV = {
    "GENIE_LOG_LEVEL": "warning",
    "GENIE_CLOCK_INTERVAL": "3600",
    **NO_CLIENT_LIMITS_ENV,
    "GENIE_MAX_QUEUED": "0",
    "GENIE_MAX_WAIT": "0",
    "GENIE_TTS_CACHE_ENTRIES": "0",
    "GENIE_JOB_HANDLER": "offline",
    "GENIE_TTS_PROVIDERS": "espeak",
}


@dataclass(frozen=True)
class Target:
    name: str
    module: str
    args: tuple[str, ...]
    dialect: str  # "socketio" or "native" (bench.rawws)
    audio_path: str  # the endpoint this target's clients fetch speech from
    audio_param: str
    framework: str  # "flask" or "fastapi"

    def argv(self, port: int) -> list[str]:
        host = ["--host", "127.0.0.1", "--port", str(port)]
        return [python(), "-m", self.module, *host, *self.args]


TARGETS = (
    Target("flask-threading", "flask_app", ("--async-mode", "threading"), "socketio",
           "/get_tts_audio", "tts_text", "flask"),
    Target("flask-gevent", "flask_app", ("--async-mode", "gevent"), "socketio",
           "/get_tts_audio", "tts_text", "flask"),
    Target("fastapi-sio", "fastapi_app", ("--stage", "full"), "socketio",
           "/get_tts_audio", "tts_text", "fastapi"),
    Target("fastapi-ws", "fastapi_app", ("--stage", "full"), "native",
           "/api/get-audio", "msg", "fastapi"),
)  # fmt: skip
TARGET_NAMES = tuple(t.name for t in TARGETS)


LOG_DIR: list[Path] = []  # set once by the runner: where server output goes


class GroupServer(ServerProcess):
    """``bench.common.ServerProcess`` in its own session, so stopping it signals the whole
    process group (taskset's child, any helper process) and nothing outlives the run."""

    log: IO[bytes] | int = subprocess.DEVNULL

    def __enter__(self) -> GroupServer:
        if LOG_DIR:  # a file, never a pipe: a chatty server must not block on it
            self.log = open(LOG_DIR[0] / f"server-{self.port}.log", "wb")
        env = {**os.environ, **self.env, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen(
            taskset_prefix(self.core) + self.argv,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        LIVE[id(self)] = self
        try:
            wait_for_port(self.port, self.proc)
            wait_healthy(self.port)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        proc = self.proc
        LIVE.pop(id(self), None)
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
        if not isinstance(self.log, int):
            self.log.close()


# Servers running now; ``stop_all`` empties it from a signal handler or ``finally``.
LIVE: dict[int, GroupServer] = {}


def stop_all() -> None:
    for server in list(LIVE.values()):
        server.stop()


def wait_healthy(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return
        time.sleep(0.1)
    raise TimeoutError(f"no healthy server on port {port}")


def start(target: Target, port: int, core: int | None) -> GroupServer:
    return GroupServer(target.argv(port), port, core=core, env=dict(SERVER_ENV))
