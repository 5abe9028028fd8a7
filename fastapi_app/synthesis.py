"""The FastAPI side of the synthesis caps (``tts.admission``): whose share a request
counts against, and how a slot is held for as long as a task synthesizes.

A refused request gets 503 (total) or 429 (the client's share) with ``Retry-After``
from the app's error handlers (``wire.legacy_http``); ``/v1/audio/speech`` answers in
OpenAI's error shape, ``/ws/tts`` with an ``error`` frame ``busy``.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import Depends
from starlette.requests import HTTPConnection

from fastapi_app.deps import Subject, caller_key
from tts.admission import Lease


async def caller(conn: HTTPConnection, subject: Subject) -> str:
    """The client a synthesis counts against: the token's subject, else the address."""
    return caller_key(conn, subject)


Caller = Annotated[str, Depends(caller)]


def release_when_done(task: asyncio.Task[Any] | None, lease: Lease) -> None:
    """Hold ``lease`` for as long as ``task`` synthesizes: done callbacks run however a
    task ends, even when it is cancelled before its first step."""
    if task is None or task.done():
        lease.release()
    else:
        task.add_done_callback(lambda _: lease.release())
