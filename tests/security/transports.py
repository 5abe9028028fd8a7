"""One credential tried on each way into the server, with the refusal each must give.

- ``http``: ``GET /get_queue/todo`` (a legacy route): 200, or 401 with a JSON ``code``.
- ``ws``: ``/ws`` the browser's way, the token in a first ``auth`` frame (a cookie rides
  the handshake): ``connection_established``, or a close with 1008.
- ``ws_tts``: ``/ws/tts?token=``: a ``pong`` to a ping, or an error frame then close 1008.
- ``socketio``: a python-socketio connect with ``auth={"token": ...}``: connected, or
  ``ConnectionError`` (the server's connect handler refused it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import httpx
import socketio
import websockets

from fastapi_app.auth.security import SESSION_COOKIE
from tests.servers import ThreadServer

TRANSPORTS = ("http", "ws", "ws_tts", "socketio")
POLICY_VIOLATION = 1008
WAIT = 10.0
AUTH_CODES = ("missing_token", "invalid_token", "token_expired", "token_too_large")


async def admitted(
    transport: str, server: ThreadServer, *, token: str | None = None, cookie: str | None = None
) -> bool:
    """Whether ``transport`` lets this token (or session cookie) in; asserts the refusal."""
    headers = {"Cookie": f"{SESSION_COOKIE}={cookie}"} if cookie is not None else {}
    return await _TRIES[transport](server, token, headers)


async def _http(server: ThreadServer, token: str | None, headers: dict[str, str]) -> bool:
    if token is not None:
        headers = {**headers, "Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=server.url, timeout=WAIT) as http:
        response = await http.get("/get_queue/todo", headers=headers)
    if response.status_code == 200:
        return True
    assert response.status_code == 401, (response.status_code, response.text)
    assert response.json()["code"] in AUTH_CODES
    return False


async def _ws(server: ThreadServer, token: str | None, headers: dict[str, str]) -> bool:
    async with websockets.connect(f"{server.ws_url}/ws", additional_headers=headers) as conn:
        # Either the auth frame, or (cookie only) a ping the server reads as one if the
        # cookie did not let the socket in.
        first = {"type": "auth", "token": token} if token is not None else {"type": "ping"}
        await conn.send(json.dumps(first))
        try:
            frame = json.loads(await asyncio.wait_for(conn.recv(), WAIT))
        except websockets.ConnectionClosed as closed:
            assert closed.rcvd is not None and closed.rcvd.code == POLICY_VIOLATION, closed
            return False
    assert frame["type"] == "connection_established", frame
    return True


async def _ws_tts(server: ThreadServer, token: str | None, headers: dict[str, str]) -> bool:
    url = f"{server.ws_url}/ws/tts" + (f"?token={token}" if token is not None else "")
    statuses: list[str] = []
    async with websockets.connect(url, additional_headers=headers) as conn:
        with contextlib.suppress(websockets.ConnectionClosed):  # a refusal may come first
            await conn.send(json.dumps({"ping": True}))
        try:
            while "pong" not in statuses:
                statuses.append(json.loads(await asyncio.wait_for(conn.recv(), WAIT))["status"])
        except websockets.ConnectionClosed as closed:
            assert closed.rcvd is not None and closed.rcvd.code == POLICY_VIOLATION, closed
            assert statuses == ["error"], statuses
            return False
    assert statuses == ["pong"], statuses
    return True


async def _socketio(server: ThreadServer, token: str | None, headers: dict[str, str]) -> bool:
    client = socketio.AsyncClient(reconnection=False)
    refusals: list[Any] = []
    client.on("connect_error", refusals.append)
    auth: Any = {"token": token} if token is not None else None
    try:
        await client.connect(
            server.url, headers=headers, auth=auth, transports=["websocket"], wait_timeout=WAIT
        )
    except socketio.exceptions.ConnectionError:
        # Refused by the connect handler, with the auth error's code; not a lost socket.
        assert len(refusals) == 1 and refusals[0]["message"] in AUTH_CODES, refusals
        return False
    await client.disconnect()
    return True


_TRIES = {"http": _http, "ws": _ws, "ws_tts": _ws_tts, "socketio": _socketio}
