"""The unmodified Genie page's flow against ``python -m flask_app``, in both async modes
and over both Socket.IO transports: real server process, real python-socketio client."""

from __future__ import annotations

import re
from urllib.parse import quote

import httpx
import pytest

from tests.audio import duration
from tests.flask_app.launch import flask_server
from tests.flask_app.sio import EventLog

pytestmark = pytest.mark.anyio

QUESTION = "what is 2+2 & <b>bold</b>?"
ESCAPED = "what is 2+2 &amp; &lt;b&gt;bold&lt;/b&gt;?"


@pytest.mark.parametrize("transport", ["websocket", "polling"])
@pytest.mark.parametrize("async_mode", ["threading", "gevent"])
async def test_legacy_genie_flow(async_mode: str, transport: str) -> None:
    with flask_server(async_mode) as server:
        page = await EventLog().connect(server.url, transport)
        async with httpx.AsyncClient(base_url=server.url, timeout=20) as http:
            # The page pushes the text unencoded: "+", "&" and "<" arrive raw.
            pushed = await http.get(f"/push?question={QUESTION}")
            assert pushed.status_code == 200, pushed.text
            assert re.fullmatch(r"Job \[[0-9a-f]{32}\] added to the queue", pushed.text)
            await page.wait_for("done_update", where=lambda d: d == {"value": 1})
            audio = await page.wait_for("audio_update", 2)
            # Seed 003: url_for('get_tts_audio') + "?tts_text=" + the quoted message.
            assert audio[0] == {
                "audioURL": "/get_tts_audio?tts_text=" + quote("hmm... let me think", safe="")
            }
            for event in audio:
                spoken = await http.get(event["audioURL"])
                assert spoken.status_code == 200
                assert spoken.headers["content-type"] == "audio/mpeg"
                assert duration(spoken.content) > 0.3
            assert page.of("todo_update")[:2] == [{"value": 1}, {"value": 0}]
            assert page.of("run_update") == [{"value": 1}, {"value": 0}]

            done = (await http.get("/get_queue/done")).json()["done_jobs"]
            assert len(done) == 1 and ESCAPED in done[0] and "<b>" not in done[0]
            job_id = re.match(r"<li id='([0-9a-f]+)'>", done[0]).group(1)
            for name in ("todo", "run", "dead"):
                assert (await http.get(f"/get_queue/{name}")).json() == {f"{name}_jobs": []}

            answer = await http.get(f"/get-answer/{job_id}")
            assert answer.status_code == 200 and duration(answer.content) > 0.3

            deleted = await http.get(f"/delete-snapshot/{job_id}")
            assert deleted.status_code == 200
            assert deleted.text == f"Deleted snapshot [{job_id}]"
            sound = await page.wait_for("notification_sound_update")
            assert sound == [{"soundFile": "/static/sounds/gentle-gong.mp3"}]
            # As the original: the done count first, then the gong.
            assert page.without_clock()[-2:] == [
                ("done_update", {"value": 0}),
                ("notification_sound_update", {"soundFile": "/static/sounds/gentle-gong.mp3"}),
            ]
            assert (await http.get("/get_queue/done")).json() == {"done_jobs": []}

            clock = await page.wait_for("time_update", 2)
            assert re.match(r"\d{4}-\d\d-\d\d @ \d\d:\d\d:\d\d", clock[0]["date"])
            health = (await http.get("/health")).json()
            assert health["async_mode"] == async_mode
            assert health["connections"] == {"socketio": 1}
        await page.close()
        assert server.alive(), server.tail()


@pytest.mark.parametrize("async_mode", ["threading", "gevent"])
async def test_every_page_gets_the_broadcasts(async_mode: str) -> None:
    """Two pages on different transports both see the same events in the same order.

    Also: any ``config.Settings`` field is a flag of ``python -m flask_app``."""
    ding = {"soundFile": "/static/ding.mp3"}
    with flask_server(async_mode, args=("--notification-sound", ding["soundFile"])) as server:
        pages = [
            await EventLog().connect(server.url, "websocket"),
            await EventLog().connect(server.url, "polling"),
        ]
        async with httpx.AsyncClient(base_url=server.url, timeout=20) as http:
            for n in range(3):
                assert (await http.get(f"/push?question=what is {n} plus 1")).status_code == 200
            for page in pages:
                await page.wait_for("done_update", where=lambda d: d == {"value": 3})
                await page.wait_for("audio_update", 6)
            done = (await http.get("/get_queue/done")).json()["done_jobs"]
            job_id = re.match(r"<li id='([0-9a-f]+)'>", done[0]).group(1)
            assert (await http.get(f"/delete-snapshot/{job_id}")).status_code == 200
            for page in pages:
                assert await page.wait_for("notification_sound_update") == [ding]
        first, second = (page.without_clock() for page in pages)
        assert first[: len(second)] == second[: len(first)]
        for page in pages:
            await page.close()
