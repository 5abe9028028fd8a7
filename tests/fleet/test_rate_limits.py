"""Rate limits across a fleet: two real FastAPI processes on one real Redis count a
client's questions together, so balancing over N processes does not give it N limits."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from fastapi_app.auth.security import TokenVerifier
from tests.fastapi_app.helpers import WsClient, ws_url
from tests.fleet.nodes import fleet
from tests.redis_server import RedisServer, running_redis

pytestmark = pytest.mark.anyio

SECRET = "test-secret-at-least-32-bytes-long!"
# Two questions at once, then one per 10 s: nothing refills during the test.
LIMITS = {"rate_limit_queries": 6, "rate_limit_queries_burst": 2, "jwt_secret": SECRET}


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    with running_redis() as server:
        yield server


def _bearer(subject: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TokenVerifier(SECRET).issue(subject, ttl=600)}"}


async def _ask(client: WsClient, text: str) -> dict[str, Any]:
    """The answer to one question: ``queued`` or an ``error`` frame."""
    await client.send(type="query", text=text)
    return await client.next("queued", "error")


async def test_one_subject_gets_one_limit_on_the_whole_fleet(redis_server: RedisServer) -> None:
    with fleet(redis_server.url, {}, {}, **LIMITS) as (one, two):
        alice = [
            await WsClient.connect(ws_url(n.ws_url), additional_headers=_bearer("alice"))
            for n in (one, two)
        ]
        bob = await WsClient.connect(ws_url(two.ws_url), additional_headers=_bearer("bob"))
        try:
            first = [await _ask(alice[0], "what is 1 plus 1"), await _ask(alice[1], "what is 2")]
            assert [f["type"] for f in first] == ["queued", "queued"]
            for client in alice:  # the burst is spent on both processes
                refused = await _ask(client, "what is 3 plus 3")
                assert refused["type"] == "error" and refused["code"] == "rate_limited"
                assert 0 < refused["retry_after"] <= 20
            assert (await _ask(bob, "what is 4 plus 4"))["type"] == "queued"

            # The HTTP path shares the same counters (key ``sub:<subject>``).
            async with httpx.AsyncClient(timeout=5, headers=_bearer("carol")) as http:
                pushes = [
                    await http.get(f"{n.url}/push", params={"question": "hi"})
                    for n in (one, two, one)
                ]
                assert [r.status_code for r in pushes] == [200, 200, 429]
                assert 1 <= int(pushes[-1].headers["retry-after"]) <= 20
                still = await http.get(f"{two.url}/push", params={"question": "hi"})
                assert still.status_code == 429
        finally:
            for client in (*alice, bob):
                await client.close()
