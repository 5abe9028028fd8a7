"""A job handler for the parity suite, loaded by both servers as
``GENIE_JOB_HANDLER=tests.parity.handlers:gated``.

While the file named by ``$PARITY_GATE`` exists, every job waits in ``running``; remove
the file and they are answered by the offline handler. The test decides when jobs
finish, so the order of events is the same on every run and every server.
"""

from __future__ import annotations

import asyncio
import os

from queues import Job, offline

GATE_ENV = "PARITY_GATE"


async def gated(job: Job) -> str:
    gate = os.environ.get(GATE_ENV)
    # Polled: a file is the one signal both servers' processes and the test share.
    while gate and os.path.exists(gate):  # noqa: ASYNC110, ASYNC240 - a cheap stat
        await asyncio.sleep(0.01)
    return await offline(job)
