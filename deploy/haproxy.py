"""``haproxy.cfg`` for a mixed Flask/FastAPI fleet, and the weights behind the split.

One backend holds every server, so one ``balance roundrobin`` over integer weights
decides which kind a new browser gets, and the ``genie_server`` cookie keeps it there
(Socket.IO long-polling and ``/ws`` resume need the server that holds their session).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Literal, cast

if TYPE_CHECKING:  # imported where used: `rollout` (the kill switch) needs no pydantic
    from config import Settings

Kind = Literal["flask", "fastapi"]
KINDS: tuple[Kind, ...] = ("flask", "fastapi")
FRONTEND = BACKEND = "genie"
COOKIE = "genie_server"
MAX_WEIGHT = 256  # HAProxy's limit; weights are integers 0..256
_NAME = re.compile(r"^(flask|fastapi)-[1-9][0-9]*$")
_HOST = re.compile(r"^(\*|[A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\])$")


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> Endpoint:
        """``HOST:PORT`` (``[v6]:PORT`` for IPv6); ValueError says what is wrong."""
        host, sep, port = text.rpartition(":")
        if not sep or not host:
            raise ValueError(f"expected HOST:PORT, got {text!r}")
        if not _HOST.match(host):
            raise ValueError(f"bad host {host!r} in {text!r} (IPv6 goes in brackets: [::1]:80)")
        if not port.isdigit() or not 1 <= int(port) <= 65535:
            raise ValueError(f"port must be 1-65535, got {port!r} in {text!r}")
        return cls(host.strip("[]"), int(port))

    def __str__(self) -> str:
        # HAProxy takes the port after the last colon, so IPv6 needs no brackets.
        return f"{self.host}:{self.port}"


def server_name(kind: Kind, index: int) -> str:
    return f"{kind}-{index}"


def kind_of(name: str) -> Kind | None:
    """The kind a server's name tells (``flask-2`` → flask); None for other servers."""
    match = _NAME.match(name)
    return None if match is None else cast(Kind, match.group(1))


def weights(percent: float, n_flask: int, n_fastapi: int) -> tuple[int, int]:
    """Per-server (flask, fastapi) weights giving FastAPI ``percent`` % of new browsers.

    The closest split integer weights 1..256 allow, in lowest terms (50 % → 1:1,
    10 % → 9:1). 0 and 100 switch a kind off; anything between keeps both kinds on.
    """
    if not 0 <= percent <= 100:
        raise ValueError(f"percent must be 0-100, got {percent}")
    if n_flask < 0 or n_fastapi < 0 or n_flask + n_fastapi == 0:
        raise ValueError("the fleet has no servers")
    if percent > 0 and n_fastapi == 0:
        raise ValueError(f"no FastAPI server to send {percent:g} % to")
    if percent < 100 and n_flask == 0:
        raise ValueError(f"no Flask server to send {100 - percent:g} % to")
    if percent == 0:
        return (1, 0)
    if percent == 100:
        return (0, 1)
    target = Fraction(str(percent)) / 100

    def error(pair: tuple[int, int]) -> tuple[Fraction, int]:
        flask, fastapi = pair
        share = Fraction(n_fastapi * fastapi, n_flask * flask + n_fastapi * fastapi)
        return abs(share - target), flask + fastapi  # ties: the smaller pair (lowest terms)

    return min(_candidates(target, n_flask, n_fastapi), key=error)


def _candidates(target: Fraction, n_flask: int, n_fastapi: int) -> Iterator[tuple[int, int]]:
    # For each weight of one kind, the other kind's ideal weight rounded both ways:
    # the best pair is among these (512 x 2 pairs, not 256 x 256).
    ratio = n_fastapi * (1 - target) / (n_flask * target)  # flask weight per fastapi weight
    for fastapi in range(1, MAX_WEIGHT + 1):
        ideal = fastapi * ratio
        for flask in (math.floor(ideal), math.ceil(ideal)):
            yield min(max(flask, 1), MAX_WEIGHT), fastapi
    for flask in range(1, MAX_WEIGHT + 1):
        ideal = flask / ratio
        for fastapi in (math.floor(ideal), math.ceil(ideal)):
            yield flask, min(max(fastapi, 1), MAX_WEIGHT)


@dataclass(frozen=True)
class Timeouts:
    """HAProxy timeouts (whole seconds) derived from the servers' own heartbeats."""

    connect: int
    client: int
    server: int
    tunnel: int
    fin: int
    http_request: int
    check: int

    @classmethod
    def from_settings(cls, settings: Settings) -> Timeouts:
        # An Engine.IO long-poll GET is held up to ping_interval + ping_timeout.
        poll_hold = settings.sio_ping_interval + settings.sio_ping_timeout
        # An open socket stays silent at most this long before the app itself gives up
        # on it (Socket.IO ping, /ws heartbeat timeout); HAProxy must never cut first.
        heartbeat = max(poll_hold, settings.ws_heartbeat_timeout, settings.ws_heartbeat_interval)
        return cls(
            connect=2,  # a dead server fails fast and the retry is redispatched
            client=math.ceil(poll_hold) + 15,
            server=math.ceil(poll_hold) + 15,
            tunnel=math.ceil(2 * heartbeat),
            fin=max(5, math.ceil(2 * settings.ws_close_timeout)),
            http_request=10,
            check=2,
        )


def render(
    *,
    listen: Endpoint,
    flask: Sequence[Endpoint],
    fastapi: Sequence[Endpoint],
    fastapi_percent: float,
    admin_socket: str | Path,
    settings: Settings | None = None,
) -> str:
    """The whole ``haproxy.cfg``; ValueError for a percent or fleet that cannot be.

    Timeouts follow ``settings`` (default: the ``GENIE_*`` environment and ``.env`` the
    servers read too).
    """
    from config import Settings

    flask_weight, fastapi_weight = weights(fastapi_percent, len(flask), len(fastapi))
    settings = settings if settings is not None else Settings()
    t = Timeouts.from_settings(settings)
    servers = [
        (server_name("flask", i), endpoint, flask_weight) for i, endpoint in enumerate(flask, 1)
    ] + [
        (server_name("fastapi", i), endpoint, fastapi_weight)
        for i, endpoint in enumerate(fastapi, 1)
    ]
    server_lines = "\n".join(
        f"    server {name} {endpoint} cookie {name} weight {weight}"
        for name, endpoint, weight in servers
    )
    hold = settings.sio_ping_interval + settings.sio_ping_timeout
    sio_ping = f"{settings.sio_ping_interval:g} + {settings.sio_ping_timeout:g} = {hold:g} s"
    split = f"flask {flask_weight}, fastapi {fastapi_weight}"
    return f"""\
# Genie fleet: {len(flask)} Flask + {len(fastapi)} FastAPI server(s).
# New browsers to FastAPI: {fastapi_percent:g} % (per-server weights {split}).
# Rendered by `python -m deploy haproxy`. Move the split at run time with
# `python -m deploy rollout` (a reload or restart returns to these weights).

global
    # Runs as whoever starts it, in the foreground (haproxy -db, or a service manager):
    # no chroot, user or daemon. No log target: HAProxy prints server UP/DOWN/MAINT
    # changes on stderr itself (a "log stderr" line would print each one twice).
    # The runtime API: weights and server states change here without a reload.
    stats socket {admin_socket} mode 600 level admin
    stats timeout 30s

defaults
    mode http
    option forwardfor
    timeout connect {t.connect}s
    # Above the longest Engine.IO long-poll hold: ping interval + ping timeout
    # ({sio_ping}), so a held poll is never cut.
    timeout client {t.client}s
    timeout server {t.server}s
    # WebSockets (/socket.io/, /ws): twice the longest silence the apps allow before
    # they close a socket themselves (Socket.IO {hold:g} s, /ws heartbeat timeout
    # {settings.ws_heartbeat_timeout:g} s), so HAProxy only reaps sockets nobody closed.
    timeout tunnel {t.tunnel}s
    # Half-closed sockets: twice the servers' close handshake ({settings.ws_close_timeout:g} s).
    timeout client-fin {t.fin}s
    timeout server-fin {t.fin}s
    # Request headers must arrive within this (slow clients do not hold slots).
    timeout http-request {t.http_request}s
    timeout check {t.check}s

frontend {FRONTEND}
    bind {listen}
    default_backend {BACKEND}

backend {BACKEND}
    balance roundrobin
    # Sticky: the cookie names the server. Weight 0 still honours it; maintenance
    # ("state maint") does not, so a drained server's browsers move as they reconnect.
    cookie {COOKIE} insert indirect nocache httponly
    # A browser whose server is down (or refuses the connection) goes to a healthy one
    # and gets a new cookie; every retry may go elsewhere.
    option redispatch 1
    retries 2
    # A killed server is out after 2 failed checks 1 s apart (~2-3 s).
    option httpchk GET /health
    http-check expect status 200
    default-server check inter 1s fall 2 rise 2
{server_lines}
"""
