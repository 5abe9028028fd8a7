"""``JobQueues``: the one object an adapter holds. It owns the four queues, the store and
the consumer tasks, and is an async context manager::

    async with JobQueues(handler=offline, emit_audio=..., emit_event=...) as queues:
        job = await queues.push_job("what is 12 times 7", client_id="abc")

On enter it restores the store: jobs left ``running`` by a crash or a shutdown go back to
the front of todo (oldest first), then the queued ones; done/dead come back as history.
On exit the consumers are cancelled and gathered; a job cut mid-run stays ``running`` in
the store so the next start resumes it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

from queues.admission import NO_CAPS, Admission
from queues.errors import (
    JobActiveError,
    JobNotFoundError,
    QueueBusyError,
    QueueClosedError,
    UnknownQueueError,
)
from queues.fifo import FifoQueue, TodoFifoQueue
from queues.handlers import load_handler
from queues.models import EmitAudio, EmitEvent, Job, JobHandler, JobState
from queues.running import RunningFifoQueue, remember
from queues.store import JobStore, MemoryStore, open_store

if TYPE_CHECKING:
    from config import Settings

log = logging.getLogger(__name__)

# counts() keys -> the event each queue's size is announced under.
COUNT_EVENTS = {"todo": "todo_update", "running": "run_update", "done": "done_update",
                "dead": "dead_update"}  # fmt: skip

# Accepted names for queue(); "run" is what the original Genie UI calls it.
QUEUE_ALIASES = {
    "todo": "todo",
    "run": "running",
    "running": "running",
    "done": "done",
    "dead": "dead",
}


class JobService(Protocol):
    """What an adapter holds: this process's ``JobQueues`` or the fleet's Redis queues
    (``fleet.RedisJobQueues``). Both are async context managers with this API."""

    async def push_job(self, question: str, client_id: str | None = None) -> Job: ...

    async def find(self, id_hash: str) -> Job | None: ...

    async def unfinished(self, ids: Iterable[str]) -> set[str]: ...

    async def listing(self, name: str) -> list[Job]: ...

    async def delete(self, id_hash: str) -> Job: ...

    async def cancel_client_jobs(self, client_id: str) -> list[Job]: ...

    def counts(self) -> dict[str, int]: ...

    def running_here(self) -> int: ...

    # Per-client frames. In one process they are delivered at once and ``/ws`` sessions
    # resume locally; in a fleet they are numbered and kept in Redis, so a session can
    # resume on any process (``shares_sessions``).
    shares_sessions: bool

    async def attach_client(self, client_id: str, subject: str | None) -> None: ...

    async def note_voice(self, client_id: str, voice: str | None, speed: float | None) -> None: ...

    async def resume_client(
        self, client_id: str, subject: str | None, last_seq: int
    ) -> tuple[int, str | None, float | None, list[dict[str, Any]]]: ...

    async def replay(self, client_id: str, frames: list[dict[str, Any]]) -> None: ...

    def health(self) -> dict[str, Any]: ...

    async def wait_idle(self) -> None: ...

    async def __aenter__(self) -> JobService: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class JobQueues:
    """The in-process queues (the default): one process, optionally a SQLite store."""

    shares_sessions = False

    def __init__(
        self,
        *,
        handler: JobHandler,
        emit_audio: EmitAudio,
        emit_event: EmitEvent,
        store: JobStore | None = None,
        consumers: int = 1,
        job_timeout: float = 30.0,
        max_attempts: int = 3,
        emit_timeout: float = 5.0,
        history_limit: int = 1000,
        admission: Admission = NO_CAPS,
        max_wait: float = 0.0,
    ) -> None:
        if consumers < 0:
            raise ValueError(f"consumers must be 0 or more, not {consumers}")
        if job_timeout <= 0:
            raise ValueError(f"job_timeout must be positive, not {job_timeout}")
        self.store: JobStore = store if store is not None else MemoryStore()
        self.consumers = consumers
        self.admission = admission
        # A job interrupted this many times (crash loop) is given up instead of resumed.
        self.max_attempts = max_attempts
        self._handler = handler
        self.todo = TodoFifoQueue(
            emit_audio, emit_event, store=self.store, emit_timeout=emit_timeout
        )
        self.done = FifoQueue("done")
        self.dead = FifoQueue("dead")
        self.running = RunningFifoQueue(
            emit_audio,
            emit_event,
            todo=self.todo,
            done=self.done,
            dead=self.dead,
            handler=handler,
            store=self.store,
            job_timeout=job_timeout,
            emit_timeout=emit_timeout,
            history_limit=history_limit,
            max_wait=max_wait,
        )
        self.history_limit = history_limit
        self._queues: dict[str, FifoQueue] = {
            "todo": self.todo,
            "running": self.running,
            "done": self.done,
            "dead": self.dead,
        }
        self._tasks: list[asyncio.Task[None]] = []
        self._state = "new"  # new -> open -> closed

    # --- lifecycle ------------------------------------------------------------------------

    async def __aenter__(self) -> JobQueues:
        if self._state != "new":
            raise RuntimeError("a JobQueues can be entered only once")
        await self.store.open()
        try:
            await self._restore()
        except BaseException:
            await self.store.close()
            raise
        for index in range(self.consumers):
            task = asyncio.create_task(self.running.consume(), name=f"genie-consumer-{index}")
            task.add_done_callback(report_crash)
            self._tasks.append(task)
        self._state = "open"
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._state = "closed"
        tasks, self._tasks = self._tasks, []
        await cancel_all(tasks)
        try:
            await close_handler(self._handler)
        finally:
            await self.store.close()

    async def _restore(self) -> None:
        resumed: list[Job] = []
        forgotten: list[Job] = []
        for job in await self.store.load():
            if job.state is JobState.RUNNING:
                resumed.append(job)
            elif job.state is JobState.TODO:
                self.todo.push(job)
            else:
                history = self.done if job.state is JobState.DONE else self.dead
                forgotten += remember(history, job, self.history_limit)
        if resumed:
            log.info("%d job(s) were interrupted while running", len(resumed))
        for job in resumed:
            if job.attempts >= self.max_attempts:
                job.state, job.finished_at = JobState.DEAD, time.time()
                job.error = f"interrupted {job.attempts} times while running; given up"
                forgotten += remember(self.dead, job, self.history_limit)
            else:
                job.state = JobState.TODO
            await self.store.save(job)
        for job in forgotten:
            await self.store.delete(job.id_hash)
        # push_front in reverse keeps the resumed jobs oldest first, ahead of the queued.
        for job in reversed(resumed):
            if job.state is JobState.TODO:
                self.todo.push_front(job)

    # --- API ------------------------------------------------------------------------------

    async def push_job(self, question: str, client_id: str | None = None) -> Job:
        """Queue a question (QuestionError if empty or over 5,000 characters,
        QueueBusyError past a cap: see ``queues.admission``)."""
        if self._state != "open":
            raise QueueClosedError()
        mine = 0
        if client_id is not None and self.admission.max_per_client:
            mine = sum(1 for job in self.todo if job.client_id == client_id)
        try:
            self.admission.check(len(self.todo), mine)
        except QueueBusyError:
            if client_id is None:  # a legacy page hears why; /ws gets an error frame
                await self.todo.emitter.speak(QueueBusyError.SPOKEN, None)
            raise
        # No await since the check: nothing can be queued in between.
        return await self.todo.push_job(question, client_id)

    def get(self, id_hash: str) -> Job | None:
        """The job with that id in any queue, or None."""
        for queue in (self.todo, self.running, self.done, self.dead):
            job = queue.get_by_id_hash(id_hash)
            if job is not None:
                return job
        return None

    async def find(self, id_hash: str) -> Job | None:
        return self.get(id_hash)

    async def unfinished(self, ids: Iterable[str]) -> set[str]:
        """The ids among ``ids`` still queued or running."""
        return {i for i in ids if i in self.todo or i in self.running}

    async def listing(self, name: str) -> list[Job]:
        """A queue's jobs, newest first ("todo", "run"/"running", "done", "dead")."""
        return self.queue(name).jobs()

    async def delete(self, id_hash: str) -> Job:
        """Forget a finished (done or dead) job; JobActiveError if it is still queued."""
        for queue in (self.done, self.dead):
            if id_hash in queue:
                await self.store.delete(id_hash)  # first: a refused write changes nothing
                job = queue.delete_by_id_hash(id_hash)
                if job is None:  # forgotten meanwhile (history limit, another delete)
                    break
                await self.todo.emitter.counts(queue)
                return job
        active = self.get(id_hash)
        if active is not None:
            raise JobActiveError(id_hash, active.state.value)
        raise JobNotFoundError(id_hash)

    async def cancel_client_jobs(self, client_id: str) -> list[Job]:
        """The client's queued jobs move to dead ("cancelled"); running ones finish."""
        return await self.running.cancel_client_jobs(client_id)

    def queue(self, name: str) -> FifoQueue:
        """ "todo", "run"/"running", "done" or "dead"."""
        return self._queues[queue_key(name)]

    def counts(self) -> dict[str, int]:
        return {name: queue.size() for name, queue in self._queues.items()}

    def running_here(self) -> int:
        """Jobs this process's consumers are running now."""
        return self.running.size()

    async def attach_client(self, client_id: str, subject: str | None) -> None:
        return None  # one process: every client is here

    async def note_voice(self, client_id: str, voice: str | None, speed: float | None) -> None:
        return None

    async def resume_client(
        self, client_id: str, subject: str | None, last_seq: int
    ) -> tuple[int, str | None, float | None, list[dict[str, Any]]]:
        raise LookupError(client_id)  # sessions are resumed by the adapter, in memory

    async def replay(self, client_id: str, frames: list[dict[str, Any]]) -> None:
        return None

    def health(self) -> dict[str, Any]:
        head = self.todo.head()
        return {"backend": "memory",
                "status": "busy" if self.admission.full(len(self.todo)) else "ok",
                "consumers": self.consumers, "running": self.running_here(),
                "oldest_wait": time.time() - head.created_at if head else 0.0}  # fmt: skip

    async def wait_idle(self) -> None:
        """Return once todo is empty and no job is running (its outcome announced)."""
        await self.running.wait_idle()


def queue_key(name: object) -> str:
    """The queue a name means ("run" -> "running"); UnknownQueueError if none."""
    key = QUEUE_ALIASES.get(name.strip().lower()) if isinstance(name, str) else None
    if key is None:
        raise UnknownQueueError(str(name), QUEUE_ALIASES)
    return key


def report_crash(task: asyncio.Task[None]) -> None:
    """Done-callback of the queues' tasks (consumers, upkeep): they only end by
    cancellation; anything else is a bug worth shouting about."""
    if not task.cancelled() and task.exception() is not None:
        log.critical("queue task %s crashed", task.get_name(), exc_info=task.exception())


async def cancel_all(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def close_handler(handler: JobHandler) -> None:
    """Close a handler that holds resources (an ``aclose()`` coroutine), e.g. a client."""
    aclose = getattr(handler, "aclose", None)
    if aclose is not None:
        await aclose()


def build_job_queues(
    settings: Settings, emit_audio: EmitAudio, emit_event: EmitEvent, *, server: str
) -> JobService:
    """The queues ``config.Settings`` asks for: the fleet's on Redis when
    ``redis_url`` is set, else this process's (handler, store, consumers, timeout).
    ``server`` ("flask", "fastapi") names this process to its fleet peers."""
    if settings.redis_url:
        # Imported here: fleet builds on this module (a top-level import is circular).
        from fleet import RedisJobQueues

        return RedisJobQueues.from_settings(settings, emit_audio, emit_event, server=server)
    if settings.consumers == 0:
        log.warning("GENIE_CONSUMERS=0 without GENIE_REDIS_URL: no process answers jobs")
    return JobQueues(
        handler=load_handler(settings),
        emit_audio=emit_audio,
        emit_event=emit_event,
        store=open_store(settings.store, settings.store_busy_timeout),
        consumers=settings.consumers,
        job_timeout=settings.job_timeout,
        history_limit=settings.history_limit,
        admission=Admission.from_settings(settings),
        max_wait=settings.max_wait,
    )
