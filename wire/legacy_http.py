"""Outcomes of the legacy Genie HTTP routes, for every adapter. No framework imports.

Both servers answer the original page's routes (``/push``, ``/get_queue/<name>``,
``/get_tts_audio``, ``/get-answer/<id>``, ``/delete-snapshot/<id>``, ``/static/<file>``)
with the same status codes, texts and JSON bodies; what they say is decided here, how
they send it is each adapter's business.

Every error body is ``{"code": ..., "message": ...}`` (plus ``detail`` for a missing
parameter, the shape FastAPI's request validation gives). Status codes: bad question or
text 422, over the length limit 413, unknown job, queue or file 404, job still queued
or running 409, queues not running or every speech provider failed 503.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from queues.errors import (
    JobActiveError,
    JobNotFoundError,
    QuestionTooLongError,
    QueueBusyError,
    QueueClosedError,
    QueueError,
    QueueUnavailableError,
    UnknownQueueError,
)
from queues.models import Job, JobState
from tts.admission import SpeechBusyError
from tts.errors import ProviderError, TextTooLongError, TTSError
from wire import legacy

TEXT_PLAIN = "text/plain; charset=utf-8"
APPLICATION_JSON = "application/json"
# Headers of every audio answer: play in the page, never reuse a stale answer.
AUDIO_HEADERS = {"Content-Disposition": "inline", "Cache-Control": "no-cache"}
# The names the original page asks for (``legacy.QUEUE_NAMES`` also takes "running").
QUEUE_NAMES = ("todo", "run", "done", "dead")


class HttpError(Exception):
    """An error answer: ``status`` and the JSON ``body()``."""

    def __init__(
        self, status: int, code: str, message: str, extra: dict[str, Any] | None = None
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message
        self.extra = extra or {}

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, **self.extra}


def json_bytes(body: Any) -> bytes:
    """A JSON body, byte for byte as Starlette's ``JSONResponse`` renders it."""
    return json.dumps(
        body, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")
    ).encode("utf-8")


def status_for(exc: QueueError | TTSError) -> int:
    """The HTTP status of a core error (queues or speech)."""
    if isinstance(exc, QuestionTooLongError | TextTooLongError):
        return 413
    if isinstance(exc, JobNotFoundError | UnknownQueueError):
        return 404
    if isinstance(exc, JobActiveError):
        return 409
    if isinstance(exc, QueueBusyError | SpeechBusyError):  # the client's share: 429; all: 503
        return 429 if exc.reason == "client" else 503
    if isinstance(exc, QueueClosedError | QueueUnavailableError | ProviderError):
        return 503
    return 422


# The errors that say when to ask again (``retry_after``).
ASK_LATER = QueueUnavailableError | QueueBusyError | SpeechBusyError


def retry_headers(exc: QueueError | TTSError) -> dict[str, str] | None:
    """``Retry-After`` (whole seconds) for an error that says when to ask again."""
    if isinstance(exc, ASK_LATER):
        return {"Retry-After": str(max(1, round(exc.retry_after)))}
    return None


def error_for(exc: QueueError | TTSError) -> HttpError:
    extra = {"retry_after": exc.retry_after} if isinstance(exc, ASK_LATER) else None
    return HttpError(status_for(exc), exc.code, str(exc), extra)


def missing_param(name: str) -> HttpError:
    """A required query parameter is absent (worded like FastAPI's validation error)."""
    detail = [{"loc": ["query", name], "msg": "Field required", "type": "missing"}]
    return HttpError(422, "invalid_request", f"query.{name}: Field required", {"detail": detail})


def unknown_queue(name: str) -> HttpError:
    return HttpError(
        404, "unknown_queue", f"unknown queue {name!r}; valid: {', '.join(QUEUE_NAMES)}"
    )


def no_answer(id_hash: str) -> HttpError:
    return HttpError(404, "job_not_found", f"no answered job {id_hash!r}")


def no_static_file(path: str) -> HttpError:
    return HttpError(404, "not_found", f"no file {path!r} under /static")


# --- route logic ----------------------------------------------------------------------


def push_question(raw_query: str | bytes) -> str:
    """The question of ``/push`` from the raw query string (it may arrive unencoded).

    Only its presence is checked here; the queue validates the text itself.
    """
    question = legacy.parse_push_question(raw_query)
    if question is None:
        raise missing_param("question")
    return question


def pushed(job: Job) -> str:
    """The text ``/push`` answers with."""
    return f"Job [{job.id_hash}] added to the queue"


def checked_queue_name(name: str) -> str:
    """``name`` if it names a queue (case and spelling exact, as the original)."""
    if name not in legacy.QUEUE_NAMES:
        raise unknown_queue(name)
    return name


def answer_text(job: Job | None, id_hash: str) -> str:
    """What ``/get-answer/<id_hash>`` speaks: the answer of a done job, else 404."""
    if job is None or job.state is not JobState.DONE or not job.answer:
        raise no_answer(id_hash)
    return job.answer


def deleted(id_hash: str) -> str:
    """The text ``/delete-snapshot/<id_hash>`` answers with."""
    return f"Deleted snapshot [{id_hash}]"


def static_file(root: Path, path: str) -> Path:
    """The file ``/static/<path>`` names, never anything outside ``root``."""
    base = root.resolve()
    try:
        # resolve() folds "..", symlinks and absolute parts; then the result must be inside.
        target = (base / path).resolve()
        found = target.is_relative_to(base) and target.is_file()
    except (OSError, ValueError):  # a NUL byte, a name too long for the file system
        found = False
    if not found:
        raise no_static_file(path)
    return target
