"""Runs JobQueues on a SQLite file with a handler that never finishes, until killed.

Used by test_store.py: ``python -m tests.queues.slow_worker DB QUESTION [QUESTION...]``
pushes the questions; the first one stays ``running`` until the process is SIGKILLed.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from queues import Job, JobQueues, SqliteStore


async def _never_answers(job: Job) -> str:
    await asyncio.Event().wait()
    raise AssertionError("unreachable")


async def _quiet(*args: Any) -> None:
    return None


async def main(db: str, questions: list[str]) -> None:
    queues = JobQueues(
        handler=_never_answers,
        emit_audio=_quiet,
        emit_event=_quiet,
        store=SqliteStore(db),
        job_timeout=3600,
    )
    async with queues:
        for question in questions:
            await queues.push_job(question, client_id="crash-test")
        print("pushed", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2:]))
