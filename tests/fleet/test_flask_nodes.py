"""The Flask server on the fleet: ``python -m flask_app --redis-url ...`` (threading and
gevent) shares the FastAPI processes' Redis queue, history and counts, and its
Flask-SocketIO message queue shares their Socket.IO channel.

- A legacy ``/push`` on any server reaches every legacy page of every server once:
  ``audio_update`` and the counts alike (twice would mean the events went round both
  the fleet's bus and the Socket.IO queue).
- The done list is the same on every server; the delete gong reaches every page.
- A server whose Socket.IO channel differs from its peers' refuses to start, saying so.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest

from queues.handlers import OfflineHandler
from tests.flask_app.sio import EventLog
from tests.fleet.nodes import FLASK_GEVENT, FLASK_THREADING, eventually, fleet, node
from tests.redis_server import RedisServer, running_redis
from wire import legacy
from wire.urls import legacy_audio_url

pytestmark = pytest.mark.anyio

QUESTIONS = ("what is 3 plus 4", "what is 5 plus 6", "what is 7 plus 8")


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    with running_redis() as server:
        yield server


async def test_a_push_on_any_server_reaches_every_page_once(redis_server: RedisServer) -> None:
    with fleet(redis_server.url, FLASK_THREADING, FLASK_GEVENT, {}) as servers:
        pages = [
            await EventLog().connect(server.url, transport)
            for server in servers
            for transport in ("websocket", "polling")
        ]
        answers = [legacy_audio_url(OfflineHandler().answer(q)) for q in QUESTIONS]
        async with httpx.AsyncClient(timeout=20) as http:
            ids = []
            for server, question in zip(servers, QUESTIONS, strict=True):
                response = await http.get(f"{server.url}/push?question={question}")
                assert response.is_success, response.text
                ids.append(response.text.split("[")[1].split("]")[0])
            for page in pages:
                for url in answers:
                    await page.wait_for("audio_update", where=lambda e, u=url: e["audioURL"] == u)
                await page.wait_for("done_update", where=lambda e: e["value"] >= len(QUESTIONS))
            await asyncio.sleep(0.5)  # time for a duplicate to arrive, had one been sent
            for page in pages:
                heard = [e["audioURL"] for e in page.of("audio_update")]
                assert [heard.count(url) for url in answers] == [1, 1, 1], heard
                # The counts arrive once per change, in order, on every page alike.
                assert [e["value"] for e in page.of("done_update")] == [1, 2, 3]

            listings = [(await http.get(f"{s.url}/get_queue/done")).json() for s in servers]
            assert all(listing == listings[0] for listing in listings)
            assert len(listings[0]["done_jobs"]) == len(QUESTIONS)

            # The gong of a delete on Flask reaches every page of every server, once.
            assert (await http.get(f"{servers[0].url}/delete-snapshot/{ids[1]}")).is_success

            async def gong_everywhere() -> bool:
                return all(page.of(legacy.NOTIFICATION_SOUND_UPDATE) for page in pages)

            await eventually(gong_everywhere)
            await asyncio.sleep(0.5)
            assert all(len(page.of(legacy.NOTIFICATION_SOUND_UPDATE)) == 1 for page in pages)
            for page in pages:
                await page.wait_for("done_update", where=lambda e: e["value"] == 2)
        for page in pages:
            await page.close()
        assert all(server.alive() for server in servers)


@pytest.mark.parametrize("first", ["fastapi", "flask-threading"])
async def test_a_socketio_channel_mismatch_stops_the_newcomer(
    redis_server: RedisServer, first: str
) -> None:
    """Whichever starts second refuses to start, naming both channels."""
    second = "flask-threading" if first == "fastapi" else "fastapi"
    with fleet(redis_server.url, {"kind": first}) as (running,):
        prefix = running.settings["redis_channel"]
        newcomer = node(redis_server.url, prefix, {"kind": second, "socketio_channel": "other"})
        try:
            with pytest.raises(RuntimeError, match="exited") as failed:
                newcomer.start()
        finally:
            newcomer.close()
        assert "Socket.IO channel mismatch" in str(failed.value)
        assert f"'{prefix}-socketio'" in str(failed.value) and "'other'" in str(failed.value)
        assert running.alive()


async def test_flask_refuses_a_second_redis_for_socketio(redis_server: RedisServer) -> None:
    server = node(redis_server.url, "tmq", FLASK_THREADING)
    server.args += ("--message-queue", "redis://127.0.0.1:1/0")
    try:
        with pytest.raises(RuntimeError, match="differs from GENIE_REDIS_URL"):
            server.start()
    finally:
        server.close()
