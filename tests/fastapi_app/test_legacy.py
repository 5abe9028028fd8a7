"""The unmodified Genie page's flow: python-socketio AsyncClient (websocket and polling)
plus the legacy HTTP routes, in every stage."""

from __future__ import annotations

import asyncio
import re
from collections import defaultdict
from typing import Any

import anyio
import httpx
import pytest
import socketio

from tests.audio import duration
from tests.fastapi_app.helpers import WsClient
from tests.servers import ThreadServer

pytestmark = pytest.mark.anyio

EVENTS = (
    "todo_update",
    "run_update",
    "done_update",
    "dead_update",
    "audio_update",
    "time_update",
    "notification_sound_update",
)


class Recorder:
    """A legacy Socket.IO client that records every event it is sent."""

    def __init__(self) -> None:
        self.sio = socketio.AsyncClient(reconnection=False)
        self.events: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.changed = asyncio.Event()
        for name in EVENTS:
            self.sio.on(name, self._handler(name))

    def _handler(self, name: str) -> Any:
        async def record(data: dict[str, Any]) -> None:
            self.events[name].append(data)
            self.changed.set()

        return record

    async def wait_for(self, name: str, count: int = 1, wait: float = 10.0) -> list[dict[str, Any]]:
        with anyio.fail_after(wait):
            while len(self.events[name]) < count:
                self.changed.clear()
                await self.changed.wait()
        return self.events[name]


@pytest.mark.parametrize("transport", ["websocket", "polling"])
@pytest.mark.parametrize("stage", ["skeletal", "mvp", "full"])
async def test_legacy_genie_flow(stage: str, transport: str) -> None:
    async with ThreadServer(stage=stage, clock_interval=0.2) as server:
        page = Recorder()
        await page.sio.connect(server.url, transports=[transport])
        async with httpx.AsyncClient(base_url=server.url) as http:
            # The page pushes the text unencoded: "+", "&" and "<" arrive raw.
            pushed = await http.get("/push?question=what is 2+2 & <b>bold</b>?")
            assert pushed.status_code == 200
            await page.wait_for("done_update")
            audio = await page.wait_for("audio_update", 2)
            assert page.events["todo_update"] and page.events["run_update"]
            for event in audio:
                spoken = await http.get(event["audioURL"])
                assert spoken.status_code == 200 and duration(spoken.content) > 0.3

            done = (await http.get("/get_queue/done")).json()["done_jobs"]
            assert len(done) == 1
            assert "what is 2+2 &amp; &lt;b&gt;bold&lt;/b&gt;?" in done[0]
            job_id = re.match(r"<li id='([0-9a-f]+)'>", done[0]).group(1)
            for name in ("todo", "run", "dead"):
                assert (await http.get(f"/get_queue/{name}")).json() == {f"{name}_jobs": []}

            answer = await http.get(f"/get-answer/{job_id}")
            assert answer.status_code == 200 and duration(answer.content) > 0.3

            deleted = await http.get(f"/delete-snapshot/{job_id}")
            assert deleted.status_code == 200 and job_id in deleted.text
            sound = await page.wait_for("notification_sound_update")
            assert sound[0]["soundFile"] == "/static/sounds/gentle-gong.mp3"
            assert (await page.wait_for("done_update", 2))[-1] == {"value": 0}
            assert (await http.get("/get_queue/done")).json() == {"done_jobs": []}
            assert (await http.get(f"/get-answer/{job_id}")).status_code == 404
            assert (await http.get(f"/delete-snapshot/{job_id}")).status_code == 404

            clock = await page.wait_for("time_update", 2)
            assert re.match(r"\d{4}-\d\d-\d\d @ \d\d:\d\d:\d\d", clock[0]["date"])
        await page.sio.disconnect()


async def test_legacy_and_native_clients_share_one_emit_path() -> None:
    async with ThreadServer(stage="full") as server, httpx.AsyncClient(base_url=server.url) as http:
        page = Recorder()
        await page.sio.connect(server.url, transports=["websocket"])
        async with await WsClient.connect(server.ws_url + "/ws") as native:
            # A legacy push: counts reach both transports, its audio only the legacy page.
            await http.get("/push", params={"question": "what is 3 plus 4"})
            await page.wait_for("audio_update", 2)
            await native.next("done_update")
            # A native query: its audio reaches only the native client.
            await native.send(type="query", text="what is 5 plus 5")
            await native.next("audio_update")
            await native.next("audio_update")
            await page.wait_for("done_update", 2)
            await native.send(type="ping")
            await native.next("pong")
        assert len(page.events["audio_update"]) == 2
        assert all(e["audioURL"].startswith("/get_tts_audio?") for e in page.events["audio_update"])
        native_audio = [f for f in native.seen if f["type"] == "audio_update"]
        assert native_audio[0]["audioURL"].startswith("/api/get-audio?")
        await page.sio.disconnect()


async def test_legacy_http_input_errors() -> None:
    async with ThreadServer(stage="full") as server, httpx.AsyncClient(base_url=server.url) as http:
        assert (await http.get("/push")).status_code == 422
        assert (await http.get("/push?question=")).status_code == 422
        too_long = await http.get("/push", params={"question": "x" * 5001})
        assert too_long.status_code == 413
        assert (await http.get("/get_queue/nope")).status_code == 404
        assert (await http.get("/get_tts_audio")).status_code == 422
        spoken = await http.get("/get_tts_audio", params={"tts_text": "Hello there"})
        assert spoken.status_code == 200 and duration(spoken.content) > 0.3


@pytest.mark.parametrize(
    "path",
    [
        "/static/../config.py",
        "/static/%2e%2e/config.py",
        "/static/..%2fconfig.py",
        "/static/%2e%2e%2fconfig.py",
        "/static//etc/passwd",
        "/static/%2Fetc%2Fpasswd",
        "/static/nothing-here.mp3",
    ],
)
async def test_static_files_cannot_escape_static(path: str) -> None:
    async with ThreadServer(stage="skeletal") as server:
        async with httpx.AsyncClient(base_url=server.url) as http:
            ok = await http.get("/static/sample-audio.mp3")
            assert ok.status_code == 200 and ok.headers["content-type"] == "audio/mpeg"
        # A raw request line, so no client normalises the dots away.
        status, body = await _raw_get(server.port, path)
        assert status in (400, 404), path
        assert b"Settings" not in body and b"root:" not in body


async def _raw_get(port: int, path: str) -> tuple[int, bytes]:
    stream = await anyio.connect_tcp("127.0.0.1", port)
    async with stream:
        await stream.send(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        with anyio.move_on_after(5):
            while True:
                try:
                    data += await stream.receive()
                except anyio.EndOfStream:
                    break
    return int(data.split(b" ", 2)[1]), data
