"""What every soak client shares: the server's port, the plan, the ledger, the HTTP
client for ``/push``, the stop signal and the counters the report tallies."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.soak.ledger import Ledger
from bench.soak.plan import Plan

ANSWER_WAIT = 15.0  # seconds a leaving client waits for answers it is still owed


@dataclass
class World:
    port: int
    plan: Plan
    http: httpx.AsyncClient  # /push and the audio streams
    stopping: asyncio.Future[None]  # done: stop asking, finish and leave
    ledger: Ledger = field(default_factory=Ledger)
    events: Counter[str] = field(default_factory=Counter)  # "transport: what happened"
    audio: Counter[str] = field(default_factory=Counter)
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)  # /push requests in flight

    @property
    def stopped(self) -> bool:
        return self.stopping.done()

    def spawn(self, coro: Any) -> None:
        """A short job (one ``/push``) that the end of the soak waits for."""
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def nap(self, seconds: float, *also: asyncio.Future[Any]) -> None:
        """Sleep; wake early when the soak stops or one of ``also`` is done."""
        waits = [self.stopping, *also]
        await asyncio.wait(waits, timeout=max(0.0, seconds), return_when=asyncio.FIRST_COMPLETED)
