"""``WS /ws``: the native protocol (see ``wire.frames``); the session does the work."""

from __future__ import annotations

from fastapi import APIRouter, WebSocket

from fastapi_app.deps import RuntimeDep
from fastapi_app.ws_session import WsSession

router = APIRouter()


@router.websocket("/ws")
async def ws_endpoint(websocket: WebSocket, rt: RuntimeDep) -> None:
    await WsSession(rt, websocket).run()
