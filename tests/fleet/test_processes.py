"""Several real FastAPI processes on one real Redis: one Genie.

Web-only nodes, answers routed to the asker's node, the same counts and history on
every node, a consumer SIGKILLed mid-job (taken over after its lease), a session
resumed on another process after its own was killed, and ``--workers 2``.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterator

import httpx
import pytest

from queues.handlers import OfflineHandler
from tests.fastapi_app.helpers import WsClient, ws_url
from tests.flask_app.launch import ServerProcess, fastapi_server
from tests.flask_app.sio import EventLog
from tests.fleet.nodes import SLEEPY, answer_to, eventually, fleet, health, said
from tests.redis_server import RedisServer, running_redis
from tests.servers import free_port
from wire.urls import legacy_audio_url

pytestmark = pytest.mark.anyio

WEB_ONLY = {"consumers": 0}
WORKER = {"consumers": 1}


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    with running_redis() as server:
        yield server


async def listings(nodes: list[ServerProcess], name: str) -> list[list[str]]:
    async with httpx.AsyncClient(timeout=5) as http:
        return [(await http.get(f"{n.url}/get_queue/{name}")).json()[f"{name}_jobs"] for n in nodes]


async def test_a_web_only_node_asks_and_the_fleet_answers_once(redis_server: RedisServer) -> None:
    with fleet(redis_server.url, WEB_ONLY, WORKER, WORKER) as nodes:
        web, one, two = nodes
        asker = await WsClient.connect(ws_url(web.ws_url))
        watchers = [await WsClient.connect(ws_url(n.ws_url)) for n in (one, two)]
        page = await EventLog().connect(two.url, "websocket")
        try:
            question = "what is 6 times 7"
            await asker.send(type="query", text=question)
            job_id = (await asker.next("queued"))["id_hash"]
            answer = OfflineHandler().answer(question)
            await answer_to(asker, answer)
            # In the order of the one Redis step that queued it: the wait, the id, then
            # (only after a consumer took it) the answer; numbered one after another.
            own = [f for f in asker.seen if f.get("type") in ("audio_update", "queued")]
            assert [f["type"] for f in own] == ["audio_update", "queued", "audio_update"]
            assert [f["seq"] for f in own] == [1, 2, 3] and said(own[-1]) == answer
            for client in (asker, *watchers):  # the same count reaches every node
                await eventually(lambda c=client: _saw(c, "done_update", 1))
            await page.wait_for("done_update", where=lambda e: e["value"] == 1)
            done = await listings(nodes, "done")
            assert done[0] == done[1] == done[2] and len(done[0]) == 1 and job_id in done[0][0]
            assert [await _answers(c, answer) for c in watchers] == [0, 0]  # asker's only

            # A legacy push on a web-only node: every legacy page of the fleet hears it.
            async with httpx.AsyncClient(timeout=5) as http:
                assert (await http.get(f"{web.url}/push?question=what is 2 plus 2")).is_success
            url = legacy_audio_url(OfflineHandler().answer("what is 2 plus 2"))
            await page.wait_for("audio_update", where=lambda e: e["audioURL"] == url)
            assert (await health(web))["jobs"]["done"] == 2
            async with httpx.AsyncClient(timeout=5) as http:
                metrics = (await http.get(f"{one.url}/metrics")).text
            assert "genie_fleet_up 1.0" in metrics and 'genie_jobs{state="done"} 2.0' in metrics
            assert 'genie_fleet_messages_received_total{kind="events"}' in metrics
        finally:
            for client in (asker, *watchers):
                await client.close()
            await page.close()


async def test_sigkill_mid_job_is_taken_over_and_answered_once(redis_server: RedisServer) -> None:
    common = {"job_handler": SLEEPY, "job_lease": 1.0}
    with fleet(redis_server.url, WEB_ONLY, WORKER, WORKER, **common) as nodes:
        web, *workers = nodes
        asker = await WsClient.connect(ws_url(web.ws_url))
        try:
            await asker.send(type="query", text="sleep 2")
            job_id = (await asker.next("queued"))["id_hash"]

            async def runner() -> ServerProcess | None:
                for node in workers:
                    if (await health(node))["queues"]["running"]:
                        return node
                return None

            victim = await eventually(runner)
            victim.signal(signal.SIGKILL)
            await answer_to(asker, "I slept 2 seconds.")
            survivor = next(n for n in workers if n is not victim)
            done, dead = await listings([survivor], "done"), await listings([survivor], "dead")
            assert len(done[0]) == 1 and job_id in done[0][0] and dead == [[]]
            job = redis_server.client().hget(f"{_prefix(survivor)}:jobs", job_id)
            assert job is not None and '"attempts": 2' in job
            await asyncio.sleep(0.5)  # a second answer would arrive by now
            assert await _answers(asker, "I slept 2 seconds.") == 1
        finally:
            await asker.close()


async def test_resume_on_another_process_after_a_kill(redis_server: RedisServer) -> None:
    roles = (WEB_ONLY, WEB_ONLY, WORKER)
    with fleet(redis_server.url, *roles, job_handler=SLEEPY) as nodes:
        first, second, _ = nodes
        asker = await WsClient.connect(ws_url(first.ws_url))
        await asker.send(type="query", text="sleep 1")
        await asker.next("queued")
        last_seq = asker.last_seq
        first.signal(signal.SIGKILL)  # the answer arrives while the asker has no socket
        await asyncio.sleep(1.5)
        again = await WsClient.connect(ws_url(second.ws_url))
        try:
            await again.send(type="resume", client_id=asker.client_id, last_seq=last_seq)
            resumed = await again.next("resumed")  # after the frames it replays
            assert resumed["client_id"] == asker.client_id and resumed["complete"] is True
            replayed = [f for f in again.of("audio_update") if said(f) == "I slept 1 seconds."]
            assert len(replayed) == 1 and replayed[0]["seq"] > last_seq
            # Then the current counts, not a replay of old ones: the job is done.
            kinds = ("todo_update", "run_update", "done_update", "dead_update")
            counts = {f["type"]: f["value"] for f in [await again.next(*kinds) for _ in kinds]}
            assert counts == {"todo_update": 0, "run_update": 0, "done_update": 1, "dead_update": 0}
            # The session lives on here: the next answer comes straight to this socket.
            await again.send(type="query", text="what is 1 plus 1")
            await answer_to(again, OfflineHandler().answer("what is 1 plus 1"))
        finally:
            await again.close()
            await asker.conn.close()


async def test_workers_2_is_one_genie(redis_server: RedisServer) -> None:
    settings = {"redis_url": redis_server.url, "redis_channel": "workers"}
    with fastapi_server(settings=settings, args=("--workers", "2")) as server:

        async def both_nodes() -> set[str] | None:
            seen = set()
            for _ in range(20):
                async with httpx.AsyncClient(timeout=5) as http:  # a new connection each
                    seen.add((await http.get(f"{server.url}/health")).json()["queues"]["node"])
            return seen if len(seen) == 2 else None

        assert len(await eventually(both_nodes)) == 2
        clients = [await WsClient.connect(ws_url(server.ws_url)) for _ in range(6)]
        try:
            async with httpx.AsyncClient(timeout=5) as http:
                for i in range(4):
                    assert (
                        await http.get(f"{server.url}/push?question=what is {i} plus 1")
                    ).is_success
            for client in clients:  # whichever worker holds it, it sees every job done
                await eventually(lambda c=client: _saw(c, "done_update", 4))
        finally:
            for client in clients:
                await client.close()


async def test_start_refuses_an_unreachable_redis() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    server = fastapi_server(settings={"redis_url": url})
    with pytest.raises(RuntimeError) as failed:
        server.start()
    server.close()
    assert "Redis does not answer" in str(failed.value)


async def test_start_warns_about_a_peer_of_another_version(redis_server: RedisServer) -> None:
    client = redis_server.client()
    client.hset("oldpeers:nodes", "old-node", '{"version": "0.9", "wire": "genie-fleet/0"}')
    client.set("oldpeers:alive:old-node", "1", ex=60)
    settings = {"redis_url": redis_server.url, "redis_channel": "oldpeers"}
    with fastapi_server(settings=settings) as node:
        assert "peer old-node" in node.log_text() and "genie-fleet/0" in node.log_text()


def _prefix(node: ServerProcess) -> str:
    return str(node.settings["redis_channel"])


async def _saw(client: WsClient, kind: str, value: int) -> bool:
    with contextlib_suppress():
        await client.recv(0.05)
    frames = client.of(kind)
    return bool(frames) and frames[-1]["value"] == value


async def _answers(client: WsClient, text: str) -> int:
    with contextlib_suppress():
        while True:
            await client.recv(0.05)
    return sum(1 for f in client.of("audio_update") if said(f) == text)


def contextlib_suppress():

    return contextlib.suppress(TimeoutError)
