"""Both servers, started the same way: real processes on free loopback ports.

Each gets the gated job handler and its own gate file. FastAPI's rate limits are off:
the original Genie had none and the suite compares the legacy wire, not the limiter.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.flask_app.launch import ServerProcess, server_of
from tests.parity.handlers import GATE_ENV

SERVERS = ("flask-threading", "flask-gevent", "fastapi")
SETTINGS = {
    "job_handler": "tests.parity.handlers:gated",
    "rate_limit_queries": 0,
    "rate_limit_audio": 0,
}


class Gated:
    """A running server plus the gate that holds its jobs in ``running``."""

    def __init__(self, kind: str, server: ServerProcess, gate: Path) -> None:
        self.kind, self.server, self.gate = kind, server, gate

    @property
    def url(self) -> str:
        return self.server.url

    def close_gate(self) -> None:
        self.gate.touch()

    def open_gate(self) -> None:
        self.gate.unlink(missing_ok=True)


def start(kind: str, gate: Path) -> ServerProcess:
    return server_of(kind, settings=SETTINGS, env={GATE_ENV: str(gate)})


@pytest.fixture(params=SERVERS)
def gated_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Gated]:
    kind: str = request.param
    gate = tmp_path / f"{kind}.gate"
    gate.touch()  # jobs wait from the start
    with start(kind, gate) as server:
        yield Gated(kind, server, gate)
        assert server.alive(), f"{kind} died:\n{server.tail()}"
