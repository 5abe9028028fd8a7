"""A real ``redis-server`` (Debian's) on a free loopback port, for benches and tests.

It keeps its data directory, so ``kill()`` then ``start()`` is a Redis restart: with
``aof=True`` (``appendfsync always``) nothing acknowledged is lost.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import tempfile
import time

import redis

from bench.common import free_port

START_TIMEOUT = 10.0


class RedisServer:
    def __init__(self, *, aof: bool = False) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise FileNotFoundError("redis-server is not installed (apt-get install redis-server)")
        self.binary, self.aof, self.port = binary, aof, free_port()
        self._dir = tempfile.TemporaryDirectory(prefix="genie-redis-")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        cmd = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
               "--dir", self._dir.name, "--save", ""]  # fmt: skip
        aof = ["--appendonly", "yes", "--appendfsync", "always"]
        cmd += aof if self.aof else ["--appendonly", "no"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=0.5)
        deadline = time.monotonic() + START_TIMEOUT
        try:
            while True:
                with contextlib.suppress(redis.ConnectionError, redis.BusyLoadingError):
                    if client.ping():
                        return self
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError(f"redis-server did not start on port {self.port}")
                time.sleep(0.02)
        finally:
            client.close()

    def kill(self) -> None:
        """SIGKILL: Redis gone without a save (AOF keeps what was acknowledged)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, decode_responses=True)

    def close(self) -> None:
        self.kill()
        self._dir.cleanup()
