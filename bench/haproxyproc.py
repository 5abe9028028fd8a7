"""A real ``haproxy`` (Debian's) in front of Genie servers on loopback, for benches and
tests: the config rendered by ``deploy.haproxy`` (servers ``flask-1``...,
``fastapi-1``...), ``haproxy -db`` in its own session, ready once the frontend accepts
connections and (``wait_up``) every server is UP per the runtime API.

``.url``, ``.admin_socket``, ``.api``, ``.runtime(cmd)``, ``.server_states()``,
``.wait_for(...)``; the process's output goes to a file (``log_text()``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from bench.common import free_port
from config import Settings
from deploy import haproxy, rollout

START_TIMEOUT = 15.0
States = dict[str, rollout.Server]


def haproxy_binary() -> str | None:
    # Debian installs it in /usr/sbin, which a normal user's PATH often lacks.
    return shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin:/sbin")


class HaproxyProcess:
    def __init__(
        self,
        *,
        flask: Sequence[int] = (),
        fastapi: Sequence[int] = (),
        percent: float = 0.0,
        directory: Path,
        listen_port: int | None = None,
    ) -> None:
        binary = haproxy_binary()
        if binary is None:
            raise FileNotFoundError("haproxy is not installed (apt-get install haproxy)")
        self.binary = binary
        self.port = listen_port if listen_port is not None else free_port()
        # A UNIX socket path must fit in 108 bytes; pytest's tmp_path may not.
        self._socket_dir = tempfile.mkdtemp(prefix="genie-hap-")
        self.admin_socket = Path(self._socket_dir) / "admin.sock"
        self.api = rollout.RuntimeApi(self.admin_socket)
        self.cfg_path = directory / "haproxy.cfg"
        try:
            text = haproxy.render(
                listen=haproxy.Endpoint("127.0.0.1", self.port),
                flask=[haproxy.Endpoint("127.0.0.1", port) for port in flask],
                fastapi=[haproxy.Endpoint("127.0.0.1", port) for port in fastapi],
                fastapi_percent=percent,
                admin_socket=self.admin_socket,
                settings=Settings(_env_file=None),  # as the test servers (no .env)
            )
        except ValueError:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
            raise
        self.cfg_path.write_text(text)
        self._log = (directory / "haproxy.log").open("w+b")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, *, wait_up: bool = True) -> HaproxyProcess:
        """Start and wait for the frontend (and, with ``wait_up``, every server UP)."""
        self.proc = subprocess.Popen(
            [self.binary, "-db", "-f", str(self.cfg_path)],
            stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + START_TIMEOUT
        while not self._ready(wait_up):
            if self.proc.poll() is not None:
                raise RuntimeError(f"haproxy exited with {self.proc.returncode}: {self.tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"haproxy was not ready in time: {self.tail()}")
            time.sleep(0.05)
        return self

    def _ready(self, wait_up: bool) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                pass
            states = self.server_states()
        except (OSError, rollout.RolloutError):
            return False
        return not wait_up or all(s.state == "UP" for s in states.values())

    def runtime(self, command: str) -> str:
        """One runtime API command; HAProxy's answer as text."""
        return self.api.run(command)

    def server_states(self) -> States:
        """Every Genie server by name: kind, state (UP/DOWN/MAINT/...), weight, sessions."""
        return {server.name: server for server in rollout.servers(self.api)}

    def wait_for(self, check: Callable[[States], bool], what: str, timeout: float = 30.0) -> States:
        """Poll ``server_states()`` until ``check`` holds (health checks take ~1 s each)."""
        deadline = time.monotonic() + timeout
        while not check(states := self.server_states()):
            if time.monotonic() > deadline:
                raise AssertionError(f"haproxy: {what} not within {timeout} s: {states}")
            time.sleep(0.1)
        return states

    def log_text(self) -> str:
        self._log.seek(0)
        return self._log.read().decode(errors="replace")

    def tail(self, chars: int = 3000) -> str:
        return self.log_text()[-chars:]

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self._log.close()
        shutil.rmtree(self._socket_dir, ignore_errors=True)
