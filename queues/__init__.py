"""Framework-free asyncio job queues: todo -> running -> done | dead."""

from __future__ import annotations

from queues.errors import (
    JobActiveError,
    JobNotFoundError,
    QuestionError,
    QueueClosedError,
    QueueError,
    QueueUnavailableError,
    UnknownQueueError,
)
from queues.fifo import FifoQueue, TodoFifoQueue
from queues.handlers import OfflineHandler, OpenAIHandler, load_handler, offline
from queues.models import MAX_QUESTION_CHARS, EmitAudio, EmitEvent, Job, JobHandler, JobState
from queues.running import RunningFifoQueue
from queues.service import JobQueues, JobService, build_job_queues
from queues.store import JobStore, MemoryStore, SqliteStore, open_store

__all__ = [
    "MAX_QUESTION_CHARS",
    "EmitAudio",
    "EmitEvent",
    "FifoQueue",
    "Job",
    "JobActiveError",
    "JobHandler",
    "JobNotFoundError",
    "JobQueues",
    "JobService",
    "JobState",
    "JobStore",
    "MemoryStore",
    "OfflineHandler",
    "OpenAIHandler",
    "QuestionError",
    "QueueClosedError",
    "QueueError",
    "QueueUnavailableError",
    "RunningFifoQueue",
    "SqliteStore",
    "TodoFifoQueue",
    "UnknownQueueError",
    "build_job_queues",
    "load_handler",
    "offline",
    "open_store",
]
