"""A ``/ws`` soak client: JSON frames, ``queued`` carries the job id, and after a drop
(its own, or the server closing a slow socket) it reconnects and sends ``resume`` with
its session id and the last ``seq`` it saw; the server replays what it missed."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

from bench import rawws
from bench.soak.actor import Actor
from bench.soak.ledger import Ask, answer_token, question

RESUME_TIMEOUT = 10.0


class NativeActor(Actor):
    transport = "ws"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.session_id = ""
        self.sent: deque[Ask] = deque()  # questions still waiting for queued (or error)
        self.reply: asyncio.Future[dict[str, Any]] | None = None  # resume's answer

    async def open(self) -> None:
        await self._connect()
        assert self.conn is not None
        self.session_id = self.conn.ready.result()["client_id"]
        self.sent.clear()
        self.ready = True

    async def _connect(self) -> None:
        self.conn = None
        self.conn = await rawws.connect(self.world.port, "native", self.on_frame)
        self.reading, self._toggle_at = True, 0.0

    def send_question(self, ask: Ask) -> None:
        assert self.conn is not None
        self.sent.append(ask)
        self.conn.send_json({"type": "query", "text": question(ask.token)})

    def on_frame(
        self, client: rawws.WsClient, kind: str, frame: dict[str, Any], now: float
    ) -> None:
        if client is not self.conn:
            return
        if kind == "audio_update":
            token = answer_token(str(frame.get("audioURL", "")))
            if token is not None:
                self.heard(token, now)
        elif kind == "queued":
            if self.sent:
                self.sent.popleft().id_hash = str(frame.get("id_hash"))
        elif kind == "resumed":
            self._replied(frame)
        elif kind == "error":
            self._error(frame)

    def _error(self, frame: dict[str, Any]) -> None:
        code = str(frame.get("code"))
        if code.startswith("resume"):
            self._replied(frame)
        elif self.sent:  # the answer to the oldest question still waiting for one
            ask = self.sent.popleft()
            ask.refused = code
            self.pending.pop(ask.token, None)
            self.count(f"refused ({code})")

    def _replied(self, frame: dict[str, Any]) -> None:
        if self.reply is not None and not self.reply.done():
            self.reply.set_result(frame)

    async def reopen(self) -> bool:
        old = self.conn
        assert old is not None
        dropped, self.dropping, self.ready = self.dropping, False, False
        why = f"closed by server ({old.close_code}, {self.role} client)"
        self.count("dropped mid-answer" if dropped else why)
        if dropped and not self.plan.resumes(self.rng):
            self._forsake("dropped, never came back")
            return False
        delay = self.plan.resume_delay(self.rng) if dropped else 0.1
        await asyncio.sleep(delay)  # not cut short by the stop: the question's fate is due
        await self._come_back(old.last_seq)
        return True

    async def _come_back(self, last_seq: int) -> None:
        await self._connect()
        assert self.conn is not None
        self.conn.last_seq = last_seq
        self.reply = asyncio.get_running_loop().create_future()
        self.conn.send_json({"type": "resume", "client_id": self.session_id, "last_seq": last_seq})
        try:
            reply = await asyncio.wait_for(asyncio.shield(self.reply), RESUME_TIMEOUT)
        except TimeoutError:
            reply = {"type": "error", "code": "resume_timeout"}
        self._settle(reply)
        self.ready = True

    def _settle(self, reply: dict[str, Any]) -> None:
        """After ``resumed`` the replay is in: a question whose ``queued`` it did not
        bring never reached the server (or, if the replay was incomplete, may have)."""
        if reply.get("type") == "resumed":
            complete = bool(reply.get("complete"))
            self.count("resumed" if complete else "resumed, replay incomplete")
            for ask in self.sent:
                self.world.ledger.excuse(ask, "sent as it dropped, not received")
            if not complete:
                self._forsake("resumed, replay incomplete")
        else:
            self.count(f"resume refused ({reply.get('code')})")
            self._forsake("resume refused")
            assert self.conn is not None
            self.session_id = self.conn.ready.result()["client_id"]  # a fresh session
        self.sent.clear()
        self.pending = {t: a for t, a in self.pending.items() if a.owed}

    def _forsake(self, why: str) -> None:
        for ask in self.pending.values():
            self.world.ledger.excuse(ask, why)
        self.pending.clear()
        self.sent.clear()
