"""Every route that synthesizes free text is rate limited (``GENIE_RATE_LIMIT_SPEECH``):
``POST /v1/audio/speech``, ``POST /api/v1/tts``, each ``/ws/tts`` request, scene
generation (``POST /api/tts/generate/{id}`` and ``/generate-ws/{id}``).

Burst 2, one more every 10 s: a third request at once is refused with 429, a
``Retry-After`` and a body that says how long to wait (OpenAI's error shape on its route;
on ``/ws/tts`` an error frame with ``retry_after``, and the socket stays open), and is
counted in ``genie_rate_limited_total{kind="speech"}``. Auth is on and each route's
client is its own subject, so the routes' budgets never mix.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest
import websockets

from config import Settings
from fastapi_app.auth.access import Access
from fastapi_app.auth.security import TokenBucket, TokenVerifier
from fastapi_app.auth.shared_limits import RedisRateLimiter
from fastapi_app.features import Features
from tests.servers import ThreadServer

pytestmark = pytest.mark.anyio

SECRET = "limits-suite-secret-".ljust(64, "l")
TEXT = "Limits keep one client from taking every voice."
WAIT = 20.0


@dataclass
class Outcome:
    allowed: bool
    retry_after: int | None = None
    message: str = ""


@dataclass
class Caller:
    http: httpx.AsyncClient
    server: ThreadServer
    token: str


@pytest.fixture(scope="module")
def server() -> Iterator[ThreadServer]:
    limits = {"rate_limit_speech": 6, "rate_limit_speech_burst": 2}
    with ThreadServer(stage="full", jwt_secret=SECRET, **limits) as running:
        yield running


def _http_outcome(response: httpx.Response) -> Outcome:
    if response.status_code == 200:
        return Outcome(True)
    assert response.status_code == 429, (response.status_code, response.text)
    body = response.json()
    message = body["error"]["message"] if "error" in body else body["message"]
    return Outcome(False, int(response.headers["retry-after"]), message)


async def openai_speech(caller: Caller) -> list[Outcome]:
    body = {"model": "tts-1", "voice": "alloy", "input": TEXT}
    responses = [await caller.http.post("/v1/audio/speech", json=body) for _ in range(3)]
    assert responses[-1].json()["error"]["code"] == "rate_limit_exceeded"  # OpenAI's shape
    return [_http_outcome(r) for r in responses]


async def api_v1_tts(caller: Caller) -> list[Outcome]:
    responses = [await caller.http.post("/api/v1/tts", json={"text": TEXT}) for _ in range(3)]
    assert responses[-1].json()["code"] == "rate_limited"
    return [_http_outcome(r) for r in responses]


def scene_generation(path: str) -> Callable[[Caller], Awaitable[list[Outcome]]]:
    async def attempts(caller: Caller) -> list[Outcome]:
        scene = (await caller.http.post("/api/scenes", json={"chunks": [TEXT]})).json()["id"]
        return [_http_outcome(await caller.http.post(f"{path}/{scene}")) for _ in range(3)]

    return attempts


async def ws_tts(caller: Caller) -> list[Outcome]:
    """Three requests on one socket: two are spoken, the third answered with an error
    frame; the socket still answers a ping afterwards."""
    url = f"{caller.server.ws_url}/ws/tts?token={caller.token}"
    outcomes: list[Outcome] = []
    async with websockets.connect(url) as conn:
        for _ in range(3):
            await conn.send(json.dumps({"text": TEXT}))
        async with asyncio.timeout(WAIT):
            while sum(o.allowed for o in outcomes) < 2 or len(outcomes) < 3:
                message = await conn.recv()
                frame = json.loads(message) if isinstance(message, str) else {}
                if frame.get("status") == "complete":
                    outcomes.append(Outcome(True))
                elif frame.get("status") == "error":
                    assert frame["code"] == "rate_limited", frame
                    outcomes.append(Outcome(False, frame["retry_after"], frame["error"]))
            await conn.send(json.dumps({"ping": True}))
            while json.loads(await conn.recv()).get("status") != "pong":
                pass
    # The refusal is answered at once, before the first request has finished speaking.
    return sorted(outcomes, key=lambda o: not o.allowed)


ROUTES: dict[str, Callable[[Caller], Awaitable[list[Outcome]]]] = {
    "v1_audio_speech": openai_speech,
    "api_v1_tts": api_v1_tts,
    "ws_tts": ws_tts,
    "scene_generate": scene_generation("/api/tts/generate"),
    "scene_generate_ws": scene_generation("/api/tts/generate-ws"),
}


def rate_limited_count(text: str) -> float:
    for line in text.splitlines():
        if line.startswith('genie_rate_limited_total{kind="speech"}'):
            return float(line.split()[-1])
    return 0.0


@pytest.mark.parametrize("route", list(ROUTES))
async def test_a_third_synthesis_at_once_is_refused_with_retry_after(
    server: ThreadServer, route: str
) -> None:
    token = TokenVerifier(SECRET).issue(f"caller-of-{route}")
    attempts = ROUTES[route]
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=WAIT) as http:
        before = rate_limited_count((await http.get("/metrics")).text)
        outcomes = await attempts(Caller(http, server, token))
        after = rate_limited_count((await http.get("/metrics")).text)
    assert [o.allowed for o in outcomes] == [True, True, False], outcomes
    refused = outcomes[-1]
    assert refused.retry_after is not None and 1 <= refused.retry_after <= 10
    assert f"too many speech requests; retry in {refused.retry_after} s" in refused.message
    assert after == before + 1


async def test_the_speech_limit_is_fleet_wide_with_redis() -> None:
    # No Redis is reached here: which limiter the settings build is the point.
    alone = Settings(_env_file=None, stage="full")
    fleet = Settings(_env_file=None, stage="full", redis_url="redis://127.0.0.1:1/0")
    local = Access.from_settings(alone, Features.for_settings(alone))
    shared = Access.from_settings(fleet, Features.for_settings(fleet))
    try:
        assert isinstance(local.speech, TokenBucket) and isinstance(local.login, TokenBucket)
        assert isinstance(shared.speech, RedisRateLimiter)
        assert isinstance(shared.login, RedisRateLimiter)
    finally:
        await local.aclose()
        await shared.aclose()
