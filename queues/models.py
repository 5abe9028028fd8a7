"""The job and the callbacks the queues are given. No web framework is imported here."""

from __future__ import annotations

import enum
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from queues.errors import EmptyQuestionError, QuestionError, QuestionTooLongError

MAX_QUESTION_CHARS = 5000


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
    # How many times a consumer has started this job (> 1 after a resume).
    attempts: int = 0

    @property
    def finished(self) -> bool:
        return self.state in (JobState.DONE, JobState.DEAD)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready fields (state as its string value)."""
        data = asdict(self)
        data["state"] = self.state.value
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Job:
        fields = {key: data[key] for key in cls.__dataclass_fields__ if key in data}
        fields["state"] = JobState(fields.get("state", JobState.TODO))
        return cls(**fields)


def validate_question(question: object, limit: int = MAX_QUESTION_CHARS) -> str:
    """The question to queue, stripped; a QuestionError says why it cannot be."""
    if not isinstance(question, str):
        raise QuestionError(f"the question must be text, not {type(question).__name__}")
    text = question.strip()
    if not text:
        raise EmptyQuestionError()
    if len(text) > limit:
        raise QuestionTooLongError(len(text), limit)
    return text


# emit_audio(msg, client_id): speak ``msg`` to that client (None = broadcast).
EmitAudio = Callable[[str, str | None], Awaitable[None]]
# emit_event(name, data, client_id): e.g. ("todo_update", {"value": 3}, None).
EmitEvent = Callable[[str, dict[str, Any], str | None], Awaitable[None]]
# A job handler answers a question (it may be slow or raise).
JobHandler = Callable[[Job], Awaitable[str]]
