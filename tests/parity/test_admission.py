"""Admission control over the wire, on both servers (real processes on loopback):

- a full queue refuses the legacy ``GET /push`` at once with 503, ``Retry-After`` and the
  ``busy`` error, and the legacy page hears why (a spoken ``audio_update``);
- on ``/ws`` a client past its own cap gets an ``error`` frame ``busy`` with
  ``retry_after``, while another client's question is still accepted;
- with Redis the total cap counts the fleet's queue (two processes), and a client's own
  cap follows it when it resumes on another process;
- nothing refused is queued; ``/health`` says ``busy`` (still 200: the proxy keeps the
  server) and ``/metrics`` counts the refusal, the oldest wait and the waits.
"""

from __future__ import annotations

from urllib.parse import unquote

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from queues.errors import QueueBusyError
from tests.fastapi_app.helpers import WsClient
from tests.flask_app.launch import ServerProcess, server_of
from tests.flask_app.sio import EventLog
from tests.fleet.nodes import SLEEPY, eventually, fleet
from tests.redis_server import running_redis

pytestmark = pytest.mark.anyio

SERVERS = ("flask-threading", "flask-gevent", "fastapi")


def start(kind: str, **settings: object) -> ServerProcess:
    return server_of(kind, settings={"job_handler": SLEEPY, **settings})


@pytest.mark.parametrize("kind", SERVERS)
async def test_a_full_queue_refuses_the_legacy_push_and_says_so(kind: str) -> None:
    with start(kind, max_queued=1) as server:
        page = await EventLog().connect(server.url, "websocket")
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            assert (await http.get("/push?question=sleep 2")).is_success  # runs
            await page.wait_for("run_update", where=lambda e: e["value"] == 1)
            assert (await http.get("/push?question=what is 1 plus 1")).is_success  # waits
            refused = await http.get("/push?question=what is 2 plus 2")
            assert refused.status_code == 503, refused.text
            assert int(refused.headers["Retry-After"]) >= 1
            body = refused.json()
            assert body["code"] == "busy" and body["retry_after"] > 0, body
            await page.wait_for(
                "audio_update",
                where=lambda e: unquote(e["audioURL"]).endswith(QueueBusyError.SPOKEN),
            )
            todo = (await http.get("/get_queue/todo")).json()["todo_jobs"]
            assert len(todo) == 1 and "2 plus 2" not in str(todo)  # nothing half-queued
            assert (await http.get("/health")).json()["status"] == "busy"  # still 200
            metrics = await http.get("/metrics")
            samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
                       for f in text_string_to_metric_families(metrics.text)
                       for s in f.samples}  # fmt: skip
            assert samples[("genie_questions_refused_total", (("reason", "total"),))] == 1
            assert samples[("genie_queue_oldest_seconds", ())] > 0
            assert samples[("genie_job_wait_seconds_count", ())] >= 1
        await page.close()


async def test_a_ws_client_past_its_own_cap_is_refused() -> None:
    with start("fastapi", max_queued_per_client=1) as server:
        eager = await WsClient.connect(f"{server.ws_url}/ws")
        other = await WsClient.connect(f"{server.ws_url}/ws")
        await eager.send(type="query", text="sleep 2")
        await eager.next("queued")
        await eager.next("run_update")  # taken: it no longer waits
        await eager.send(type="query", text="what is 1 plus 1")
        await eager.next("queued")
        await eager.send(type="query", text="what is 3 plus 3")
        error = await eager.next("error")
        assert error["code"] == "busy" and error["retry_after"] > 0, error
        await other.send(type="query", text="what is 4 plus 4")  # someone else: fine
        assert (await other.next("queued", "error"))["type"] == "queued"
        for client in (eager, other):
            await client.conn.close()


async def test_the_total_cap_holds_for_the_whole_fleet() -> None:
    """Two FastAPI processes on one Redis: the cap counts the fleet's queue, not each
    process's, so the third waiting question is refused on either process."""
    with running_redis() as redis, fleet(redis.url, {}, {}, job_handler=SLEEPY,
                                         max_queued=2) as (one, two):  # fmt: skip
        async with httpx.AsyncClient(timeout=10) as http:
            for server in (one, two):  # one slow job for each process's consumer
                assert (await http.get(f"{server.url}/push?question=sleep 3")).is_success

            async def both_running() -> bool:
                health = (await http.get(f"{one.url}/health")).json()
                return health["jobs"]["running"] == 2

            await eventually(both_running)
            assert (await http.get(f"{one.url}/push?question=what is 1 plus 1")).is_success
            assert (await http.get(f"{two.url}/push?question=what is 2 plus 2")).is_success
            for server in (one, two):
                refused = await http.get(f"{server.url}/push?question=what is 3 plus 3")
                assert refused.status_code == 503 and refused.json()["code"] == "busy"
                health = await http.get(f"{server.url}/health")  # the fleet's cap, on each
                assert health.status_code == 200 and health.json()["status"] == "busy"


async def test_a_clients_own_cap_follows_it_to_another_process() -> None:
    """The per-client cap is counted in Redis: a ``/ws`` client whose questions wait on
    the fleet is still past its cap after it resumes on another process."""
    web_only = {"consumers": 0}  # nothing is taken: every question keeps waiting
    with running_redis() as redis, fleet(redis.url, web_only, web_only,
                                         max_queued_per_client=2) as (one, two):  # fmt: skip
        asker = await WsClient.connect(f"{one.ws_url}/ws")
        for n in (1, 2):
            await asker.send(type="query", text=f"what is {n} plus {n}")
            await asker.next("queued")
        last_seq = asker.last_seq
        await asker.conn.close()
        again = await WsClient.connect(f"{two.ws_url}/ws")
        other = await WsClient.connect(f"{two.ws_url}/ws")
        try:
            await again.send(type="resume", client_id=asker.client_id, last_seq=last_seq)
            await again.next("resumed")
            await again.send(type="query", text="what is 3 plus 3")
            error = await again.next("error", "queued")
            assert error["type"] == "error" and error["code"] == "busy", error
            await other.send(type="query", text="what is 4 plus 4")  # someone else: fine
            assert (await other.next("queued", "error"))["type"] == "queued"
        finally:
            for client in (again, other):
                await client.conn.close()
