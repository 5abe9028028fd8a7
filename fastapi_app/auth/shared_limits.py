"""Rate limits shared by every process of a fleet: counters in its Redis (``limits``).

Without ``GENIE_REDIS_URL`` each process keeps its own
:class:`~fastapi_app.auth.security.TokenBucket`; with it, a client balanced over N
processes would get N times its limit, so the counters live in the fleet's Redis
instead, under ``<GENIE_REDIS_CHANNEL>:rl:``.
"""

from __future__ import annotations

import logging
import math
import time

from limits import RateLimitItemPerSecond
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError
from redis.asyncio import ConnectionPool
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

# A limiter sits in front of every question: a Redis that stops answering must cost a
# request well under a second, not the client's default minutes of retries.
REDIS_TIMEOUT = 0.5
WARN_EVERY = 60.0  # seconds between two "limits not enforced" warnings


class RedisRateLimiter:
    """Per-key limit of ``rate_per_minute`` sustained and ``burst`` at once, fleet-wide.

    Mapping of the token bucket onto ``limits``: one moving window of ``burst`` requests
    per ``ceil(60 * burst / rate_per_minute)`` seconds (the time a bucket takes to refill).
    Like the bucket it allows ``burst`` at once and ``rate_per_minute`` on average, and
    over any span T never more than the bucket's ``burst + rate * T``. It differs after a
    full burst: the bucket lets one request through every ``60 / rate`` seconds, the
    window only once its oldest request has aged out. A second window ("rate per minute")
    would add nothing: any window must hold at least ``burst`` to allow the burst and at
    most ``rate`` per minute on average, and the one above is the loosest such window.
    The moving window is exact (a list of timestamps per key, one Lua script per hit);
    timestamps come from each process's clock, so the hosts need NTP.

    ``hit`` returns the seconds until the oldest request in the window expires, from
    ``get_window_stats``. Fail open: if Redis does not answer, the request is allowed and
    a warning is logged at most once per ``WARN_EVERY`` seconds (``/push`` and ``/ws``
    ``query`` answer 503 / ``unavailable`` on their own while Redis is down).
    """

    def __init__(
        self, url: str, prefix: str, name: str, rate_per_minute: float, burst: int
    ) -> None:
        burst = max(burst, 1)
        window = max(1, math.ceil(60.0 * burst / rate_per_minute))
        self._item = RateLimitItemPerSecond(burst, window)
        self._name = name  # queries and audio keep separate counters for one client
        self._pool = ConnectionPool.from_url(
            url,
            socket_connect_timeout=REDIS_TIMEOUT,
            socket_timeout=REDIS_TIMEOUT,
            # One quick retry covers a pooled connection Redis closed (e.g. a restart).
            retry=Retry(NoBackoff(), 1),
            retry_on_error=[RedisConnectionError],
        )
        # Our own pool (closed by ``aclose``); limits builds its redis-py client on it.
        storage = RedisStorage(
            "async+" + url,
            implementation="redispy",
            key_prefix=f"{prefix}:rl",
            wrap_exceptions=True,
            connection_pool=self._pool,
        )
        self._limiter = MovingWindowRateLimiter(storage)
        self._warned_at: float | None = None

    @property
    def window(self) -> float:
        return float(self._item.get_expiry())

    async def hit(self, key: str) -> float | None:
        try:
            if await self._limiter.hit(self._item, self._name, key):
                return None
            reset, _ = await self._limiter.get_window_stats(self._item, self._name, key)
        except (StorageError, RedisError, OSError) as exc:
            self._fail_open(exc)
            return None
        # The oldest request may have aged out between the two calls: still refused now.
        return max(reset - time.time(), 0.001)

    async def aclose(self) -> None:
        await self._pool.aclose()

    def _fail_open(self, exc: Exception) -> None:
        now = time.monotonic()
        if self._warned_at is None or now - self._warned_at >= WARN_EVERY:
            self._warned_at = now
            log.warning(
                "%s rate limit not enforced: Redis did not answer (%s); allowing requests",
                self._name,
                exc,
            )
