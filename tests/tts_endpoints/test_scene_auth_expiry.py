"""Session expiry, JWT on the session socket, and the fair scheduler on its own."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
import websockets

from fastapi_app.auth.security import TokenVerifier
from fastapi_app.scenes import FairScheduler
from tests.tts_endpoints.scenes_client import (
    Seen,
    new_scene,
    read_until,
    scene_server,
    session_frames,
    start_session,
)

pytestmark = pytest.mark.anyio
SECRET = "test-secret-for-scenes-0123456789abcdef"


async def test_idle_session_expires_with_the_seed_message() -> None:
    async with (
        scene_server(scene_session_ttl=0.3) as server,
        httpx.AsyncClient(base_url=server.url, timeout=30) as http,
    ):
        session = await start_session(http, await new_scene(http, ["Short one."]))
        url = f"{server.ws_url}/ws/tts/{session}"
        alive = await session_frames(url)  # attached: no expiry while it streams
        assert alive.of("complete")
        await asyncio.sleep(1.0)  # idle longer than the ttl
        gone = await session_frames(url)
    assert gone.of("error")[0]["message"] == f"Session {session} not found"
    assert gone.close_code == 4404


async def test_jwt_by_query_or_first_frame_and_refusals() -> None:
    tokens = TokenVerifier(SECRET)
    alice, bob = tokens.issue("alice"), tokens.issue("bob")
    async with scene_server(jwt_secret=SECRET) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            assert (await http.post("/api/tts/generate-ws/1")).status_code == 401
            auth = {"headers": {"Authorization": f"Bearer {alice}"}}
            scene_id = await new_scene(http, ["Secret one.", "Secret two."], **auth)
            session = await start_session(http, scene_id, **auth)
        url = f"{server.ws_url}/ws/tts/{session}"
        by_query = await session_frames(f"{url}?token={alice}")
        async with websockets.connect(url) as conn:
            await conn.send(json.dumps({"type": "auth", "token": alice}))
            by_frame = await read_until(conn, Seen(), ("complete",))
        bad = await session_frames(f"{url}?token=not-a-jwt")
        async with websockets.connect(url) as conn:
            await conn.send(json.dumps({"type": "ping"}))  # not an auth frame
            missing = await read_until(conn, Seen(), ("chunk_ready",))
        other = await session_frames(f"{url}?token={bob}")
    assert len(by_query.of("chunk_ready")) == 2 and by_query.of("complete")
    assert len(by_frame.of("chunk_ready")) == 2
    assert bad.of("error")[0]["code"] == "invalid_token" and bad.close_code == 1008
    assert missing.of("error")[0]["code"] == "missing_token"
    assert missing.close_code == 1008 and not missing.of("chunk_ready")
    assert other.of("error")[0]["code"] == "forbidden" and other.close_code == 1008


async def test_fair_scheduler_serves_the_least_served_first() -> None:
    scheduler = FairScheduler(slots=1)
    order: list[str] = []

    async def take(key: str) -> None:
        async with scheduler.turn(key):
            order.append(key)
            await asyncio.sleep(0)

    async with scheduler.turn("long"):  # "long" holds the only slot ...
        waiters = [asyncio.create_task(take("long")) for _ in range(3)]
        await asyncio.sleep(0)
        late = asyncio.create_task(take("new"))  # ... and a newcomer arrives last
        await asyncio.sleep(0)
    await asyncio.gather(*waiters, late)
    # "long" was served once already: the newcomer (served 0) goes first.
    assert order[0] == "new" and order.count("long") == 3


async def test_fair_scheduler_cancelled_waiter_passes_the_slot_on() -> None:
    scheduler = FairScheduler(slots=1)
    async with scheduler.turn("a"):
        waiter = asyncio.create_task(_hold(scheduler, "b"))
        await asyncio.sleep(0)
        waiter.cancel()
    async with asyncio.timeout(2):
        async with scheduler.turn("c"):
            pass


async def _hold(scheduler: FairScheduler, key: str) -> None:
    async with scheduler.turn(key):
        await asyncio.sleep(10)
