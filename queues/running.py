"""The consumer side: todo -> running -> done | dead.

Every job a consumer takes ends in exactly one of done or dead, whatever the handler does
(answers, raises, hangs past the timeout) and whatever the emit callbacks do. The only way
out of ``running`` without a terminal state is the consumer itself being cancelled
(shutdown): the job then stays ``running`` in the store and is resumed on the next start.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable

from queues.emitter import Emitter
from queues.fifo import FifoQueue, TodoFifoQueue
from queues.metrics import JOB_WAIT_SECONDS
from queues.models import EmitAudio, EmitEvent, Job, JobHandler, JobState
from queues.store import JobStore, MemoryStore

log = logging.getLogger(__name__)

APOLOGY = "Sorry, I couldn't answer that."
TIMEOUT_APOLOGY = "Sorry, that took too long to answer."
EXPIRED_APOLOGY = "Sorry, I was too busy to get to that in time. Please ask again."
EXPIRED = "expired"
# What a ``/ws`` asker whose job expired gets besides the spoken apology: an ``error``
# frame with code ``expired`` (wire.frames.ERROR; its asker can tell why it was not answered).
NOTICE = "error"
CANCELLED = "cancelled"


class RunningFifoQueue(FifoQueue):
    """Jobs being answered now, plus the consumer loop that moves them along."""

    def __init__(
        self,
        emit_audio: EmitAudio,
        emit_event: EmitEvent,
        *,
        todo: TodoFifoQueue,
        done: FifoQueue,
        dead: FifoQueue,
        handler: JobHandler,
        store: JobStore | None = None,
        job_timeout: float = 30.0,
        emit_timeout: float = 5.0,
        history_limit: int = 1000,
        max_wait: float = 0.0,
    ) -> None:
        super().__init__("running", event="run_update")
        self.max_wait = max_wait
        self.history_limit = history_limit
        self.emitter = Emitter(emit_audio, emit_event, timeout=emit_timeout)
        self._todo, self._done, self._dead = todo, done, dead
        self._handler = handler
        self._store: JobStore = store if store is not None else MemoryStore()
        self.job_timeout = job_timeout
        # Jobs taken and not yet fully finished (terminal state saved AND announced).
        self._in_flight = 0
        # Set whenever a job is fully finished or cancelled; wait_idle() re-checks on it.
        self._settled = asyncio.Event()

    async def consume(self) -> None:
        """One consumer: take the oldest todo job, answer it, repeat until cancelled."""
        while True:
            job = await self._todo.take()
            await self.run_job(job)

    async def run_job(self, job: Job) -> None:
        """Answer one job already taken from todo; it ends done or dead."""
        # No await between take() and here: a cancelled consumer cannot drop the job.
        job.state, job.started_at = JobState.RUNNING, time.time()
        job.attempts += 1
        self.push(job)
        self._in_flight += 1
        try:
            await self._persist(job)
            await self.emitter.counts(self._todo, self)
            answer, error = await run_handler(self._handler, job, self.job_timeout, self.max_wait)
            await self._finish(job, answer, error)
        finally:
            self._in_flight -= 1
            self._settled.set()

    async def cancel_client_jobs(self, client_id: str | None) -> list[Job]:
        """Move the client's queued jobs to dead ("cancelled"); running ones finish."""
        victims = [job for job in self._todo if job.client_id == client_id]
        forgotten: list[Job] = []
        for job in victims:
            self._todo.delete_by_id_hash(job.id_hash)
            forgotten += self._to_dead(job, CANCELLED)
        for job in victims:
            await self._persist(job)
        for old in forgotten:
            await self._forget(old)
        if victims:
            await self.emitter.counts(self._todo, self._dead)
            self._settled.set()
        return victims

    def idle(self) -> bool:
        """Nothing queued and no job mid-way (its outcome is saved and spoken)."""
        return self._todo.is_empty() and self.is_empty() and self._in_flight == 0

    async def wait_idle(self) -> None:
        """Return once todo is empty and nothing is running."""
        while not self.idle():
            self._settled.clear()
            await self._settled.wait()

    async def _finish(self, job: Job, answer: str | None, error: str | None) -> None:
        self.delete_by_id_hash(job.id_hash)
        if error is None:
            job.state, job.answer, job.finished_at = JobState.DONE, answer, time.time()
            target, forgotten = self._done, remember(self._done, job, self.history_limit)
        else:
            target, forgotten = self._dead, self._to_dead(job, error)
        await self._persist(job)
        for old in forgotten:
            await self._forget(old)
        await self.emitter.counts(target, self)
        notice = expiry_notice(job)
        if notice is not None:
            await self.emitter.event(NOTICE, notice, job.client_id)
        await self.emitter.speak(speech_for(answer, error), job.client_id)

    def _to_dead(self, job: Job, error: str) -> list[Job]:
        job.state, job.error, job.finished_at = JobState.DEAD, error, time.time()
        return remember(self._dead, job, self.history_limit)

    async def _persist(self, job: Job) -> None:
        # Shielded: a shutdown arriving mid-write must not leave the store a state behind.
        await asyncio.shield(self._logged(self._store.save(job), job, "persist"))

    async def _forget(self, job: Job) -> None:
        """Drop a job that fell out of the bounded history from the store too."""
        await asyncio.shield(self._logged(self._store.delete(job.id_hash), job, "forget"))

    @staticmethod
    async def _logged(write: Awaitable[None], job: Job, what: str) -> None:
        try:
            await write
        except Exception:
            # The in-memory queues stay right; only the restart copy is stale.
            log.exception("could not %s job %s (%s)", what, job.id_hash, job.state)


async def run_handler(
    handler: JobHandler, job: Job, limit: float, max_wait: float = 0.0
) -> tuple[str | None, str | None]:
    """(answer, None) on success, (None, error text) on any failure or ``limit`` s.

    A job that waited more than ``max_wait`` s (0: no limit) is not started: its asker
    has likely given up, and answering it would only delay the questions behind it.
    """
    waited = (job.started_at or time.time()) - job.created_at
    JOB_WAIT_SECONDS.observe(max(0.0, waited))
    if max_wait and waited > max_wait:
        return None, f"{EXPIRED}: waited {waited:.0f} s (the limit is {max_wait:g} s)"
    try:
        async with asyncio.timeout(limit) as scope:
            answer = await handler(job)
    except TimeoutError as exc:
        if scope.expired():
            return None, f"timed out after {limit:g} s"
        return None, _describe(exc)
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise  # we are being stopped: leave the job running, it resumes later
        # The handler cancelled itself (a stray CancelledError): that is a failure.
        return None, "handler was cancelled"
    except Exception as exc:
        log.warning("job %s failed: %s", job.id_hash, _describe(exc))
        return None, _describe(exc)
    if not isinstance(answer, str) or not answer.strip():
        return None, f"handler returned {answer!r}, not an answer text"
    return answer, None


def speech_for(answer: str | None, error: str | None) -> str:
    """What the asker hears when its job ends: the answer, or an apology."""
    if error is None:
        return answer or ""
    if error.startswith(EXPIRED):
        return EXPIRED_APOLOGY
    return TIMEOUT_APOLOGY if error.startswith("timed out") else APOLOGY


def expiry_notice(job: Job) -> dict[str, str] | None:
    """The ``error`` frame's fields for the asker of a job that expired, or None (no
    asker to tell, or the job did not expire)."""
    error = job.error or ""
    if job.client_id is None or not error.startswith(EXPIRED):
        return None
    return {"code": EXPIRED, "message": error, "id_hash": job.id_hash}


def remember(history: FifoQueue, job: Job, limit: int) -> list[Job]:
    """Add a finished job to done or dead; return the oldest ones past ``limit``."""
    history.push(job)
    forgotten = []
    while history.size() > limit:
        old = history.pop()
        assert old is not None
        forgotten.append(old)
    return forgotten


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
