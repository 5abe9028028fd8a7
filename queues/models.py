"""The job and the callbacks the queues are given. No web framework is imported here."""

from __future__ import annotations

import enum
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any


class JobState(enum.StrEnum):
    TODO = "todo"
    RUNNING = "running"
    DONE = "done"
    DEAD = "dead"


@dataclass(slots=True)
class Job:
    question: str
    client_id: str | None = None
    id_hash: str = field(default_factory=lambda: uuid.uuid4().hex)
    state: JobState = JobState.TODO
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    answer: str | None = None
    error: str | None = None

    @property
    def finished(self) -> bool:
        return self.state in (JobState.DONE, JobState.DEAD)


# emit_audio(msg, client_id): speak ``msg`` to that client (None = broadcast).
EmitAudio = Callable[[str, str | None], Awaitable[None]]
# emit_event(name, data, client_id): e.g. ("todo_update", {"value": 3}, None).
EmitEvent = Callable[[str, dict[str, Any], str | None], Awaitable[None]]
# A job handler answers a question (it may be slow or raise).
JobHandler = Callable[[Job], Awaitable[str]]
