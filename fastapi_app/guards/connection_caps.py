"""Caps on connections open at once, per client address and in total, at the ASGI edge.

Counted per ASGI scope (an HTTP request in flight, a WebSocket, an Engine.IO long-poll),
not per TCP connection, because:

- a refusal is an answer the client can act on, HTTP 503 with ``Retry-After`` or a
  WebSocket closed 1013 ("try again later"), and both need the parsed request;
- the scope's client is the address uvicorn's proxy-headers middleware settled on: the
  X-Forwarded-For of a proxy it trusts (``GENIE_FORWARDED_ALLOW_IPS``, default loopback, so
  the kit's HAProxy with ``option forwardfor`` gives each browser its own count), else
  the peer. At the TCP level every connection through a proxy is the proxy's;
- uvicorn hands an upgraded connection to a new protocol object, which a TCP-level
  count would have to follow through uvicorn's internals.

What this leaves uncounted, a connection that has not finished its headers or sits
idle between requests, is bounded in time instead: ``fastapi_app.guards.slow_clients`` closes
it after ``GENIE_HEADER_TIMEOUT``, uvicorn after its keep-alive timeout (5 s).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import Counter
from starlette.types import Receive, Scope, Send

from config import Settings
from wire.legacy_http import json_bytes

RETRY_AFTER = 2  # seconds; whole, as Retry-After wants
TRY_AGAIN_LATER = 1013  # RFC 6455 close code

# Process-wide: the edge and the slow-client guard (no app at hand there) count here.
CONNECTIONS_REFUSED = Counter(
    "genie_connections_refused",
    "Connections refused or cut at the edge (reason: address, total: a connection cap; "
    "slow_headers, slow_body: a client too slow to send its request).",
    ["reason"],
)
_MESSAGES = {
    "address": "too many connections from your address",
    "total": "the server has too many connections open",
}


@dataclass(eq=False, slots=True)
class ConnectionCaps:
    max_total: int = 0  # 0: no cap
    max_per_address: int = 0  # 0: no cap
    open: int = 0
    _by_address: dict[str, int] = field(default_factory=dict, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> ConnectionCaps | None:
        """None when both caps are off: the edge then counts nothing."""
        if not settings.max_connections and not settings.max_connections_per_ip:
            return None
        return cls(settings.max_connections, settings.max_connections_per_ip)

    def enter(self, address: str) -> str | None:
        """Count one more connection of ``address``; or the cap it would pass."""
        held = self._by_address.get(address, 0)
        if self.max_per_address and held >= self.max_per_address:
            return "address"
        if self.max_total and self.open >= self.max_total:
            return "total"
        self.open += 1
        self._by_address[address] = held + 1
        return None

    def leave(self, address: str) -> None:
        self.open -= 1
        held = self._by_address[address] - 1
        if held:
            self._by_address[address] = held
        else:
            del self._by_address[address]  # bounded: only addresses with open connections


def client_address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


async def refuse(scope: Scope, receive: Receive, send: Send, reason: str) -> None:
    """Answer a connection past cap ``reason``: 503 + Retry-After, or close 1013."""
    CONNECTIONS_REFUSED.labels(reason).inc()
    message = f"{_MESSAGES[reason]}; retry in {RETRY_AFTER} s"
    if scope["type"] == "websocket":
        await receive()  # websocket.connect
        # Accepted first: a close before accept is a bare 403 that browsers cannot read.
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": TRY_AGAIN_LATER, "reason": message})
        return
    body = json_bytes({"code": "too_many_connections", "message": message,
                       "retry_after": RETRY_AFTER})  # fmt: skip
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"retry-after", str(RETRY_AFTER).encode()),
        (b"connection", b"close"),  # a flood's connection goes away with its answer
    ]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": body})
