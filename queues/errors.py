"""Queue errors. Adapters map them: QuestionError -> 413/422 or an ``error`` frame,
JobNotFoundError -> 404, JobActiveError -> 409, UnknownQueueError -> 404/422."""

from __future__ import annotations

from collections.abc import Iterable


class QueueError(Exception):
    """Base of every queue error; ``code`` is a stable machine-readable name."""

    code = "queue_error"


class QueueClosedError(QueueError):
    code = "queues_closed"

    def __init__(self) -> None:
        super().__init__("the job queues are not running (enter `async with JobQueues(...)`)")


class QueueUnavailableError(QueueError):
    """The shared queue (Redis) cannot be reached: nothing was queued; ask again later."""

    code = "queue_unavailable"

    def __init__(self, detail: str, retry_after: float = 2.0) -> None:
        super().__init__(f"the job queue is unavailable ({detail}); nothing was queued")
        self.retry_after = retry_after


class StoreUnavailableError(QueueUnavailableError):
    """The job store refused a write (SQLite locked by another process, disk full). A
    push or delete it refuses is not made in memory either; ask again later."""

    code = "store_unavailable"

    def __init__(self, detail: str, retry_after: float = 2.0) -> None:
        QueueError.__init__(
            self, f"the job store cannot save ({detail}); nothing was changed, ask again later"
        )
        self.retry_after = retry_after


class QueueBusyError(QueueError):
    """Too much work is queued (all of it, or this client's): nothing was queued."""

    code = "busy"
    # What the asker of a refused legacy question hears (it has no other channel).
    SPOKEN = "I'm busy, please ask again in a moment."

    def __init__(self, reason: str, limit: int, retry_after: float) -> None:
        whose = "your questions" if reason == "client" else "questions"
        super().__init__(
            f"busy: {limit} {whose} are already waiting; ask again in {retry_after:g} s"
        )
        self.reason, self.limit, self.retry_after = reason, limit, retry_after


class JobNotFoundError(QueueError, LookupError):
    code = "job_not_found"

    def __init__(self, id_hash: str, where: str = "any queue") -> None:
        super().__init__(f"no job {id_hash!r} in {where}")
        self.id_hash = id_hash


class JobActiveError(QueueError):
    """The job exists but is still queued or running, so it cannot be deleted."""

    code = "job_active"

    def __init__(self, id_hash: str, state: str) -> None:
        super().__init__(f"job {id_hash!r} is {state}; only done or dead jobs can be deleted")
        self.id_hash, self.state = id_hash, state


class UnknownQueueError(QueueError, ValueError):
    code = "unknown_queue"

    def __init__(self, name: str, allowed: Iterable[str]) -> None:
        self.name, self.allowed = name, list(allowed)
        super().__init__(f"unknown queue {name!r}; valid queues: {', '.join(self.allowed)}")


class QuestionError(QueueError, ValueError):
    """The question cannot be queued: empty, not text, or too long."""

    code = "invalid_question"


class EmptyQuestionError(QuestionError):
    code = "empty_question"

    def __init__(self) -> None:
        super().__init__("the question is empty; say or type something to ask")


class QuestionTooLongError(QuestionError):
    code = "question_too_long"

    def __init__(self, length: int, limit: int) -> None:
        super().__init__(f"the question is {length} characters; the limit is {limit}")
        self.length, self.limit = length, limit


class HandlerConfigError(QueueError, ValueError):
    """``job_handler`` names nothing usable (unknown name, bad import path)."""

    code = "bad_job_handler"


class StoreConfigError(QueueError, ValueError):
    """``store`` is not 'memory' or 'sqlite:///path'."""

    code = "bad_job_store"


class HandlerError(QueueError):
    """A handler failed in a way worth a readable message (e.g. HTTP 401 from a chat API)."""

    code = "handler_failed"
