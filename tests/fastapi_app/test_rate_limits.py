"""Rate limiters: the in-process token bucket, the fleet-wide one on a real Redis."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import pytest

from config import Settings
from fastapi_app.auth.access import Access
from fastapi_app.auth.security import TokenBucket
from fastapi_app.auth.shared_limits import RedisRateLimiter
from fastapi_app.features import Features
from tests.redis_server import RedisServer, running_redis
from tests.servers import free_port

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    with running_redis() as server:
        yield server


async def test_the_token_bucket_spends_its_burst_then_says_how_long_to_wait() -> None:
    now = [100.0]
    bucket = TokenBucket(60, 2, clock=lambda: now[0])  # one a second, two at once
    assert [await bucket.hit("a"), await bucket.hit("a")] == [None, None]
    assert await bucket.hit("a") == pytest.approx(1.0)
    assert await bucket.hit("b") is None  # another key has its own bucket
    now[0] += 1.0
    assert await bucket.hit("a") is None


async def test_processes_share_one_moving_window_in_redis(redis_server: RedisServer) -> None:
    # Two limiters on one Redis and prefix stand for two processes of one fleet.
    one, two = (RedisRateLimiter(redis_server.url, "t1", "queries", 6, 2) for _ in range(2))
    other_fleet = RedisRateLimiter(redis_server.url, "t2", "queries", 6, 2)
    audio = RedisRateLimiter(redis_server.url, "t1", "audio", 6, 2)
    try:
        assert one.window == 20.0  # burst 2 at 6 a minute: 2 per 20 s
        assert [await one.hit("sub:alice"), await two.hit("sub:alice")] == [None, None]
        waits = [await one.hit("sub:alice"), await two.hit("sub:alice")]
        assert all(w is not None and 19.0 < w <= 20.0 for w in waits), waits
        assert await two.hit("sub:bob") is None  # another client
        assert await other_fleet.hit("sub:alice") is None  # another prefix
        assert await audio.hit("sub:alice") is None  # another limit
        keys = redis_server.client().keys("*")
        assert keys and all(k.startswith(("t1:rl:", "t2:rl:")) for k in keys), keys
    finally:
        for limiter in (one, two, other_fleet, audio):
            await limiter.aclose()


async def test_redis_down_fails_open_and_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    limiter = RedisRateLimiter(f"redis://127.0.0.1:{free_port()}/0", "t", "queries", 6, 1)
    try:
        with caplog.at_level(logging.WARNING, logger="fastapi_app.auth.shared_limits"):
            started = time.monotonic()
            assert [await limiter.hit("sub:alice") for _ in range(3)] == [None] * 3
            assert time.monotonic() - started < 3.0
        warnings = [r for r in caplog.records if "not enforced" in r.getMessage()]
        assert len(warnings) == 1
    finally:
        await limiter.aclose()


async def test_access_shares_limits_only_when_redis_is_configured() -> None:
    alone = Settings(stage="full")
    shared = Settings(stage="full", redis_url="redis://127.0.0.1:1/0", rate_limit_audio=0)
    local = Access.from_settings(alone, Features.for_settings(alone))
    fleet = Access.from_settings(shared, Features.for_settings(shared))
    assert isinstance(local.queries, TokenBucket) and isinstance(local.audio, TokenBucket)
    assert isinstance(fleet.queries, RedisRateLimiter) and fleet.audio is None
    await local.aclose()
    await fleet.aclose()
