"""A Socket.IO soak client: a raw Engine.IO v4 / Socket.IO v5 socket (``bench.rawws``)
that asks with ``GET /push`` and hears every ``audio_update`` broadcast, its own answer
among them. Socket.IO has no resume: after a drop the client starts a new session.

Raw, not ``socketio.AsyncClient``: 500 of those (three tasks each, aiohttp) used more
than this load generator's whole core for 500 clients at 4 jobs/s, ten times the raw
client's CPU (measured while writing this bench; see the report's notes).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import httpx

from bench import rawws
from bench.soak.actor import Actor
from bench.soak.ledger import Ask, answer_token, question

PUSHED = re.compile(r"Job \[([^\]]+)\] added")


class LegacyActor(Actor):
    transport = "socketio"

    async def open(self) -> None:
        self.conn = None
        self.conn = await rawws.connect(self.world.port, "socketio", self.on_frame)
        self.reading, self._toggle_at = True, 0.0
        self.ready = True

    def send_question(self, ask: Ask) -> None:
        self.world.spawn(self._push(ask))

    async def _push(self, ask: Ask) -> None:
        # Unencoded but for spaces, as the original page sends it.
        path = f"/push?question={quote(question(ask.token))}"
        try:
            response = await self.world.http.get(path)
        except httpx.HTTPError as exc:
            self._refused(ask, f"push failed ({type(exc).__name__})")
            return
        match = PUSHED.search(response.text) if response.status_code == 200 else None
        if match is None:
            self._refused(ask, f"HTTP {response.status_code}")
        else:
            ask.id_hash = match.group(1)

    def _refused(self, ask: Ask, code: str) -> None:
        ask.refused = code
        self.pending.pop(ask.token, None)
        self.count(f"refused ({code})")

    def on_frame(self, client: rawws.WsClient, name: str, data: dict[str, Any], now: float) -> None:
        if name == "audio_update" and client is self.conn:
            token = answer_token(str(data.get("audioURL", "")))
            if token is not None:
                self.heard(token, now)

    async def reopen(self) -> bool:
        assert self.conn is not None
        dropped, self.dropping, self.ready = self.dropping, False, False
        code = self.conn.close_code
        why = "dropped mid-answer" if dropped else f"closed by server ({code}, {self.role} client)"
        self.count(why)
        for ask in self.pending.values():
            self.world.ledger.excuse(ask, why)
        self.pending.clear()
        return False

    def goodbye(self) -> None:
        assert self.conn is not None
        self.conn.send_text("41")  # leave the namespace, then close
