"""The consumer loop through JobQueues: nothing lost, one outcome each, order, failures."""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict

import anyio
import pytest

from queues import Job, JobQueues, JobState, SqliteStore
from queues.fifo import THINKING
from queues.running import APOLOGY, TIMEOUT_APOLOGY
from tests.queues.helpers import Recorder, echo, make_queues

CLIENTS = ["alice", "bob", "carol", "dave", "erin"]


def _assert_each_job_ended_once(queues: JobQueues, jobs: list[Job]) -> None:
    done = {job.id_hash for job in queues.done}
    dead = {job.id_hash for job in queues.dead}
    assert queues.todo.is_empty() and queues.running.is_empty()
    assert not done & dead
    assert done | dead == {job.id_hash for job in jobs}
    for job in jobs:
        assert job.state is (JobState.DONE if job.id_hash in done else JobState.DEAD)
        assert job.finished_at is not None and job.attempts == 1
        assert (job.answer is None) == (job.state is JobState.DEAD)
        assert (job.error is None) == (job.state is JobState.DONE)


async def _flaky(job: Job) -> str:
    """Fails one job in ten (index 0, 10, 20...), answers the others."""
    index = int(job.question.rsplit(" ", 1)[1])
    await asyncio.sleep(0)
    if index % 10 == 0:
        raise RuntimeError(f"flaky failure on {index}")
    return f"answer {index}"


@pytest.mark.anyio
@pytest.mark.parametrize("store_kind", ["memory", "sqlite"])
async def test_thousand_jobs_one_in_ten_failing(store_kind: str, tmp_path) -> None:
    recorder = Recorder()
    handled: list[Job] = []

    async def handler(job: Job) -> str:
        handled.append(job)
        return await _flaky(job)

    store = SqliteStore(tmp_path / "jobs.db") if store_kind == "sqlite" else None
    async with make_queues(recorder, handler, store=store) as queues:
        jobs = []
        for index in range(1000):
            client = CLIENTS[index % len(CLIENTS)]
            jobs.append(await queues.push_job(f"{client} question {index}", client_id=client))
        with anyio.fail_after(60):
            await queues.wait_idle()

        _assert_each_job_ended_once(queues, jobs)
        assert queues.counts() == {"todo": 0, "running": 0, "done": 900, "dead": 100}
        assert all("flaky failure" in job.error for job in queues.dead)

    # Each job was answered exactly once, in push order (one consumer = strict FIFO).
    assert [job.id_hash for job in handled] == [job.id_hash for job in jobs]
    # emit_audio: once per push and once per outcome, to that job's client, in order.
    assert len(recorder.audio) == 2000
    for client in CLIENTS:
        mine = [job for job in jobs if job.client_id == client]
        heard = recorder.heard_by(client)
        assert len(heard) == 2 * len(mine)
        outcomes = [msg for msg in heard if "job" not in msg and msg != THINKING]
        expected = [job.answer if job.answer is not None else APOLOGY for job in mine]
        assert outcomes == expected
    names = recorder.event_names()
    assert names["done_update"] == 900 and names["dead_update"] == 100
    assert names["run_update"] == 2000 and names["todo_update"] == 2000
    assert max(recorder.values("done_update")) == 900
    assert max(recorder.values("dead_update")) == 100


@pytest.mark.anyio
async def test_several_consumers_run_at_once_and_lose_nothing() -> None:
    recorder = Recorder()
    consumers = 4
    # The first four jobs only pass this barrier if four run at the same time.
    barrier = asyncio.Barrier(consumers)
    started: Counter[str] = Counter()

    async def handler(job: Job) -> str:
        started[job.id_hash] += 1
        if int(job.question.rsplit(" ", 1)[1]) < consumers:
            await barrier.wait()
        return await _flaky(job)

    async with make_queues(recorder, handler, consumers=consumers, job_timeout=10) as queues:
        jobs = [
            await queues.push_job(f"question {index}", client_id=CLIENTS[index % 5])
            for index in range(300)
        ]
        with anyio.fail_after(60):
            await queues.wait_idle()
        _assert_each_job_ended_once(queues, jobs)
        assert queues.counts()["done"] == 270 and queues.counts()["dead"] == 30
        # The barrier jobs did not time out: they really ran together.
        assert all(queues.get(job.id_hash).state is JobState.DONE for job in jobs[1:4])
    assert set(started.values()) == {1} and len(started) == 300
    assert len(recorder.audio) == 600


@pytest.mark.anyio
async def test_hanging_handler_is_cut_by_the_timeout_and_the_consumer_goes_on() -> None:
    recorder = Recorder()
    never = asyncio.Event()

    async def handler(job: Job) -> str:
        if job.question == "hang":
            await never.wait()
        return await echo(job)

    async with make_queues(recorder, handler, job_timeout=0.2) as queues:
        stuck = await queues.push_job("hang", client_id="a")
        after = await queues.push_job("next please", client_id="a")
        with anyio.fail_after(10):
            await queues.wait_idle()
    assert stuck.state is JobState.DEAD and stuck.error == "timed out after 0.2 s"
    assert after.state is JobState.DONE and after.answer == "answer to next please"
    assert recorder.heard_by("a") == [
        THINKING,
        "1 job before this one",
        TIMEOUT_APOLOGY,
        "answer to next please",
    ]


@pytest.mark.anyio
async def test_cancel_client_jobs_moves_queued_ones_to_dead_and_lets_running_finish() -> None:
    recorder = Recorder()
    gate, running = asyncio.Event(), asyncio.Event()
    handled: list[str] = []

    async def handler(job: Job) -> str:
        handled.append(job.question)
        running.set()
        await gate.wait()
        return await echo(job)

    async with make_queues(recorder, handler) as queues:
        first = await queues.push_job("a0", client_id="a")
        with anyio.fail_after(5):
            await running.wait()
        queued = [await queues.push_job(q, client_id=c) for q, c in [("a1", "a"), ("b1", "b")]]
        queued.append(await queues.push_job("a2", client_id="a"))

        cancelled = await queues.cancel_client_jobs("a")
        assert [job.question for job in cancelled] == ["a1", "a2"]
        assert all(job.state is JobState.DEAD and job.error == "cancelled" for job in cancelled)
        assert [job.question for job in queues.queue("dead").jobs()] == ["a2", "a1"]
        assert first.state is JobState.RUNNING and queues.counts()["todo"] == 1
        assert await queues.cancel_client_jobs("nobody") == []

        gate.set()
        with anyio.fail_after(5):
            await queues.wait_idle()
        assert first.state is JobState.DONE and queued[1].state is JobState.DONE
    assert handled == ["a0", "b1"]
    assert ("dead_update", {"value": 2}, None) in recorder.events


@pytest.mark.anyio
@pytest.mark.parametrize("failure", ["raise", "hang", "sync-raise"])
async def test_failing_emit_callbacks_lose_no_job(failure: str) -> None:
    calls: Counter[str] = Counter()

    async def async_emit(*args: object) -> None:
        calls["emit"] += 1
        if failure == "hang":
            await asyncio.Event().wait()
        raise ConnectionResetError("client went away")

    def sync_emit(*args: object) -> None:
        calls["emit"] += 1
        raise ConnectionResetError("not even a coroutine")

    emit = sync_emit if failure == "sync-raise" else async_emit
    queues = JobQueues(
        handler=_flaky, emit_audio=emit, emit_event=emit, job_timeout=5, emit_timeout=0.01
    )
    async with queues:
        jobs = [await queues.push_job(f"q {index}") for index in range(30)]
        with anyio.fail_after(30):
            await queues.wait_idle()
        _assert_each_job_ended_once(queues, jobs)
        assert queues.counts()["done"] == 27 and queues.counts()["dead"] == 3
        # push: audio + todo_update; take: todo + run; outcome: queue + run + audio.
        assert calls["emit"] == 30 * 7
        assert queues.todo.emitter.failures + queues.running.emitter.failures == 30 * 7


@pytest.mark.anyio
async def test_bad_handler_results_become_dead_jobs() -> None:
    recorder = Recorder()

    async def handler(job: Job) -> str:
        if job.question == "number":
            return 42  # type: ignore[return-value]
        if job.question == "blank":
            return "   "
        if job.question == "stray cancel":
            raise asyncio.CancelledError()
        if job.question == "own timeout":
            raise TimeoutError("upstream timed out")
        return await echo(job)

    async with make_queues(recorder, handler) as queues:
        jobs = [await queues.push_job(q) for q in ("number", "blank", "stray cancel")]
        jobs += [await queues.push_job(q) for q in ("own timeout", "fine")]
        with anyio.fail_after(10):
            await queues.wait_idle()
        _assert_each_job_ended_once(queues, jobs)
    errors = [job.error for job in jobs]
    assert errors[0] == "handler returned 42, not an answer text"
    assert errors[1] == "handler returned '   ', not an answer text"
    assert errors[2] == "handler was cancelled"
    assert errors[3] == "TimeoutError: upstream timed out"
    assert jobs[4].answer == "answer to fine"


@pytest.mark.anyio
async def test_order_is_kept_per_client_with_many_clients() -> None:
    recorder = Recorder()
    async with make_queues(recorder, echo) as queues:
        for index in range(200):
            await queues.push_job(f"n{index}", client_id=CLIENTS[(index * 7) % 5])
        with anyio.fail_after(30):
            await queues.wait_idle()
    by_client: dict[str, list[int]] = defaultdict(list)
    for msg, client in recorder.audio:
        if msg.startswith("answer to n"):
            by_client[client].append(int(msg.removeprefix("answer to n")))
    assert set(by_client) == set(CLIENTS)
    assert all(numbers == sorted(numbers) for numbers in by_client.values())
    assert sum(len(numbers) for numbers in by_client.values()) == 200


@pytest.mark.anyio
async def test_wait_idle_waits_until_the_outcome_is_spoken() -> None:
    speaking, release = asyncio.Event(), asyncio.Event()
    heard: list[str] = []

    async def emit_audio(msg: str, client_id: str | None) -> None:
        if msg.startswith("answer"):
            speaking.set()
            await release.wait()
        heard.append(msg)

    recorder = Recorder()
    queues = JobQueues(handler=echo, emit_audio=emit_audio, emit_event=recorder.emit_event)
    async with queues:
        job = await queues.push_job("x")
        with anyio.fail_after(5):
            await speaking.wait()
        assert job.state is JobState.DONE  # finished, but its answer is still being spoken
        waiter = asyncio.create_task(queues.wait_idle())
        for _ in range(3):
            await asyncio.sleep(0)
        assert not waiter.done()
        release.set()
        with anyio.fail_after(5):
            await waiter
    assert heard == [THINKING, "answer to x"]
