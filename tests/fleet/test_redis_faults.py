"""Redis itself fails: killed (SIGKILL) with AOF on, then started again on the same
port and data. While it is down, questions are refused with 503 and ``Retry-After``
(never silently dropped), ``/health`` says degraded; once it is back every node serves
again by itself, and every question accepted before, during a running job, or after
is answered, its asker hearing it."""

from __future__ import annotations

import contextlib
import time

import httpx
import pytest

from queues.handlers import OfflineHandler
from tests.fastapi_app.helpers import WsClient, ws_url
from tests.flask_app.launch import ServerProcess
from tests.fleet.nodes import SLEEPY, answer_to, eventually, fleet, health
from tests.redis_server import RedisServer

pytestmark = pytest.mark.anyio


async def test_a_redis_restart_loses_no_accepted_job() -> None:
    redis_server = RedisServer(aof=True).start()
    try:
        with fleet(redis_server.url, {}, {}, job_handler=SLEEPY) as (one, two):
            asker = await WsClient.connect(ws_url(one.ws_url))
            http = httpx.AsyncClient(timeout=5)
            try:
                accepted = []
                for i in range(3):
                    pushed = await http.get(f"{two.url}/push?question=what is {i} plus 2")
                    assert pushed.status_code == 200
                    accepted.append(pushed.text)
                # A job running while Redis dies: its answer waits for Redis, then arrives.
                await asker.send(type="query", text="sleep 1")
                await asker.next("queued")
                await eventually(lambda: _running(one, two))
                redis_server.kill()

                refused = await http.get(f"{one.url}/push?question=what is 1 plus 1")
                assert refused.status_code == 503, refused.text
                assert refused.json()["code"] == "queue_unavailable"
                assert int(refused.headers["Retry-After"]) >= 1
                await asker.send(type="query", text="what is 1 plus 1")
                error = await asker.next("error")
                assert error["code"] == "unavailable" and error["retry_after"] > 0
                await eventually(lambda: _status(one, "degraded"))

                redis_server.start()
                back = time.monotonic()
                for node in (one, two):
                    await eventually(lambda n=node: _status(n, "ok"))
                    again = await http.get(f"{node.url}/push?question=what is 5 plus 5")
                    assert again.status_code == 200
                    accepted.append(again.text)
                print(f"every node serving {time.monotonic() - back:.2f} s after Redis is back")

                await answer_to(asker, "I slept 1 seconds.")
                ids = {text.split("[")[1].split("]")[0] for text in accepted}
                await eventually(lambda: _all_done(one, ids))
                answer = OfflineHandler().answer("what is 1 plus 1")
                assert not [f for f in asker.of("audio_update") if answer in f["audioURL"]]
            finally:
                await asker.close()
                await http.aclose()
    finally:
        redis_server.close()


async def _running(*nodes: ServerProcess) -> bool:
    return any([(await health(n))["queues"]["running"] for n in nodes])


async def _status(node: ServerProcess, status: str) -> bool:
    with contextlib.suppress(httpx.HTTPError):
        return (await health(node))["status"] == status
    return False


async def _all_done(node: ServerProcess, ids: set[str]) -> bool:
    async with httpx.AsyncClient(timeout=5) as http:
        done = (await http.get(f"{node.url}/get_queue/done")).json()["done_jobs"]
    return all(any(i in item for item in done) for i in ids)
