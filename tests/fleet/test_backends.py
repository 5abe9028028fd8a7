"""One contract, three backends: the in-process queues (memory and SQLite) and the
fleet's Redis queues (a real ``redis-server``) pass the same tests through the
``queues.JobService`` API the adapters use."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from fleet import RedisJobQueues
from queues import JobActiveError, JobNotFoundError, JobService, SqliteStore, UnknownQueueError
from queues.admission import Admission
from queues.errors import QueueBusyError
from queues.models import Job, JobHandler
from queues.running import EXPIRED_APOLOGY
from tests.queues.helpers import Recorder, echo, make_queues
from tests.redis_server import RedisServer, running_redis

pytestmark = pytest.mark.anyio

BACKENDS = ("memory", "sqlite", "redis")
Open = Callable[..., contextlib.AbstractAsyncContextManager[JobService]]


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    with running_redis() as server:
        yield server


@pytest.fixture(params=BACKENDS)
def open_service(request: pytest.FixtureRequest, tmp_path: Path) -> Open:
    """``open_service(recorder, handler, history_limit=...)`` for one backend."""
    backend = request.param
    url = request.getfixturevalue("redis_server").url if backend == "redis" else ""
    db = tmp_path / "jobs.db"

    @contextlib.asynccontextmanager
    async def opened(
        recorder: Recorder,
        handler: JobHandler,
        history_limit: int = 1000,
        prefix: str = "",
        **options: Any,  # admission, max_wait: the same on every backend
    ) -> AsyncIterator[JobService]:
        service: JobService
        if backend == "redis":
            service = RedisJobQueues(
                url=url, prefix=prefix or f"t{uuid.uuid4().hex[:8]}", handler=handler,
                emit_audio=recorder.emit_audio, emit_event=recorder.emit_event,
                history_limit=history_limit, lease=2.0, **options,
            )  # fmt: skip
        else:
            store = SqliteStore(db) if backend == "sqlite" else None
            service = make_queues(
                recorder, handler, store=store, history_limit=history_limit, **options
            )
        async with service:
            yield service

    opened.backend = backend  # type: ignore[attr-defined]
    return opened


async def idle(service: JobService) -> None:
    async with asyncio.timeout(20):
        await service.wait_idle()


async def settled(service: JobService, expected: dict[str, int]) -> None:
    """Wait until the announced counts read ``expected`` (the fleet's arrive by bus)."""
    async with asyncio.timeout(10):
        while {k: service.counts()[k] for k in expected} != expected:  # noqa: ASYNC110
            await asyncio.sleep(0.01)


class Gate:
    """A handler that holds every job until opened."""

    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.started = asyncio.Event()

    async def __call__(self, job: Job) -> str:
        self.started.set()
        await self.open.wait()
        return await echo(job)


async def test_each_question_is_answered_once_to_its_asker(open_service: Open) -> None:
    heard = Recorder()
    async with open_service(heard, echo) as service:
        await service.attach_client("asker", None)
        jobs = [await service.push_job(f"question {i}", "asker") for i in range(5)]
        await idle(service)
        await settled(service, {"todo": 0, "running": 0, "done": 5})
        done = await service.listing("done")
        assert [j.id_hash for j in done] == [j.id_hash for j in reversed(jobs)]
        assert all(j.answer == f"answer to {j.question}" for j in done)
        answers = [m for m in heard.heard_by("asker") if m.startswith("answer")]
        assert sorted(answers) == sorted(f"answer to question {i}" for i in range(5))
        found = await service.find(jobs[0].id_hash)
        assert found is not None and found.state == "done" and found.attempts == 1
        assert await service.unfinished([j.id_hash for j in jobs]) == set()


async def test_history_keeps_only_the_newest(open_service: Open, tmp_path: Path) -> None:
    async with open_service(Recorder(), echo, history_limit=3) as service:
        jobs = [await service.push_job(f"question {i}") for i in range(5)]
        await idle(service)
        await settled(service, {"done": 3})
        kept = [j.id_hash for j in await service.listing("done")]
        assert kept == [j.id_hash for j in reversed(jobs[2:])]
        assert await service.find(jobs[0].id_hash) is None
    if open_service.backend == "sqlite":  # type: ignore[attr-defined]
        store = SqliteStore(tmp_path / "jobs.db")
        await store.open()
        try:
            assert sorted(j.id_hash for j in await store.load()) == sorted(kept)
        finally:
            await store.close()


async def test_delete_forgets_only_finished_jobs(open_service: Open) -> None:
    gate = Gate()
    async with open_service(Recorder(), gate) as service:
        first = await service.push_job("first")
        async with asyncio.timeout(10):
            await gate.started.wait()
        with pytest.raises(JobActiveError):
            await service.delete(first.id_hash)
        gate.open.set()
        await idle(service)
        assert (await service.delete(first.id_hash)).id_hash == first.id_hash
        with pytest.raises(JobNotFoundError):
            await service.delete(first.id_hash)
        await settled(service, {"done": 0})


async def test_a_leaving_client_cancels_its_queued_jobs(open_service: Open) -> None:
    gate = Gate()
    async with open_service(Recorder(), gate) as service:
        await service.attach_client("leaver", None)
        jobs = [await service.push_job(f"q{i}", "leaver") for i in range(3)]
        async with asyncio.timeout(10):
            await gate.started.wait()
        cancelled = await service.cancel_client_jobs("leaver")
        assert sorted(j.id_hash for j in cancelled) == sorted(j.id_hash for j in jobs[1:])
        assert await service.unfinished([j.id_hash for j in jobs]) == {jobs[0].id_hash}
        gate.open.set()
        await idle(service)
        dead = await service.listing("dead")
        assert {j.error for j in dead} == {"cancelled"}
        await settled(service, {"done": 1, "dead": 2})


async def test_a_client_past_its_cap_is_refused_and_others_are_not(open_service: Open) -> None:
    gate = Gate()
    caps = Admission(max_queued=10, max_per_client=2)
    async with open_service(Recorder(), gate, admission=caps) as service:
        await service.attach_client("eager", None)
        await service.push_job("runs at once", "eager")
        async with asyncio.timeout(10):
            await gate.started.wait()  # taken: no longer waiting, not counted
        waiting = [await service.push_job(f"waits {i}", "eager") for i in range(2)]
        with pytest.raises(QueueBusyError) as refused:
            await service.push_job("one too many", "eager")
        assert refused.value.reason == "client" and refused.value.retry_after > 0
        await service.push_job("someone else", "other")  # unaffected
        await settled(service, {"todo": 3})  # the refused one was never queued
        gate.open.set()
        await idle(service)
        await service.push_job("room again", "eager")  # its jobs ran: it may ask again
        await idle(service)
        states = [await service.find(j.id_hash) for j in waiting]
        assert [job.state for job in states if job is not None] == ["done", "done"]


async def test_a_full_queue_refuses_and_the_legacy_asker_hears_why(open_service: Open) -> None:
    gate, heard = Gate(), Recorder()
    async with open_service(heard, gate, admission=Admission(max_queued=2)) as service:
        await service.push_job("runs")
        async with asyncio.timeout(10):
            await gate.started.wait()
        for i in range(2):
            await service.push_job(f"waits {i}")
        with pytest.raises(QueueBusyError) as refused:
            await service.push_job("refused")
        assert refused.value.reason == "total" and refused.value.limit == 2
        async with asyncio.timeout(10):  # a broadcast: the fleet's comes by bus
            while QueueBusyError.SPOKEN not in heard.heard_by(None):  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        await settled(service, {"todo": 2})
        gate.open.set()
        await idle(service)
        await settled(service, {"todo": 0, "done": 3})


async def test_a_job_that_waited_too_long_expires(open_service: Open) -> None:
    gate, heard = Gate(), Recorder()
    async with open_service(heard, gate, max_wait=0.3) as service:
        await service.attach_client("patient", None)
        await service.push_job("holds the consumer", "patient")
        async with asyncio.timeout(10):
            await gate.started.wait()
        late = await service.push_job("waits too long", "patient")
        await asyncio.sleep(0.5)
        gate.open.set()
        await idle(service)
        await settled(service, {"done": 1, "dead": 1})
        job = await service.find(late.id_hash)
        assert job is not None and job.state == "dead" and job.error.startswith("expired")
        assert EXPIRED_APOLOGY in heard.heard_by("patient")
        async with asyncio.timeout(10):  # on Redis it comes through the node's channel
            while not (told := heard.events_to("patient", "error")):  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        assert [(d["code"], d["id_hash"]) for d in told] == [("expired", late.id_hash)]
        assert told[0]["message"] == job.error  # "expired: waited 0 s (the limit is 0.3 s)"


async def test_listing_names(open_service: Open) -> None:
    async with open_service(Recorder(), echo) as service:
        for name in ("todo", "run", "running", "done", "dead"):
            assert await service.listing(name) == []
        with pytest.raises(UnknownQueueError):
            await service.listing("nope")


async def test_a_busy_fleet_node_stops_when_asked(redis_server: RedisServer) -> None:
    """redis-py often swallows a cancellation that lands mid-command; the node's loops
    must stop anyway, or a shutdown waits forever (it did, before fleet.link's guard)."""
    for round_ in range(8):
        service = RedisJobQueues(
            url=redis_server.url, prefix=f"stop{round_}{uuid.uuid4().hex[:6]}", handler=echo,
            emit_audio=Recorder().emit_audio, emit_event=Recorder().emit_event, consumers=4,
        )  # fmt: skip
        async with asyncio.timeout(20):
            async with service:
                for i in range(40):
                    await service.push_job(f"question {i}")
                await asyncio.sleep(0.002 * round_)  # exit at a different point each time
