"""Job handlers for tests, loaded by servers through ``job_handler="module:callable"``."""

from __future__ import annotations

import asyncio
import re

from queues import Job, offline

_SLEEP = re.compile(r"^sleep ([0-9.]+)")


async def sleepy(job: Job) -> str:
    """``sleep N`` takes N seconds to answer; anything else is the offline handler."""
    match = _SLEEP.match(job.question)
    if match is not None:
        await asyncio.sleep(float(match.group(1)))
        return f"I slept {match.group(1)} seconds."
    return await offline(job)
