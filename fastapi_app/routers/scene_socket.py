"""One ``WS /ws/tts/{session_id}`` connection (seeds 000-002), see ``routers.scenes``.

A reader (stop, ping, resume) and a sender (the session's chunks from the client's
cursor on) run side by side; whichever ends first ends the other. Chunks come from the
session's memory, so a reconnect with ``last_chunk`` replays without re-synthesis.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from fastapi import WebSocket
from starlette.websockets import WebSocketDisconnect

from fastapi_app.auth.access import subject_of
from fastapi_app.auth.security import AuthError, auth_frame_token, token_from_connection
from fastapi_app.runtime import Runtime
from fastapi_app.scenes import SceneSession, SessionManager
from wire import tts_frames as frames

POLICY_VIOLATION = 1008
SESSION_NOT_FOUND = 4404  # 4000-4999: application close codes
TRUE = ("1", "true", "yes", "on")


class SceneSocket:
    def __init__(
        self, ws: WebSocket, manager: SessionManager, runtime: Runtime, session_id: str
    ) -> None:
        self.ws, self.manager, self.runtime, self.session_id = ws, manager, runtime, session_id
        query = ws.query_params
        self.binary = query.get("binary", "").lower() in TRUE
        self.cursor = _count(query.get("last_chunk") or query.get("from"))
        self._lock = asyncio.Lock()

    async def run(self) -> None:
        try:
            subject = await self._authenticate()
        except AuthError as exc:
            await self._json(frames.scene_error(exc.message, code=exc.code))
            await self.ws.close(POLICY_VIOLATION)
            return
        session = self.manager.get(self.session_id)
        if session is None:
            await self._json(frames.session_not_found(self.session_id))
            await self.ws.close(SESSION_NOT_FOUND)
            return
        if self.runtime.access.auth and session.subject not in (None, subject):
            await self._json(frames.scene_error("this session belongs to another user", None,
                                                "forbidden"))  # fmt: skip
            await self.ws.close(POLICY_VIOLATION)
            return
        await self._serve(session)

    async def _serve(self, session: SceneSession) -> None:
        session.attached += 1
        sender = asyncio.create_task(self._send_all(session))
        reader = asyncio.create_task(self._read(session))
        try:
            await asyncio.wait({sender, reader}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            session.attached -= 1
            session.notify()  # counts as activity: the expiry clock starts now
            for task in (sender, reader):
                task.cancel()
            await asyncio.gather(sender, reader, return_exceptions=True)
        if sender.done() and not sender.cancelled() and sender.exception() is None:
            with contextlib.suppress(RuntimeError, WebSocketDisconnect):
                await self.ws.close(1000)

    async def _authenticate(self) -> str | None:
        access = self.runtime.access
        if not access.auth:
            return None
        token = token_from_connection(self.ws)
        if token is None:  # the safer way: a first frame {"type": "auth", "token": ...}
            timeout = getattr(self.runtime.settings, "ws_auth_timeout", 10.0)
            try:
                message = await asyncio.wait_for(self.ws.receive(), timeout)
            except TimeoutError:
                raise AuthError("auth_timeout", "no auth frame received in time") from None
            if message["type"] == "websocket.disconnect":
                raise WebSocketDisconnect(message.get("code", 1000))
            token = auth_frame_token(message.get("text") or "")
        return subject_of(access.verifier.verify(token))

    async def _send_all(self, session: SceneSession) -> None:
        await self._json(frames.progress(len(session.chunks), session.total))
        while True:
            changed = session.changed()
            while self.cursor < len(session.chunks):
                chunk = session.chunks[self.cursor]
                self.cursor += 1
                await self._json(frames.progress(len(session.chunks), session.total))
                await self._json(
                    frames.chunk_ready(
                        chunk.number, session.total, chunk.duration, chunk.audio,
                        binary=self.binary,
                    )
                )  # fmt: skip
                if self.binary:
                    async with self._lock:
                        await self.ws.send_bytes(chunk.audio)
            if await self._finished(session):
                return
            await changed.wait()

    async def _finished(self, session: SceneSession) -> bool:
        if session.state == "complete" and self.cursor >= len(session.chunks):
            await self._json(frames.scene_complete(session.total, session.duration))
        elif session.state == "stopped":
            await self._json(frames.stopped(len(session.chunks)))
        elif session.state == "error" and self.cursor >= len(session.chunks):
            message = session.error or "speech failed"
            await self._json(frames.scene_error(message, session.error_chunk, "tts_failed"))
        else:
            return False
        return True

    async def _read(self, session: SceneSession) -> None:
        while True:
            message = await self.ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            raw = message.get("text")
            if raw is None:
                await self._json(frames.scene_error("send JSON text frames", code="invalid_frame"))
                continue
            try:
                frame = frames.parse(raw)
            except ValueError as exc:
                await self._json(frames.scene_error(str(exc), code="invalid_json"))
                continue
            await self._command(session, frame)

    async def _command(self, session: SceneSession, frame: dict[str, Any]) -> None:
        kind = frame.get("type")
        if kind == "stop":
            self.manager.stop(session)
        elif kind == "ping" or frame.get("ping"):
            await self._json(frames.scene_pong())
        elif kind == "resume":
            self.cursor = min(_count(frame.get("last_chunk")), session.total)
            if "binary" in frame:
                self.binary = bool(frame["binary"])
            session.notify()
        elif kind != "auth":
            await self._json(
                frames.scene_error(f"unknown frame type {kind!r}", code="unknown_type")
            )

    async def _json(self, payload: dict[str, Any]) -> None:
        async with self._lock:
            await self.ws.send_text(json.dumps(payload))


def _count(value: object) -> int:
    try:
        return max(0, int(str(value)))
    except ValueError:
        return 0
