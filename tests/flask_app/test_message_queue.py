"""``--message-queue redis://...``: two server processes (one per async mode) share their
Socket.IO broadcasts through a real Redis, so a page on either sees the other's jobs.

Skipped with a reason when ``redis-server`` or the ``redis`` package is absent.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from collections.abc import Iterator

import httpx
import pytest

from queues.handlers import OfflineHandler
from tests.flask_app.launch import flask_server, free_port
from tests.flask_app.sio import EventLog
from wire.urls import legacy_audio_url

pytestmark = pytest.mark.anyio

QUESTIONS = ("what is 1 plus 1", "what is 2 plus 2")


@pytest.fixture
def redis_url() -> Iterator[str]:
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    redis = pytest.importorskip("redis", reason="the redis package is not installed")
    port = free_port()
    cmd = [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        client = redis.Redis(host="127.0.0.1", port=port)
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(redis.ConnectionError):
                if client.ping():
                    break
            if time.monotonic() > deadline or proc.poll() is not None:
                pytest.fail("redis-server did not start")
            time.sleep(0.05)
        client.close()
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)


async def test_two_processes_share_broadcasts(redis_url: str) -> None:
    queue = ("--message-queue", redis_url)
    with flask_server("threading", args=queue) as one, flask_server("gevent", args=queue) as two:
        pages = [
            await EventLog().connect(one.url, "websocket"),
            await EventLog().connect(two.url, "polling"),
        ]
        async with httpx.AsyncClient(timeout=20) as http:
            # Each process answers its own job; both pages hear both.
            for server, question in zip((one, two), QUESTIONS, strict=True):
                assert (await http.get(f"{server.url}/push?question={question}")).is_success
            answers = {legacy_audio_url(OfflineHandler().answer(q)) for q in QUESTIONS}
            for page in pages:
                for url in answers:
                    await page.wait_for(
                        "audio_update", where=lambda e, url=url: e["audioURL"] == url
                    )
                assert len(page.of("done_update")) >= 2
        for page in pages:
            await page.close()
        assert one.alive() and two.alive(), one.tail() + two.tail()
