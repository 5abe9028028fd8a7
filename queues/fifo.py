"""FIFO job queues: the plain queue and the todo queue that questions are pushed into.

``FifoQueue`` is an ``OrderedDict`` keyed by id_hash: push/pop at the ends and lookup or
delete by id are all O(1). The consumer side (todo -> running -> done | dead) lives in
``queues.running.RunningFifoQueue``.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Iterator

from queues.emitter import Emitter
from queues.errors import QueueError
from queues.models import EmitAudio, EmitEvent, Job, validate_question
from queues.store import JobStore, MemoryStore

log = logging.getLogger(__name__)

THINKING = "hmm... let me think"
# What the asker hears while others wait ahead ("{n}": how many; the fleet's push
# script fills it in Redis, from these same texts).
WAITING_ONE = "1 job before this one"
WAITING_MANY = "{n} jobs before this one"
# The frame that tells the asker its job's id (``/ws`` ``queued``).
QUEUED = "queued"


class FifoQueue:
    """Oldest job at the head. ``event`` is the name its size is announced under."""

    def __init__(self, name: str, event: str | None = None) -> None:
        self.name = name
        self.event = event or f"{name}_update"
        self._jobs: OrderedDict[str, Job] = OrderedDict()

    def push(self, job: Job) -> None:
        """Append at the tail (the newest end)."""
        self._check_new(job)
        self._jobs[job.id_hash] = job

    def push_front(self, job: Job) -> None:
        """Insert at the head, so this job is popped next (used to resume jobs)."""
        self._check_new(job)
        self._jobs[job.id_hash] = job
        self._jobs.move_to_end(job.id_hash, last=False)

    def pop(self) -> Job | None:
        """Remove and return the oldest job, or None when empty."""
        if not self._jobs:
            return None
        return self._jobs.popitem(last=False)[1]

    def head(self) -> Job | None:
        """The oldest job without removing it, or None when empty."""
        return next(iter(self._jobs.values()), None)

    def get_by_id_hash(self, id_hash: str) -> Job | None:
        return self._jobs.get(id_hash)

    def delete_by_id_hash(self, id_hash: str) -> Job | None:
        return self._jobs.pop(id_hash, None)

    def size(self) -> int:
        return len(self._jobs)

    def is_empty(self) -> bool:
        return not self._jobs

    def jobs(self) -> list[Job]:
        """Every job, newest first (the order the original Genie UI lists them)."""
        return list(reversed(self._jobs.values()))

    def __len__(self) -> int:
        return len(self._jobs)

    def __contains__(self, id_hash: object) -> bool:
        return id_hash in self._jobs

    def __iter__(self) -> Iterator[Job]:
        """Oldest first; iterate over a copy (``list(queue)``) to change the queue."""
        return iter(self._jobs.values())

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} size={len(self._jobs)}>"

    def _check_new(self, job: Job) -> None:
        if job.id_hash in self._jobs:
            raise QueueError(f"job {job.id_hash!r} is already in the {self.name} queue")


class TodoFifoQueue(FifoQueue):
    """Where questions wait. Pushing speaks how long the wait is; consumers ``take()``."""

    def __init__(
        self,
        emit_audio: EmitAudio,
        emit_event: EmitEvent,
        *,
        store: JobStore | None = None,
        emit_timeout: float = 5.0,
    ) -> None:
        super().__init__("todo")
        self.emitter = Emitter(emit_audio, emit_event, timeout=emit_timeout)
        self._store: JobStore = store if store is not None else MemoryStore()
        # Consumers sleep on this until a push wakes one of them: no polling.
        self._ready = asyncio.Condition()

    async def push_job(self, question: str, client_id: str | None = None) -> Job:
        """Queue a question; raises QuestionError for an empty or oversized one. The
        asker hears how long the wait is, then (with a client id) gets ``queued``."""
        job = Job(question=validate_question(question), client_id=client_id)
        ahead = self.size()
        self.push(job)
        try:
            await self._store.save(job)
        except Exception:
            # Not persisted means not accepted: the caller gets the error, nothing runs.
            self.delete_by_id_hash(job.id_hash)
            raise
        await self.wake()
        await self.emitter.speak(waiting_message(ahead), client_id)
        if client_id is not None:
            await self.emitter.event(QUEUED, {"id_hash": job.id_hash}, client_id)
        await self.emitter.counts(self)
        return job

    async def wake(self) -> None:
        """Tell one sleeping consumer there is work (after a push from outside push_job)."""
        async with self._ready:
            self._ready.notify()

    async def take(self) -> Job:
        """Wait until a job is queued, then pop it (oldest first)."""
        async with self._ready:
            await self._ready.wait_for(lambda: not self.is_empty())
            job = self.pop()
        assert job is not None  # the lock was held since the predicate was true
        return job


def waiting_message(ahead: int) -> str:
    """What the original Genie says on push, given the jobs already waiting."""
    if ahead <= 0:
        return THINKING
    return WAITING_ONE if ahead == 1 else WAITING_MANY.format(n=ahead)
