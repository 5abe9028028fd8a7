"""Socket.IO across processes: the FastAPI mount's client manager is python-socketio's
Redis manager, delivering locally through the kit's encode-once, Task-free path.

- An emit from outside (python-socketio's own write-only ``AsyncRedisManager`` on the
  fleet's channel, as any other service would send) reaches the legacy pages of every
  process; so does the gong of a delete on one process.
- The local delivery of a message from Redis is the fast path (``BroadcastManager``),
  never the stock one-Task-per-recipient emit.
- A peer of another python-socketio generation on the channel is reported, not silent.
"""

from __future__ import annotations

import asyncio
import json
import pickle
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import socketio

from config import Settings
from fastapi_app.sockets.fanout import FanOut
from fastapi_app.sockets.sio_manager import BroadcastManager, RedisBroadcastManager
from tests.fastapi_app.helpers import WsClient, ws_url
from tests.flask_app.launch import ServerProcess
from tests.flask_app.sio import EventLog
from tests.fleet.nodes import eventually, fleet
from tests.redis_server import RedisServer, running_redis
from tests.servers import ThreadServer
from wire import legacy

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    with running_redis() as server:
        yield server


async def test_emits_reach_the_pages_of_every_process(redis_server: RedisServer) -> None:
    with fleet(redis_server.url, {}, {}) as (one, two):
        prefix = one.settings["redis_channel"]
        transports = ("websocket", "polling")
        pages = [await EventLog().connect(n.url, t) for n in (one, two) for t in transports]
        channel = Settings(redis_channel=prefix).socketio_channel
        outside = socketio.AsyncRedisManager(redis_server.url, channel=channel, write_only=True)
        try:

            async def heard_everywhere() -> bool:
                # Emitted again until heard: each manager subscribes a moment after its
                # first page connects.
                await outside.emit("todo_update", {"value": 42})
                await asyncio.sleep(0.2)
                return all({"value": 42} in page.of("todo_update") for page in pages)

            await eventually(heard_everywhere)

            async with httpx.AsyncClient(timeout=5) as http:
                pushed = await http.get(f"{one.url}/push?question=what is 3 plus 3")
                job_id = pushed.text.split("[")[1].split("]")[0]
                await eventually(lambda: _done(one, job_id))
                assert (await http.get(f"{one.url}/delete-snapshot/{job_id}")).is_success
            for page in pages:  # the gong of a delete on one process, on every page once
                found = await page.wait_for(legacy.NOTIFICATION_SOUND_UPDATE)
                assert len(found) == 1
            await asyncio.sleep(0.3)
            assert [len(p.of(legacy.NOTIFICATION_SOUND_UPDATE)) for p in pages] == [1] * 4
        finally:
            for page in pages:
                await page.close()
            if outside.redis is not None:
                await outside.redis.aclose()


async def test_a_message_from_redis_takes_the_fast_path(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(redis_url=redis_server.url, redis_channel="fastpath", log_level="warning")
    with ThreadServer(settings) as server:
        manager = server.runtime.legacy.sio.manager
        assert isinstance(manager, RedisBroadcastManager) and isinstance(manager, BroadcastManager)
        logged: list[tuple[str, int]] = []
        log = FanOut.append

        def counting(self: FanOut, entry: Any) -> None:
            logged.append((entry[0], len(self.members)))
            log(self, entry)

        def stock(*args: object, **kwargs: object) -> None:
            raise AssertionError("the stock per-recipient emit ran")

        monkeypatch.setattr(FanOut, "append", counting)
        monkeypatch.setattr(socketio.AsyncManager, "emit", stock)
        pages = [await EventLog().connect(server.url, "websocket") for _ in range(5)]
        try:
            # What python-socketio's manager on another node publishes for an emit (sent
            # raw: a manager in this process would deliver through the patched class).
            message = {"method": "emit", "event": "run_update", "data": [{"value": 7}],
                       "binary": False, "namespace": "/", "room": None, "skip_sid": None,
                       "callback": None, "host_id": "another-node"}  # fmt: skip

            async def heard() -> bool:  # published again until the manager has subscribed
                redis_server.client().publish(settings.socketio_channel, json.dumps(message))
                await asyncio.sleep(0.2)
                return all({"value": 7} in page.of("run_update") for page in pages)

            await eventually(heard)
            # Logged once for all five sockets (each takes it in the fan-out pass).
            assert ('42["run_update",{"value":7}]', 5) in logged
        finally:
            for page in pages:
                await page.close()


async def test_a_peer_of_another_generation_is_reported(redis_server: RedisServer) -> None:
    with fleet(redis_server.url, {}) as (node,):
        channel = Settings(redis_channel=node.settings["redis_channel"]).socketio_channel
        page = await EventLog().connect(node.url, "websocket")  # the manager listens now
        client = redis_server.client()
        old = {"method": "emit", "event": "x", "data": {"a": 1}, "namespace": "/",
               "room": None, "skip_sid": None, "callback": None, "host_id": "old"}  # fmt: skip

        async def reported(message: bytes | str, text: str) -> bool:
            # Sent again until heard: the manager subscribes a moment after the first page.
            client.publish(channel, message)
            return text in node.log_text()

        await eventually(lambda: reported(json.dumps(old), "data not in a list"), every=0.2)
        await eventually(lambda: reported(pickle.dumps(old), "not JSON"), every=0.2)
        assert (await WsClient.connect(ws_url(node.ws_url))).client_id  # still serving
        await page.close()


async def _done(node: ServerProcess, job_id: str) -> bool:
    async with httpx.AsyncClient(timeout=5) as http:
        return job_id in str((await http.get(f"{node.url}/get_queue/done")).json())
