"""Move browsers between Flask and FastAPI at run time, through HAProxy's runtime API.

Every move sets the WHOLE target state of every Genie server (weights, then
``state ready``, then ``state maint``), so the result never depends on what an earlier
move or a hand-typed command left behind, and a move that failed half-way is repaired
by running it again. The servers are discovered from ``show servers state``; their
names (``flask-N``, ``fastapi-N``) tell the kind.

Why ``maint`` for a drain and not ``drain``: HAProxy's ``drain`` only stops load
balancing to a server and still accepts persistent connections, so cookied browsers
would stay on it forever. A server in maintenance is skipped even when a cookie names
it, so its browsers land on the other kind at their next request (a long-poll, a
WebSocket reconnect) and get a new cookie. Open WebSockets are not cut: they move when
they reconnect. Weight 0 (the kill switch) is the gentle form: it still honours cookies.
"""

from __future__ import annotations

import csv
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from deploy.haproxy import KINDS, Kind, kind_of, weights

# srv_admin_state bits (management guide, "show servers state").
_MAINT = 0x01 | 0x02 | 0x04 | 0x20  # forced, inherited, configured, DNS failure
_DRAIN = 0x08 | 0x10  # forced, inherited
_OP_STATES = {0: "DOWN", 1: "UP", 2: "UP", 3: "NOLB"}  # stopped, starting, running, stopping


class RolloutError(Exception):
    """A rollout that cannot be done; the message says why (the CLI exits 1)."""


class RuntimeApi:
    """One command per connection: HAProxy answers and closes (non-interactive mode)."""

    def __init__(self, path: str | Path, timeout: float = 5.0) -> None:
        self.path = str(path)
        self.timeout = timeout

    def run(self, command: str) -> str:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(self.timeout)
            try:
                sock.connect(self.path)
                sock.sendall(command.encode() + b"\n")
                chunks = []
                while chunk := sock.recv(65536):
                    chunks.append(chunk)
            except FileNotFoundError:
                raise RolloutError(
                    f"no HAProxy admin socket at {self.path} (is haproxy running?)"
                ) from None
            except ConnectionRefusedError:
                raise RolloutError(
                    f"HAProxy refused {self.path} (not running? a stale socket file?)"
                ) from None
            except OSError as exc:
                raise RolloutError(f"HAProxy admin socket {self.path}: {exc}") from None
        return b"".join(chunks).decode(errors="replace")

    def command(self, command: str) -> None:
        """A ``set`` command: HAProxy answers nothing when it worked, else why not."""
        answer = self.run(command).strip()
        if answer:
            raise RolloutError(f"HAProxy refused {command!r}: {answer}")


@dataclass(frozen=True)
class Server:
    backend: str
    name: str
    kind: Kind
    op_state: int
    admin_state: int
    weight: int
    sessions: int = 0

    @property
    def state(self) -> str:
        if self.admin_state & _MAINT:
            return "MAINT"
        if self.admin_state & _DRAIN:
            return "DRAIN"
        return _OP_STATES.get(self.op_state, str(self.op_state))

    @property
    def takes_new_browsers(self) -> bool:
        return self.state == "UP" and self.weight > 0


def servers(api: RuntimeApi) -> list[Server]:
    """Every Genie server HAProxy knows, in config order, with its current sessions."""
    sessions = _sessions(api.run("show stat -1 4 -1"))
    found = []
    for row in _rows(api.run("show servers state")):
        kind = kind_of(row["srv_name"])
        if kind is None:
            continue
        found.append(
            Server(
                backend=row["be_name"],
                name=row["srv_name"],
                kind=kind,
                op_state=int(row["srv_op_state"]),
                admin_state=int(row["srv_admin_state"]),
                weight=int(row["srv_uweight"]),
                sessions=sessions.get((row["be_name"], row["srv_name"]), 0),
            )
        )
    if not found:
        raise RolloutError("HAProxy has no Genie servers (named flask-N or fastapi-N)")
    return found


def _rows(text: str) -> list[dict[str, str]]:
    # Line 1 is the format version, then "# be_id be_name ..." names the columns.
    lines = text.splitlines()
    header = next((line for line in lines if line.startswith("# ")), None)
    if header is None:
        raise RolloutError(f"unexpected answer to 'show servers state': {text.strip()[:200]}")
    columns = header[2:].split()
    data = [line.split() for line in lines[1:] if line.strip() and not line.startswith("#")]
    return [dict(zip(columns, values, strict=False)) for values in data]


def _sessions(text: str) -> dict[tuple[str, str], int]:
    reader = csv.DictReader(text.removeprefix("# ").splitlines())
    return {
        (row["pxname"], row["svname"]): int(row["scur"] or 0)
        for row in reader
        if row.get("pxname") and row.get("scur") is not None
    }


def effective_percent(fleet: Sequence[Server]) -> float | None:
    """FastAPI's share of new browsers now (UP servers only); None if nobody takes any."""
    open_ = [s for s in fleet if s.takes_new_browsers]
    total = sum(s.weight for s in open_)
    if total == 0:
        return None
    return 100 * sum(s.weight for s in open_ if s.kind == "fastapi") / total


@dataclass(frozen=True)
class Target:
    """FastAPI's share of new browsers, and the kind (if any) in maintenance."""

    percent: float
    maint: Kind | None = None

    @classmethod
    def kill_switch(cls) -> Target:
        return cls(0.0)

    @classmethod
    def drain(cls, kind: Kind) -> Target:
        return cls(100.0 if kind == "flask" else 0.0, maint=kind)


def plan(fleet: Sequence[Server], target: Target) -> list[str]:
    """The runtime commands that set ``target``: weights, then ready, then maint (so a
    drain opens the other kind before it closes this one)."""
    counts = {kind: sum(s.kind == kind for s in fleet) for kind in KINDS}
    try:
        per_kind = dict(zip(KINDS, weights(target.percent, *counts.values()), strict=True))
    except ValueError as exc:
        raise RolloutError(str(exc)) from None
    commands = [f"set server {s.backend}/{s.name} weight {per_kind[s.kind]}" for s in fleet]
    commands += [f"set server {s.backend}/{s.name} state ready" for s in fleet
                 if s.kind != target.maint]  # fmt: skip
    commands += [f"set server {s.backend}/{s.name} state maint" for s in fleet
                 if s.kind == target.maint]  # fmt: skip
    return commands


def apply(api: RuntimeApi, target: Target) -> tuple[list[str], list[Server]]:
    """Set ``target``; return the commands sent and the servers' state afterwards."""
    commands = plan(servers(api), target)
    for command in commands:
        api.command(command)
    return commands, servers(api)


def status_text(fleet: Sequence[Server]) -> str:
    rows = [("server", "kind", "state", "weight", "sessions")]
    rows += [(s.name, s.kind, s.state, str(s.weight), str(s.sessions)) for s in fleet]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
             for row in rows]  # fmt: skip
    share = effective_percent(fleet)
    nobody = "nobody takes them (no server is UP with a weight: 503)"
    lines.append(
        f"new browsers to FastAPI: {nobody if share is None else f'{round(share, 1):g} %'}"
    )
    return "\n".join(lines)
