"""One native ``/ws`` socket from handshake to close: authenticate, register with the
ConnectionManager, read frames and act on them. Sending is the manager's business.

Bad input never closes the socket: a bad frame (not JSON, unknown type, bad field,
question too long, rate limited) is answered with an ``error`` frame. Only frames over
the size limit are closed (1009, by uvicorn's ``ws_max_size``), and failed auth (1008).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from typing import Any, NoReturn

from fastapi.responses import JSONResponse
from starlette.types import Send
from starlette.websockets import WebSocket

from fastapi_app.auth.access import subject_of
from fastapi_app.auth.security import (
    AuthError,
    auth_frame_token,
    cookie_token,
    token_from_connection,
)
from fastapi_app.errors import error_response
from fastapi_app.runtime import Runtime
from fastapi_app.sockets.client import Client
from fastapi_app.sockets.connections import check_resume
from fastapi_app.sockets.direct_frames import direct_writer
from queues.errors import QuestionError, QueueBusyError, QueueClosedError, QueueUnavailableError
from queues.service import COUNT_EVENTS
from tts.errors import TTSError
from wire import frames

log = logging.getLogger(__name__)

POLICY_VIOLATION = 1008
SERVICE_RESTART = 1012


class _Rejected(Exception):
    pass


class WsSession:
    def __init__(self, rt: Runtime, ws: WebSocket, asgi_send: Send) -> None:
        assert rt.connections is not None
        self.rt = rt
        self.ws = ws
        self.asgi_send = asgi_send  # what ws.send wraps; see fastapi_app.sockets.direct_frames
        self.connections = rt.connections

    async def run(self) -> None:
        try:
            subject = await self._handshake()
        except _Rejected:
            return
        direct = direct_writer(self.asgi_send) if self.rt.features.direct_frames else None
        client = self.client = self.connections.open(self.ws, subject, direct)
        outbox = client.outbox
        assert outbox is not None
        code = 1006
        try:
            if self.rt.queues.shares_sessions:
                await self.rt.queues.attach_client(client.id, subject)
            code = await self._read_loop()
        finally:
            await self.connections.release(self.client, outbox, code)

    # --- handshake ----------------------------------------------------------------------

    async def _handshake(self) -> str | None:
        """Accept the socket and return the token's subject (None when auth is off)."""
        access = self.rt.access
        if self.connections.draining:
            await self.ws.close(SERVICE_RESTART, "server restarting")
            raise _Rejected
        token = token_from_connection(self.ws, cookie=False) if access.auth else None
        if token is not None:
            # A token in the handshake is checked before accepting: 401 with a JSON body.
            try:
                claims = access.verifier.verify(token)
            except AuthError as exc:
                self._count_auth_failure()
                await self.ws.send_denial_response(_denial(exc))
                raise _Rejected from None
            await self.ws.accept()
            return subject_of(claims)
        await self.ws.accept()
        if not access.auth:
            return None
        if (claims := self._cookie_claims()) is not None:
            return subject_of(claims)
        return await self._auth_frame()

    def _cookie_claims(self) -> dict[str, Any] | None:
        """The login page's session cookie, if valid. A bad one is no refusal: the client
        may still send an auth frame (the page's own ?token=)."""
        try:
            return self.rt.access.verifier.verify(cookie_token(self.ws.cookies))
        except AuthError:
            return None

    async def _auth_frame(self) -> str | None:
        """Browsers cannot set headers on a WebSocket: the first frame carries the token."""
        try:
            async with asyncio.timeout(self.rt.settings.ws_auth_timeout):
                message = await self.ws.receive()
        except TimeoutError:
            await self._refuse("auth_timeout")
        if message["type"] == "websocket.disconnect":
            raise _Rejected
        token = auth_frame_token(message.get("text") or b"")
        try:
            claims = self.rt.access.verifier.verify(token)
        except AuthError as exc:
            self._count_auth_failure()
            await self._refuse(exc.code)
        return subject_of(claims)

    async def _refuse(self, reason: str) -> NoReturn:
        await self.ws.close(POLICY_VIOLATION, reason)
        raise _Rejected

    def _count_auth_failure(self) -> None:
        if self.rt.metrics is not None:
            self.rt.metrics.auth_failures.labels("ws").inc()

    # --- frames -------------------------------------------------------------------------

    async def _read_loop(self) -> int:
        receive = self.ws.receive
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return int(message.get("code") or 1000)
            client = self.client
            client.last_seen = time.monotonic()
            text = message.get("text")
            try:
                if text is None:
                    raise frames.FrameError("binary_frame", "send JSON text frames")
                await self._dispatch(frames.parse_client_frame(text))
            except frames.FrameError as exc:
                self.client.control(exc.frame())

    async def _dispatch(self, frame: frames.ClientFrame) -> None:
        match frame:
            case frames.Query():
                await self._query(frame)
            case frames.Ping():
                self.client.control(frames.pong())
            case frames.Pong() | frames.Auth():
                pass  # a pong only proves liveness; a repeated auth changes nothing
            case frames.Resume() if self.rt.queues.shares_sessions:
                self.client = await self._resume_shared(frame)
            case frames.Resume():
                self.client = self.connections.resume(self.client, frame.client_id, frame.last_seq)

    async def _resume_shared(self, frame: frames.Resume) -> Client:
        """Resume a session another process (or this one) held: its frames are in Redis."""
        check_resume(self.client)
        queues = self.rt.queues
        try:
            seq, voice, speed, missed = await queues.resume_client(
                frame.client_id, self.client.subject, frame.last_seq
            )
        except LookupError:
            raise frames.FrameError("resume_failed", f"no session {frame.client_id!r}") from None
        except PermissionError:
            raise frames.FrameError(
                "resume_forbidden", "that session belongs to someone else"
            ) from None
        except QueueUnavailableError as exc:
            raise frames.FrameError("unavailable", str(exc), retry_after=exc.retry_after) from None
        client = self.connections.adopt(self.client, frame.client_id, frame.last_seq)
        client.voice, client.speed = voice, speed
        await queues.replay(client.id, missed)
        complete = frame.last_seq <= seq and len(missed) == seq - frame.last_seq
        client.control(frames.resumed(client.id, len(missed), complete))
        # Counts are state, not history: the current ones instead of a replay.
        for name, value in queues.counts().items():
            client.control(frames.queue_event(COUNT_EVENTS[name], {"value": value}))
        return client

    async def _query(self, frame: frames.Query) -> None:
        client = self.client
        await self._check_rate(client)
        if frame.voice is not None:
            self._check_voice(frame.voice)
            client.voice = frame.voice
        if frame.speed is not None:
            client.speed = frame.speed
        shared = self.rt.queues.shares_sessions
        if shared and (frame.voice is not None or frame.speed is not None):
            await self.rt.queues.note_voice(client.id, client.voice, client.speed)
        try:
            job = await self.rt.queues.push_job(frame.text, client.id)
        except QuestionError as exc:
            raise frames.FrameError(exc.code, str(exc)) from None
        except QueueClosedError:
            raise frames.FrameError("unavailable", "the server is shutting down") from None
        except QueueBusyError as exc:
            raise frames.FrameError(exc.code, str(exc), retry_after=exc.retry_after) from None
        except QueueUnavailableError as exc:
            raise frames.FrameError("unavailable", str(exc), retry_after=exc.retry_after) from None
        await self._prune_jobs(client)
        client.active_jobs.add(job.id_hash)  # push_job sent it ``queued`` already

    async def _check_rate(self, client: Client) -> None:
        limiter = self.rt.access.queries
        if limiter is None:
            return
        key = f"sub:{client.subject}" if client.subject else f"ws:{client.id}"
        retry_after = await limiter.hit(key)
        if retry_after is None:
            return
        if self.rt.metrics is not None:
            self.rt.metrics.rate_limited.labels("query").inc()
        wait = math.ceil(retry_after * 10) / 10
        raise frames.FrameError(
            "rate_limited", f"too many questions; retry in {wait:g} s", retry_after=wait
        )

    def _check_voice(self, voice: str) -> None:
        # Checked now: a bad voice would otherwise only show as failing audio URLs. The
        # engine validates eagerly; the unstarted stream it returns holds nothing.
        if self.rt.speech is None:
            return
        try:
            self.rt.speech.stream("ok", voice=voice)
        except TTSError as exc:
            raise frames.FrameError(exc.code, str(exc)) from None

    async def _prune_jobs(self, client: Client) -> None:
        # Finished jobs no longer count as active (nothing else removes them).
        if client.active_jobs:
            client.active_jobs = await self.rt.queues.unfinished(client.active_jobs)


def _denial(exc: AuthError) -> JSONResponse:
    return error_response(401, exc.code, exc.message, {"WWW-Authenticate": "Bearer"})
