"""The legacy Genie-in-the-Box wire: Socket.IO event payloads and HTTP helpers.

Shapes follow the original Flask server and its page (``src/static/queue.html``):
events ``time_update {date}``, ``todo_update|run_update|done_update|dead_update {value}``,
``audio_update {audioURL}``, ``notification_sound_update {soundFile}``; HTTP
``/get_queue/<name>`` -> ``{"<name>_jobs": ["<li id='ID'>...</li>", ...]}`` newest first.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from datetime import datetime
from typing import Protocol
from urllib.parse import unquote, unquote_plus

TIME_UPDATE = "time_update"
AUDIO_UPDATE = "audio_update"
NOTIFICATION_SOUND_UPDATE = "notification_sound_update"
QUEUE_EVENTS = ("todo_update", "run_update", "done_update", "dead_update")

# Names the page asks /get_queue/<name> for -> the queue they mean. The JSON key
# echoes the name asked for ("run" -> "run_jobs"), as the page reads ``data.run_jobs``.
QUEUE_NAMES = {
    "todo": "todo",
    "run": "running",
    "running": "running",
    "done": "done",
    "dead": "dead",
}


class ListedJob(Protocol):
    id_hash: str
    question: str
    created_at: float


def time_update(now: datetime | None = None) -> dict[str, str]:
    now = now or datetime.now().astimezone()
    return {"date": now.strftime("%Y-%m-%d @ %H:%M:%S %Z").strip()}


def audio_update(audio_url: str) -> dict[str, str]:
    return {"audioURL": audio_url}


def queue_count(size: int) -> dict[str, int]:
    return {"value": size}


def notification_sound(sound_url: str) -> dict[str, str]:
    return {"soundFile": sound_url}


def job_li(job: ListedJob, *, playable: bool = False) -> str:
    """One list item. User text is HTML-escaped: the page inserts it with innerHTML.

    ``playable`` (the done list) wraps the text in ``span.play`` and adds ``span.delete``,
    the hooks the original page binds its play-answer and delete-snapshot clicks to.
    """
    when = datetime.fromtimestamp(job.created_at).strftime("%Y-%m-%d @ %H:%M:%S")
    text = f"{when} Q: {html.escape(job.question, quote=True)}"
    job_id = html.escape(job.id_hash, quote=True)
    if playable:
        text = f"<span class='play'>{text}</span> <span class='delete'></span>"
    return f"<li id='{job_id}'>{text}</li>"


def queue_listing(name: str, jobs_newest_first: Iterable[ListedJob]) -> dict[str, list[str]]:
    """The /get_queue/<name> body; ``name`` as the client asked for it."""
    playable = QUEUE_NAMES.get(name) == "done"
    return {f"{name}_jobs": [job_li(job, playable=playable) for job in jobs_newest_first]}


def parse_push_question(raw_query: str | bytes) -> str | None:
    """The question of ``/push?question=...`` read from the *raw* query string.

    The original page sends ``fetch("/push?question=" + text)`` without encoding, so
    the text may hold '&', '=' or '+' literally (the browser only escapes spaces and
    non-ASCII). Everything after ``question=`` is therefore the question. '+' means a
    space only for form-encoded senders, recognised by having no ``%20`` at all.
    Returns None when there is no ``question`` parameter.
    """
    if isinstance(raw_query, bytes):
        raw_query = raw_query.decode("latin-1")
    if raw_query.startswith("question="):
        raw = raw_query[len("question=") :]
    else:
        marker = raw_query.find("&question=")
        if marker < 0:
            return None
        raw = raw_query[marker + len("&question=") :]
    if "%20" not in raw and "+" in raw:
        return unquote_plus(raw, errors="replace")
    return unquote(raw, errors="replace")
