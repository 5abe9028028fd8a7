"""One soak client's life, whatever its transport: sessions of connect, (be asked,)
stall or drop as its role says, leave; a pause; again, until the soak stops.

The transports (``bench.soak.native``, ``bench.soak.legacy``) say how to open, ask,
come back after a drop and say goodbye.
"""

from __future__ import annotations

import asyncio
import contextlib

from bench import rawws
from bench.soak.ledger import Ask
from bench.soak.world import ANSWER_WAIT, World

CONNECT_ERRORS = (OSError, ConnectionError, TimeoutError)


class Actor:
    transport = ""

    def __init__(self, world: World, index: int) -> None:
        self.world = world
        self.plan = world.plan
        self.rng = world.plan.rng(index)
        self.role = world.plan.role(self.rng)
        self.conn: rawws.WsClient | None = None
        self.pending: dict[int, Ask] = {}  # owed answers not heard yet, by token
        self.ready = False  # connected and greeted: may be asked
        self.dropping = False  # asked, and about to drop the socket on purpose
        self.reading = True
        self._toggle_at = 0.0

    # --- what a transport provides ------------------------------------------------------

    async def open(self) -> None:
        raise NotImplementedError

    def send_question(self, ask: Ask) -> None:
        raise NotImplementedError

    async def reopen(self) -> bool:
        """The socket closed under us (our drop, or the server): carry on? False ends
        the session (the next one starts afresh)."""
        raise NotImplementedError

    def goodbye(self) -> None:
        """What the client says before its close frame."""

    # --- the life -------------------------------------------------------------------------

    def can_ask(self) -> bool:
        return self.ready and not self.dropping

    def count(self, what: str) -> None:
        self.world.events[f"{self.transport}: {what}"] += 1

    async def run(self, start_after: float) -> None:
        await self.world.nap(start_after)
        while not self.world.stopped:
            try:
                await self.session()
            except CONNECT_ERRORS as exc:
                self.ready = False
                self.count(f"connect failed ({type(exc).__name__})")
                self._abort()
            if not self.world.stopped:
                await self.world.nap(self.plan.gap_seconds(self.rng))

    async def session(self) -> None:
        await self.open()
        self.count("sessions")
        loop = asyncio.get_running_loop()
        end = loop.time() + self.plan.session_seconds(self.rng)
        if self.role == "never":
            self.go_deaf()
        while not self.world.stopped and (left := end - loop.time()) > 0:
            assert self.conn is not None
            await self.world.nap(min(left, self._tick(loop.time())), self.conn.closed)
            if self.conn.closed.done():
                if self.role == "never":  # it cannot know, so it cannot come back
                    self.count(f"closed by server ({self.conn.close_code}, never client)")
                    return
                if not await self.reopen():
                    return
            elif self.role == "slow":
                self._toggle(loop.time())
        await self.leave()

    def ask(self, ask: Ask) -> None:
        """The pacer picked this client: send ``ask`` (and drop, if a dropper)."""
        if self.role == "never":
            self.world.ledger.excuse(ask, "never reads")
        else:
            self.pending[ask.token] = ask
        self.send_question(ask)
        if self.role == "dropper":
            self.dropping = True
            loop = asyncio.get_running_loop()
            loop.call_later(self.plan.drop_delay(self.rng), self._abort)

    def go_deaf(self) -> None:
        """A never-reader stops reading right after the greeting (it is still asked)."""
        self._pause_reading()

    def heard(self, token: int, now: float) -> None:
        if self.pending.pop(token, None) is not None:
            self.world.ledger.answer(token, now)

    async def leave(self) -> None:
        self.ready = False
        if self.role != "never":
            self._resume_reading()
            await self._await_answers()
        conn = self.conn
        if conn is None or conn.closed.done():
            return
        if self.role == "never" or self.plan.aborts(self.rng):
            self.count("left (reset)")
            conn.abort()
            return
        self.count("left (close)")
        self.goodbye()
        conn.close()
        try:
            await asyncio.wait_for(asyncio.shield(conn.closed), 5.0)
        except TimeoutError:
            self.count("close handshake timed out")
            conn.abort()

    async def _await_answers(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + ANSWER_WAIT
        while self.pending and loop.time() < deadline:
            assert self.conn is not None
            if self.conn.closed.done() and not await self.reopen():
                return
            await asyncio.sleep(0.1)

    # --- reading ----------------------------------------------------------------------

    def _tick(self, now: float) -> float:
        return max(0.05, self._toggle_at - now) if self.role == "slow" else 3600.0

    def _toggle(self, now: float) -> None:
        if now < self._toggle_at:
            return
        if self.reading:
            self._pause_reading()
            self._toggle_at = now + self.plan.slow_pause(self.rng)
        else:
            self._resume_reading()
            self._toggle_at = now + self.plan.slow_read(self.rng)

    def _pause_reading(self) -> None:
        if self.conn is not None and self.conn.transport is not None and self.reading:
            with contextlib.suppress(RuntimeError):
                self.conn.transport.pause_reading()
            self.reading = False

    def _resume_reading(self) -> None:
        if self.conn is not None and self.conn.transport is not None and not self.reading:
            with contextlib.suppress(RuntimeError):
                self.conn.transport.resume_reading()
            self.reading = True

    def _abort(self) -> None:
        if self.conn is not None:
            self.conn.abort()
