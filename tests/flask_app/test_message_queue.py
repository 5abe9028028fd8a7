"""``--message-queue redis://...``: two server processes (one per async mode) share their
Socket.IO broadcasts through a real Redis, so a page on either sees the other's jobs.

Skipped with a reason when ``redis-server`` is absent (``.ci/run`` installs it).
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from queues.handlers import OfflineHandler
from tests.flask_app.launch import flask_server
from tests.flask_app.sio import EventLog
from tests.redis_server import running_redis
from wire.urls import legacy_audio_url

pytestmark = pytest.mark.anyio

QUESTIONS = ("what is 1 plus 1", "what is 2 plus 2")


@pytest.fixture
def redis_url() -> Iterator[str]:
    with running_redis() as server:
        yield server.url


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
