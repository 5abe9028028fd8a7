"""``python -m flask_app`` stopped by SIGTERM while a job runs, with the SQLite store:
the job is left ``running`` in the file (the one queued behind it ``todo``) and the next
start resumes both; each ends done exactly once. The same core path as FastAPI's
(``tests/fastapi_app/test_shutdown.py``): ``JobQueues`` cancels its consumers on exit
and restores the store on enter.

One chain of three processes on one file covers both async modes in three starts:
threading is stopped mid-job, gevent resumes the job and is stopped mid-job too, and
threading resumes it again and finishes it.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import anyio
import httpx
import pytest

from tests.flask_app.launch import ServerProcess, flask_server
from tests.fleet.nodes import SLEEPY, eventually

pytestmark = pytest.mark.anyio

SLOW, QUICK = "sleep 1.5", "what is 2 plus 2"


def rows(db: Path) -> dict[str, tuple[str, int]]:
    """question -> (state, attempts), read from the file like an outsider."""
    with contextlib.closing(sqlite3.connect(db)) as conn:
        found = conn.execute("SELECT question, state, attempts FROM jobs").fetchall()
    return {question: (state, attempts) for question, state, attempts in found}


async def listing(http: httpx.AsyncClient, name: str) -> list[str]:
    return (await http.get(f"/get_queue/{name}")).json()[f"{name}_jobs"]


async def stop_mid_job(server: ServerProcess, http: httpx.AsyncClient) -> None:
    """SIGTERM once the slow job runs; the process exits cleanly."""
    running = await eventually(lambda: listing(http, "run"))
    assert len(running) == 1 and SLOW in running[0]
    assert await anyio.to_thread.run_sync(server.signal) == 0, server.tail()
    assert "Traceback" not in server.log_text(), server.tail()


async def test_sigterm_mid_job_keeps_it_and_a_later_start_finishes_it_once(
    tmp_path: Path,
) -> None:
    db = tmp_path / "jobs.db"
    settings = {"store": f"sqlite:///{db}", "job_handler": SLEEPY}
    with flask_server("threading", settings=settings) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            for question in (SLOW, QUICK):
                assert (await http.get("/push", params={"question": question})).is_success
            await stop_mid_job(server, http)
    assert rows(db) == {SLOW: ("running", 1), QUICK: ("todo", 0)}

    with flask_server("gevent", settings=settings) as server:  # resumes, then stops again
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            await stop_mid_job(server, http)
    assert rows(db) == {SLOW: ("running", 2), QUICK: ("todo", 0)}

    with flask_server("threading", settings=settings) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:

            async def both_done() -> list[str]:
                done = await listing(http, "done")
                return done if len(done) == 2 else []

            done = await eventually(both_done, wait=30)
            assert sorted(SLOW in item for item in done) == [False, True]  # once each
            assert await listing(http, "dead") == []
        assert await anyio.to_thread.run_sync(server.signal) == 0
    assert rows(db) == {SLOW: ("done", 3), QUICK: ("done", 1)}
