"""Every question the soak asks, what became of it, and what the server lists at the end.

A question is ``what is <token> plus 1`` with a token no other question has; its answer
(``<token> plus 1 is ...``) names the token in the ``audio_update`` URL, and the
``/get_queue/done|dead`` listings name it next to the job's id. So each question is
followed from the asker (``queued`` frame or ``/push`` answer: the job id) to its
answer and to the one terminal state the server lists it in.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

TOKEN0 = 1_000_000
ANSWER = re.compile(r"=(\d{7,})%20plus%201%20is")  # in an audio_update URL
LISTED = re.compile(r"<li id='([^']+)'>.*?Q: what is (\d{7,}) plus 1")
TERMINAL = ("done", "dead")


def question(token: int) -> str:
    return f"what is {token} plus 1"


def answer_token(url: str) -> int | None:
    match = ANSWER.search(url)
    return int(match.group(1)) if match else None


@dataclass(slots=True)
class Ask:
    token: int
    transport: str  # "ws" or "socketio"
    at: float  # time.time()
    id_hash: str | None = None
    answered_at: float | None = None
    owed: bool = True  # False: the asker cannot expect the answer (it left, never reads)
    why: str = ""  # why it is not owed
    refused: str = ""  # the error code, when the server refused it


@dataclass
class Ledger:
    asks: dict[int, Ask] = field(default_factory=dict)
    # What the listings said, over every poll: job id -> states seen, token -> job ids.
    states: dict[str, set[str]] = field(default_factory=dict)
    token_ids: dict[int, set[str]] = field(default_factory=dict)
    listing_dups: int = 0  # an id twice in one poll (both lists, or one list twice)
    _next: int = TOKEN0

    def ask(self, transport: str) -> Ask:
        # Wall clock: bench.rawws stamps arrivals with time.time().
        ask = Ask(self._next, transport, time.time())
        self.asks[ask.token] = ask
        self._next += 1
        return ask

    def answer(self, token: int, now: float) -> Ask | None:
        ask = self.asks.get(token)
        if ask is not None and ask.answered_at is None:
            ask.answered_at = now
        return ask

    @staticmethod
    def excuse(ask: Ask, why: str) -> None:
        """The asker cannot expect this answer any more (its own doing)."""
        if ask.answered_at is None and ask.owed:
            ask.owed, ask.why = False, why

    def observe(self, listings: dict[str, list[str]]) -> None:
        """One poll of ``/get_queue/done`` and ``/get_queue/dead`` (state -> <li> items)."""
        seen: Counter[str] = Counter()
        for state, items in listings.items():
            for item in items:
                match = LISTED.search(item)
                if match is None:
                    continue  # not a soak question (the warm-up's)
                job_id, token = match.group(1), int(match.group(2))
                seen[job_id] += 1
                self.states.setdefault(job_id, set()).add(state)
                self.token_ids.setdefault(token, set()).add(job_id)
        self.listing_dups += sum(n - 1 for n in seen.values() if n > 1)

    def reconcile(self, left_over: int) -> dict[str, Any]:
        """Each accepted question in exactly one terminal state, exactly once."""
        problems: list[str] = []
        accepted = unseen = lost = 0
        for ask in self.asks.values():
            ids = self.token_ids.get(ask.token, set())
            if ask.id_hash is not None:
                accepted += 1
                if ask.id_hash not in ids:
                    problems.append(f"job {ask.id_hash} ({ask.token}) in no terminal list")
            elif ids:
                unseen += 1  # accepted, but its asker dropped before it heard the id
            elif not ask.refused:
                lost += 1  # sent as the socket dropped: the server never read it
            if len(ids) > 1:
                problems.append(f"question {ask.token} became {len(ids)} jobs")
        for job_id, states in self.states.items():
            if len(states) > 1:
                problems.append(f"job {job_id} listed as {sorted(states)}")
        if self.listing_dups:
            problems.append(f"{self.listing_dups} id(s) listed twice in one poll")
        if left_over:
            problems.append(f"{left_over} job(s) still queued or running at the end")
        by_state = Counter(s for states in self.states.values() for s in states)
        return {
            "asked": len(self.asks),
            "accepted_id_seen": accepted,
            "accepted_id_unseen": unseen,
            "not_received": lost,
            "refused": Counter(a.refused for a in self.asks.values() if a.refused),
            "terminal": {state: by_state.get(state, 0) for state in TERMINAL},
            "left_over": left_over,
            "problems": problems,
        }

    def answers(self) -> dict[str, Any]:
        owed = [a for a in self.asks.values() if a.owed and not a.refused]
        missed = [a for a in owed if a.answered_at is None]
        waits = sorted(a.answered_at - a.at for a in owed if a.answered_at is not None)
        return {
            "owed": len(owed),
            "answered": len(owed) - len(missed),
            "missed": len(missed),
            "missed_tokens": [a.token for a in missed[:20]],
            "missed_by_transport": Counter(a.transport for a in missed),
            "not_owed": Counter(a.why for a in self.asks.values() if not a.owed),
            "answer_seconds": waits,
        }
