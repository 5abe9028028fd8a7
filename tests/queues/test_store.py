"""Job stores, and restarting from SQLite: after SIGKILL and after a clean shutdown."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import sys
from contextlib import closing
from pathlib import Path

import anyio
import pytest

from config import Settings
from queues import (
    Job,
    JobActiveError,
    JobNotFoundError,
    JobState,
    MemoryStore,
    OfflineHandler,
    QueueClosedError,
    SqliteStore,
    UnknownQueueError,
    build_job_queues,
    open_store,
)
from queues.errors import StoreConfigError
from tests.queues.helpers import Recorder, echo, make_queues

ROOT = Path(__file__).resolve().parents[2]


def _states(db: Path) -> list[tuple[str, str, int]]:
    """(question, state, attempts) in push order, read with the stdlib like an outsider."""
    with closing(sqlite3.connect(db)) as conn:
        return conn.execute("SELECT question, state, attempts FROM jobs ORDER BY seq").fetchall()


@pytest.mark.anyio
async def test_sqlite_store_upserts_in_push_order(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "jobs.db")
    await store.open()
    try:
        jobs = [Job(question=f"q{index}", client_id="c") for index in range(3)]
        for job in jobs:
            await store.save(job)
        jobs[0].state, jobs[0].answer, jobs[0].attempts = JobState.DONE, "yes", 1
        await store.save(jobs[0])
        await store.delete(jobs[1].id_hash)
        loaded = await store.load()
    finally:
        await store.close()
    assert [job.to_dict() for job in loaded] == [jobs[0].to_dict(), jobs[2].to_dict()]
    with closing(sqlite3.connect(tmp_path / "jobs.db")) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


@pytest.mark.anyio
async def test_closed_sqlite_store_says_so(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="not open"):
        await SqliteStore(tmp_path / "x.db").load()


def test_open_store_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(open_store("memory"), MemoryStore)
    absolute = open_store(f"sqlite:///{tmp_path}/a/b/jobs.db")
    assert isinstance(absolute, SqliteStore) and absolute.path == tmp_path / "a/b/jobs.db"
    monkeypatch.chdir(tmp_path)
    relative = open_store("sqlite:///var/jobs.db")
    assert isinstance(relative, SqliteStore) and relative.path == Path("var/jobs.db")
    for bad in ("redis://x", "sqlite:///", "sqlite://jobs.db", "jobs.db"):
        with pytest.raises(StoreConfigError, match="use 'memory' or 'sqlite:///"):
            open_store(bad)


@pytest.mark.anyio
async def test_open_store_creates_folders(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/deep/er/jobs.db")
    await store.open()
    await store.close()
    assert (tmp_path / "deep/er/jobs.db").is_file()


@pytest.mark.anyio
async def test_restart_after_sigkill_resumes_the_running_job(tmp_path: Path) -> None:
    db, log = tmp_path / "jobs.db", tmp_path / "worker.log"
    command = [sys.executable, "-m", "tests.queues.slow_worker", str(db), "first", "second"]
    with log.open("wb") as errors:
        worker = await anyio.open_process(command, cwd=ROOT, stdout=errors, stderr=errors)
    try:
        with anyio.fail_after(30):
            # Every question pushed (the worker says so) and the first one taken: the
            # first can be running before the second is even pushed.
            while "pushed" not in log.read_text() or not _running_first(db):
                assert worker.returncode is None, log.read_text()
                await anyio.sleep(0.05)
        assert _states(db) == [("first", "running", 1), ("second", "todo", 0)]
    finally:
        if worker.returncode is None:
            worker.send_signal(signal.SIGKILL)
        await worker.wait()
        await worker.aclose()
    assert worker.returncode == -signal.SIGKILL

    recorder = Recorder()
    async with make_queues(recorder, echo, store=SqliteStore(db)) as queues:
        with anyio.fail_after(10):
            await queues.wait_idle()
        first, second = queues.done.jobs()[::-1]
    assert (first.question, first.state, first.attempts) == ("first", JobState.DONE, 2)
    assert first.answer == "answer to first" and first.client_id == "crash-test"
    assert (second.question, second.state) == ("second", JobState.DONE)
    assert recorder.heard_by("crash-test") == ["answer to first", "answer to second"]
    assert _states(db) == [("first", "done", 2), ("second", "done", 1)]


def _running_first(db: Path) -> bool:
    return ("first", "running", 1) in _safe_states(db)


def _safe_states(db: Path) -> list[tuple[str, str, int]]:
    # The worker may not have created the file or the table yet.
    if not db.exists():
        return []
    try:
        return _states(db)
    except sqlite3.OperationalError:
        return []


@pytest.mark.anyio
async def test_clean_shutdown_mid_job_then_restart(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    started = asyncio.Event()

    async def hang(job: Job) -> str:
        started.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async with make_queues(Recorder(), hang, store=SqliteStore(db)) as queues:
        before = await queues.push_job("ran before", client_id="x")
        interrupted = await queues.push_job("interrupted", client_id="x")
        queued = await queues.push_job("still queued", client_id="y")
        with anyio.fail_after(5):
            await started.wait()
    # Left while "ran before" was running: the file says so, nothing is finished.
    assert _states(db) == [
        ("ran before", "running", 1),
        ("interrupted", "todo", 0),
        ("still queued", "todo", 0),
    ]
    assert before.state is JobState.RUNNING and interrupted.state is JobState.TODO
    assert queued.state is JobState.TODO

    recorder = Recorder()
    async with make_queues(recorder, echo, store=SqliteStore(db)) as queues:
        resumed_first = ["ran before", "interrupted", "still queued"]
        assert [job.question for job in queues.todo] == resumed_first
        with anyio.fail_after(10):
            await queues.wait_idle()
        assert queues.counts() == {"todo": 0, "running": 0, "done": 3, "dead": 0}
    assert _states(db) == [
        ("ran before", "done", 2),
        ("interrupted", "done", 1),
        ("still queued", "done", 1),
    ]
    # History comes back on the next start too.
    async with make_queues(Recorder(), echo, store=SqliteStore(db)) as queues:
        assert [job.question for job in queues.done.jobs()] == [
            "still queued",
            "interrupted",
            "ran before",
        ]


@pytest.mark.anyio
async def test_a_job_that_keeps_killing_the_process_is_given_up(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    store = SqliteStore(db)
    await store.open()
    poison = Job(question="poison", state=JobState.RUNNING, attempts=3)
    await store.save(poison)
    await store.close()
    async with make_queues(Recorder(), echo, store=SqliteStore(db), max_attempts=3) as queues:
        with anyio.fail_after(5):
            await queues.wait_idle()
        job = queues.get(poison.id_hash)
    assert job is not None and job.state is JobState.DEAD
    assert job.error == "interrupted 3 times while running; given up"


@pytest.mark.anyio
async def test_job_queues_api(tmp_path: Path) -> None:
    recorder = Recorder()
    gate = asyncio.Event()

    async def gated(job: Job) -> str:
        await gate.wait()
        if job.question == "fail":
            raise ValueError("nope")
        return await echo(job)

    queues = make_queues(recorder, gated, store=SqliteStore(tmp_path / "j.db"))
    with pytest.raises(QueueClosedError):
        await queues.push_job("too early")
    async with queues:
        ok, bad = await queues.push_job("ok"), await queues.push_job("fail")
        with pytest.raises(JobActiveError, match="only done or dead jobs can be deleted"):
            await queues.delete(bad.id_hash)
        assert queues.queue("run") is queues.queue("running") is queues.running
        assert queues.queue("todo").jobs() == [bad] and queues.queue("DONE") is queues.done
        with pytest.raises(UnknownQueueError) as caught:
            queues.queue("archive")
        assert "todo, run, running, done, dead" in str(caught.value)
        assert caught.value.code == "unknown_queue"
        gate.set()
        with anyio.fail_after(5):
            await queues.wait_idle()
        assert queues.get(ok.id_hash) is ok and queues.get("nope") is None
        assert await queues.delete(bad.id_hash) is bad
        assert queues.get(bad.id_hash) is None
        with pytest.raises(JobNotFoundError) as missing:
            await queues.delete(bad.id_hash)
        assert missing.value.code == "job_not_found"
        assert queues.counts() == {"todo": 0, "running": 0, "done": 1, "dead": 0}
    assert [row[0] for row in _states(tmp_path / "j.db")] == ["ok"]
    with pytest.raises(QueueClosedError):
        await queues.push_job("too late")


@pytest.mark.anyio
async def test_build_job_queues_from_settings(tmp_path: Path) -> None:
    settings = Settings(store=f"sqlite:///{tmp_path}/s/jobs.db", consumers=2, job_timeout=7)
    queues = build_job_queues(settings, Recorder().emit_audio, Recorder().emit_event, server="test")
    assert isinstance(queues.store, SqliteStore) and queues.consumers == 2
    assert queues.running.job_timeout == 7
    assert isinstance(queues.running._handler, OfflineHandler)
    async with queues:
        job = await queues.push_job("what is 2 plus 2")
        with anyio.fail_after(5):
            await queues.wait_idle()
    assert job.answer == "2 plus 2 is 4."
    assert _states(tmp_path / "s/jobs.db") == [("what is 2 plus 2", "done", 1)]
