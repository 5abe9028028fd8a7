"""Faults of a speech provider, over the wire: the first provider of the chain (a fake
OpenAI-compatible server) answers 500, hangs, or sends bytes that are not audio. The
asker of a question still hears its answer, spoken by the next provider (espeak: its
MP3 decodes at 22,050 Hz, the fake's at 24,000 Hz) once the first-byte timeout is up,
and the job ends done; nothing is left in flight.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import pytest

from tests import audio
from tests.fakes.openai_speech_server import FakeOpenAISpeech, run_in_thread
from tests.fastapi_app.helpers import WsClient
from tests.fleet.nodes import answer_to, eventually
from tests.servers import ThreadServer

pytestmark = pytest.mark.anyio

KEY = "test-key"
QUESTION, ANSWER = "what is 2 plus 2", "2 plus 2 is 4."
FIRST_BYTE_TIMEOUT = 1.0
HANG = 60.0  # the fake's hang: far past every wait of this test


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAISpeech]:
    with run_in_thread(api_key=KEY, hang_delay=HANG) as server:
        yield server


@pytest.fixture(scope="module")
def server(fake: FakeOpenAISpeech) -> Iterator[ThreadServer]:
    settings: dict[str, Any] = {
        "tts_providers": [f"openai@{fake.url}", "espeak"],
        "openai_tts_api_key": KEY,
        "tts_cache_entries": 0,  # every answer is really synthesized
        "tts_first_byte_timeout": FIRST_BYTE_TIMEOUT,
        "openai_tts_timeout": HANG * 2,  # only the first-byte timeout may cut a hang
        "tts_breaker_failures": 1000,  # each fault must reach the provider
        "rate_limit_audio": 0,
    }
    with ThreadServer(**settings) as running:
        yield running


async def upstream(http: httpx.AsyncClient) -> dict[str, Any]:
    return (await http.get("/health")).json()["speech"][0]


@pytest.mark.parametrize("mode", ["500", "hang", "garbage"])
async def test_a_failing_provider_is_replaced_and_the_answer_is_still_spoken(
    server: ThreadServer, fake: FakeOpenAISpeech, mode: str
) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        failures = (await upstream(http))["failures"]
        asked = len(fake.requests)
        fake.mode = mode  # type: ignore[assignment]
        try:
            async with await WsClient.connect(server.ws_url + "/ws") as ws:
                await ws.send(type="query", text=QUESTION)
                job = (await ws.next("queued"))["id_hash"]
                frame = await answer_to(ws, ANSWER)
                # Bounded far below the fake's hang: the timeout cut it, not the fake.
                with anyio.fail_after(HANG / 2):
                    spoken = await http.get(frame["audioURL"])
        finally:
            fake.mode = "ok"
        assert spoken.status_code == 200, spoken.text
        samples, rate = audio.decode(spoken.content)
        assert rate == 22050 and len(samples) / rate > 0.5  # espeak spoke it, whole
        assert audio.rms(spoken.content) > 300

        done = (await http.get("/get_queue/done")).json()["done_jobs"]
        assert any(job in item for item in done)
        health = await upstream(http)
        assert health["failures"] > failures and len(fake.requests) > asked
        assert health["in_flight"] == 0

        async def idle() -> bool:
            jobs = (await http.get("/health")).json()["jobs"]
            return jobs["todo"] == jobs["running"] == 0

        await eventually(idle)
