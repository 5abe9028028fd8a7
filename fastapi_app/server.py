"""Serving: the uvicorn settings this app needs and a graceful-shutdown hook.

``ws="websockets-sansio"`` is uvicorn's leanest WebSocket protocol (~32 KB per idle
client), permessage-deflate is off unless asked for (for small JSON frames it triples
memory per client and CPU per delivery) and ``ws_max_size`` makes uvicorn itself close
oversized frames with 1009.
"""

from __future__ import annotations

import socket
from typing import Any

import uvicorn

from config import Settings
from fastapi_app.edge import GenieApp


def uvicorn_config(app: GenieApp | str, settings: Settings, **overrides: Any) -> uvicorn.Config:
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "ws": "websockets-sansio",
        "ws_max_size": settings.ws_max_frame_bytes,
        "ws_per_message_deflate": settings.ws_per_message_deflate,
        "timeout_graceful_shutdown": settings.shutdown_timeout,
        "log_level": settings.log_level.lower(),
        "lifespan": "on",
        "server_header": False,
    }
    options.update(overrides)
    return uvicorn.Config(app, **options)


class GenieServer(uvicorn.Server):
    """uvicorn's Server, but our sockets are closed (1012) before uvicorn's own shutdown
    runs, so clients hear "restarting" and no disconnect is taken as a client leaving."""

    def __init__(self, config: uvicorn.Config, app: GenieApp) -> None:
        super().__init__(config)
        self.genie = app

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await self.genie.drain()
        await super().shutdown(sockets)
