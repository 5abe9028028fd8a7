"""Faults of the SQLite job store, over the wire: the file locked by another process
(``BEGIN EXCLUSIVE``) or full (SQLite's real ``SQLITE_FULL``, raised by capping the
server's own connection with ``PRAGMA max_page_count``: a tiny filesystem needs root).

A push the store cannot save is refused at once with a clear error (HTTP 503 with
``Retry-After``, ``/ws`` ``error`` frame ``unavailable``), the asker hears nothing of
it, the queues and the file still agree, and pushes work again once the fault is gone.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from queues.fifo import THINKING
from tests.fastapi_app.helpers import WsClient
from tests.fleet.nodes import answer_to, eventually, said
from tests.servers import ThreadServer

pytestmark = pytest.mark.anyio

QUEUES = ("todo", "run", "done", "dead")
# Longer than a 4 KiB page: its row needs a new page, which a full file cannot give.
BIG = "what is 1 plus 1 " + "x" * 4500
ANSWER = "1 plus 1 is 2."


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("store") / "jobs.db"


@pytest.fixture(scope="module")
def server(db: Path) -> Iterator[ThreadServer]:
    settings = {"store": f"sqlite:///{db}", "store_busy_timeout": 0.3}
    with ThreadServer(**settings) as running:
        yield running


@contextlib.contextmanager
def locked(db: Path) -> Iterator[None]:
    """Another connection holds the write lock, as a backup or a second writer would."""
    with contextlib.closing(sqlite3.connect(db, isolation_level=None)) as conn:
        conn.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            conn.execute("ROLLBACK")


@contextlib.contextmanager
def full(server: ThreadServer) -> Iterator[None]:
    """The file may not grow by a page: every write needing one fails SQLITE_FULL.

    ``max_page_count`` belongs to a connection, so it is set on the server's own.
    """
    conn = server.runtime.queues.store._conn  # the store's one aiosqlite connection

    async def cap(pages: int | None) -> None:
        if pages is None:
            await conn.execute("VACUUM")  # no free pages left inside the file either
            pages = (await (await conn.execute("PRAGMA page_count")).fetchone())[0]
        await conn.execute(f"PRAGMA max_page_count = {pages}")

    server.call(cap, None)
    try:
        yield
    finally:
        server.call(cap, 1 << 30)


def saved(db: Path) -> dict[str, str]:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return dict(conn.execute("SELECT id_hash, state FROM jobs"))


async def listed(http: httpx.AsyncClient) -> set[str]:
    """The ids of every job the server lists, whatever its queue."""
    ids: set[str] = set()
    for name in QUEUES:
        items = (await http.get(f"/get_queue/{name}")).json()[f"{name}_jobs"]
        ids |= {item.split("'")[1] for item in items}  # <li id='...'>
    return ids


async def agree(http: httpx.AsyncClient, db: Path) -> None:
    """Nothing half-saved: once idle, the server and its file hold the same jobs."""

    async def settled() -> bool:
        counts = (await http.get("/health")).json()["jobs"]
        return counts["todo"] == counts["running"] == 0

    await eventually(settled)
    assert await listed(http) == set(saved(db))
    assert set(saved(db).values()) <= {"done", "dead"}


@pytest.mark.parametrize("fault", ["locked", "full"])
async def test_a_write_the_store_refuses_is_refused_and_nothing_is_half_saved(
    server: ThreadServer, http: httpx.AsyncClient, db: Path, fault: str
) -> None:
    words = "database is locked" if fault == "locked" else "database or disk is full"
    ws = await WsClient.connect(server.ws_url + "/ws")
    try:
        finished = (await http.get("/push", params={"question": "what is 2 plus 2"})).text
        done_id = finished.split("[")[1].split("]")[0]
        await agree(http, db)
        before = saved(db)
        with locked(db) if fault == "locked" else full(server):
            pushed = await http.get("/push", params={"question": BIG})
            await ws.send(type="query", text=BIG)
            refused = await ws.next("error", "queued", "audio_update")
            deleted = await http.get(f"/delete-snapshot/{done_id}")
        # A full file still lets a job be deleted (that frees pages); a locked one not.
        if fault == "full":
            assert deleted.status_code == 200, deleted.text
            before.pop(done_id)
        for answer in (pushed, deleted) if fault == "locked" else (pushed,):
            assert answer.status_code == 503, answer.text
            assert answer.json()["code"] == "store_unavailable"
            assert words in answer.json()["message"] and "nothing was changed" in answer.text
            assert int(answer.headers["retry-after"]) >= 1
        assert refused["type"] == "error" and refused["code"] == "unavailable"
        assert words in refused["message"]
        assert saved(db) == before  # nothing was added, nothing half-deleted
        await agree(http, db)

        # The fault is gone: the same questions go through and are answered.
        assert (await http.get("/push", params={"question": BIG})).status_code == 200
        await ws.send(type="query", text=BIG)
        await answer_to(ws, ANSWER)
        # The refused question was never spoken of: no "queued", no "let me think".
        assert [said(f) for f in ws.of("audio_update")] == [THINKING, ANSWER]
        assert len(ws.of("queued")) == 1
        await agree(http, db)
        assert len(saved(db)) == len(before) + 2  # the pushes, not the refused tries
    finally:
        await ws.close()
