"""Serving: the uvicorn settings this app needs and a graceful-shutdown hook.

``ws="websockets-sansio"`` is uvicorn's leanest WebSocket protocol (~32 KB per idle
client), permessage-deflate is off unless asked for (for small JSON frames it triples
memory per client and CPU per delivery) and ``ws_max_size`` makes uvicorn itself close
oversized frames with 1009. Tokens are redacted from uvicorn's log lines
(``wire.log_redaction``: ``?token=`` in request lines, ``Authorization`` values).
"""

from __future__ import annotations

import socket
from typing import Any

import uvicorn

from config import Settings
from fastapi_app.edge import GenieApp
from fastapi_app.guards.slow_clients import slow_client_protocol
from fastapi_app.sockets.ws_protocol import websocket_protocol
from wire import log_redaction


def uvicorn_config(app: GenieApp | str, settings: Settings, **overrides: Any) -> uvicorn.Config:
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "ws": websocket_protocol,  # uvicorn's websockets-sansio (fastapi_app.sockets.ws_protocol)
        "ws_max_size": settings.ws_max_frame_bytes,
        "ws_per_message_deflate": settings.ws_per_message_deflate,
        "timeout_graceful_shutdown": settings.shutdown_timeout,
        "log_level": settings.log_level.lower(),
        "lifespan": "on",
        "server_header": False,
        "proxy_headers": True,
        "forwarded_allow_ips": settings.forwarded_allow_ips,
        "http": slow_client_protocol(settings),  # deadlines on headers and body
    }
    options.update(overrides)
    config = uvicorn.Config(app, **options)  # configures uvicorn's loggers
    log_redaction.install()
    return config


class GenieServer(uvicorn.Server):
    """uvicorn's Server, but our sockets are closed (1012) before uvicorn's own shutdown
    runs, so clients hear "restarting" and no disconnect is taken as a client leaving."""

    def __init__(self, config: uvicorn.Config, app: GenieApp) -> None:
        super().__init__(config)
        self.genie = app

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await self.genie.drain()
        await super().shutdown(sockets)
