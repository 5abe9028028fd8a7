"""Seeds 000-002 over the wire: scenes, the old REST flow and the session WebSocket."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator

import httpx
import pytest
import websockets

from tests.audio import duration
from tests.servers import ThreadServer
from tests.tts_endpoints.scenes_client import (
    Seen,
    chunks,
    new_scene,
    read_until,
    scene_server,
    session_frames,
    start_session,
)

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def server() -> AsyncIterator[ThreadServer]:
    with scene_server() as running:
        yield running


@pytest.fixture
async def http(server: ThreadServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        yield client


def segments(server: ThreadServer) -> int:
    """espeak segments synthesized so far: proves replays do not synthesize again."""
    return int(server.call(lambda: server.runtime.speech.providers[0].segments_synthesized))


async def test_demo_scene_and_scene_crud(http: httpx.AsyncClient) -> None:
    demo = (await http.get("/api/scenes/1")).json()
    assert demo["title"] == "Demo scene" and len(demo["chunks"]) == 4
    scene_id = await new_scene(http, ["One.", "Two."])
    assert (await http.get(f"/api/scenes/{scene_id}")).json()["chunks"] == ["One.", "Two."]
    assert (await http.get("/api/scenes/99999")).status_code == 404
    assert (await http.post("/api/scenes", json={"chunks": []})).status_code == 422
    assert (await http.post("/api/scenes", json={"chunks": ["x" * 5001]})).status_code == 422
    no_title = await http.post("/api/scenes", json={"chunks": ["Hi."]})
    assert no_title.status_code == 201


async def test_old_flow_chunks_are_404_until_generated(http: httpx.AsyncClient) -> None:
    scene_id = await new_scene(http, chunks(3, tag="old"))
    assert (await http.get(f"/api/tts/audio/{scene_id}/chunk/1")).json()["code"] == (
        "chunk_not_ready"
    )
    done = (await http.post(f"/api/tts/generate/{scene_id}")).json()
    assert done["chunk_count"] == 3 and done["duration"] > 15
    total = 0.0
    for n in (1, 2, 3):
        response = await http.get(f"/api/tts/audio/{scene_id}/chunk/{n}")
        assert response.status_code == 200 and response.headers["content-type"] == "audio/mpeg"
        total += duration(response.content)
    assert abs(total - done["duration"]) < 0.5
    assert (await http.get(f"/api/tts/audio/{scene_id}/chunk/4")).status_code == 404
    assert (await http.post("/api/tts/generate/99999")).status_code == 404


async def test_session_streams_progress_chunks_base64_and_complete(
    server: ThreadServer, http: httpx.AsyncClient
) -> None:
    scene_id = await new_scene(http, chunks(4, tag="b64"))
    session = await start_session(http, scene_id)
    seen = await session_frames(f"{server.ws_url}/ws/tts/{session}")
    ready = seen.of("chunk_ready")
    assert [f["chunk"] for f in ready] == [1, 2, 3, 4]
    assert all(f["chunk_number"] == f["chunk"] and f["total"] == 4 for f in ready)
    assert all(f["total_chunks"] == 4 for f in ready)
    for frame in ready:
        audio = base64.b64decode(frame["audio"])
        assert abs(duration(audio) - frame["duration"]) < 0.1
    progress = seen.of("progress")
    assert progress and all(p["total"] == 4 for p in progress)
    assert progress[-1]["chunks_ready"] == 4
    complete = seen.of("complete")[0]
    assert complete["total_chunks"] == 4
    assert abs(complete["total_duration"] - sum(f["duration"] for f in ready)) < 0.01
    assert seen.close_code == 1000
    # The new flow's chunks feed the old REST route too (same store).
    assert (await http.get(f"/api/tts/audio/{scene_id}/chunk/4")).status_code == 200


async def test_binary_frames_when_asked(server: ThreadServer, http: httpx.AsyncClient) -> None:
    session = await start_session(http, await new_scene(http, chunks(3, tag="bin")))
    seen = await session_frames(f"{server.ws_url}/ws/tts/{session}?binary=1")
    ready = seen.of("chunk_ready")
    assert len(ready) == 3 and all(f["binary"] and "audio" not in f for f in ready)
    assert len(seen.binaries) == 3
    for frame, audio in zip(ready, seen.binaries, strict=True):
        assert abs(duration(audio) - frame["duration"]) < 0.1


async def test_stop_mid_generation(server: ThreadServer, http: httpx.AsyncClient) -> None:
    session = await start_session(http, await new_scene(http, chunks(200, 300, tag="stop")))
    async with websockets.connect(f"{server.ws_url}/ws/tts/{session}") as conn:
        seen = await read_until(conn, Seen(), ("chunk_ready",))
        await conn.send(json.dumps({"type": "stop"}))
        seen = await read_until(conn, seen, ("stopped",))
    stopped = seen.of("stopped")[0]
    assert 1 <= stopped["chunks_ready"] < 200
    assert not seen.of("complete")


async def test_unknown_session_and_bad_frames(
    server: ThreadServer, http: httpx.AsyncClient
) -> None:
    seen = await session_frames(f"{server.ws_url}/ws/tts/nope")
    assert seen.of("error")[0]["message"] == "Session nope not found"
    assert seen.close_code == 4404
    # The server closes a session's socket once the scene is complete: a scene long
    # enough (~1 s of synthesis) that the bad frames surely arrive while it streams.
    scene = await new_scene(http, chunks(8, size=1000, tag="bad"))
    session = await start_session(http, scene)
    async with websockets.connect(f"{server.ws_url}/ws/tts/{session}") as conn:
        await conn.send("{broken")
        await conn.send(json.dumps({"type": "ping"}))
        seen = await read_until(conn, Seen(), ("complete",))
    assert any(f.get("code") == "invalid_json" for f in seen.of("error"))
    assert seen.of("pong") and len(seen.of("chunk_ready")) == 8


async def test_reconnect_resumes_after_the_last_chunk_without_resynthesis(
    server: ThreadServer, http: httpx.AsyncClient
) -> None:
    session = await start_session(http, await new_scene(http, chunks(5, tag="resume")))
    url = f"{server.ws_url}/ws/tts/{session}"
    async with websockets.connect(url) as conn:
        first = await read_until(conn, Seen(), ("chunk_ready",), count=2)
    have = max(f["chunk"] for f in first.of("chunk_ready"))
    await session_frames(f"{url}?last_chunk=5")  # wait until the whole scene exists
    before = segments(server)
    rest = await session_frames(f"{url}?last_chunk={have}")
    assert [f["chunk"] for f in rest.of("chunk_ready")] == list(range(have + 1, 6))
    assert rest.of("complete")[0]["total_chunks"] == 5
    async with websockets.connect(url) as conn:  # resume by frame, binary this time
        await conn.send(json.dumps({"type": "resume", "last_chunk": 3, "binary": True}))
        by_frame = await read_until(conn, Seen(), ("complete",))
    assert [f["chunk"] for f in by_frame.of("chunk_ready")][-2:] == [4, 5]
    # A new session for the same scene replays from SQLite too.
    scene_id = int(server.call(lambda: server.app.api.state.scenes.sessions[session].scene.id))
    again = await session_frames(f"{server.ws_url}/ws/tts/{await start_session(http, scene_id)}")
    assert len(again.of("chunk_ready")) == 5
    assert segments(server) == before


async def test_new_session_first_chunk_is_not_stuck_behind_a_long_scene(
    server: ThreadServer, http: httpx.AsyncClient
) -> None:
    long_session = await start_session(http, await new_scene(http, chunks(300, 300, tag="L")))
    short = await start_session(http, await new_scene(http, chunks(2, tag="S")))
    async with websockets.connect(f"{server.ws_url}/ws/tts/{short}") as conn:
        await read_until(conn, Seen(), ("chunk_ready",))

    def long_state() -> tuple[str, int]:
        found = server.app.api.state.scenes.sessions[long_session]
        return found.state, len(found.chunks)

    state, done = server.call(long_state)
    assert state == "generating" and done < 300
    server.call(lambda: server.app.api.state.scenes.stop(
        server.app.api.state.scenes.sessions[long_session]))  # fmt: skip


async def test_ten_concurrent_sessions_all_complete(
    server: ThreadServer, http: httpx.AsyncClient
) -> None:
    import asyncio

    ids = [await new_scene(http, chunks(3, tag=f"c{i}")) for i in range(10)]
    sessions = [await start_session(http, scene_id) for scene_id in ids]
    results = await asyncio.gather(
        *(session_frames(f"{server.ws_url}/ws/tts/{s}") for s in sessions)
    )
    for seen in results:
        assert [f["chunk"] for f in seen.of("chunk_ready")] == [1, 2, 3]
        assert seen.of("complete")
