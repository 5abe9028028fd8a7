"""Which provider speaks next: the policy, and a circuit breaker per provider.

The chain in ``GENIE_TTS_PROVIDERS`` stays a fallback chain between kinds. Adjacent
instances of ONE kind (two Kokoro servers, say) form a tier, and the policy spreads
requests inside a tier:

- ``fallback``: the order given, always (the first healthy instance takes everything);
- ``round_robin``: each request starts at the next instance of the tier;
- ``least_busy``: the instance with the fewest streams open goes first (ties: order given).

A provider that fails ``breaker_failures`` times in a row is taken out for
``cooldown`` seconds (moved behind every healthy provider, so it is still tried as a
last resort rather than nothing speaking at all). After the cool-down ONE request
probes it in its normal place: a first byte closes the breaker, a failure opens it for
another cool-down. A first-byte timeout counts as a failure; refusals (unknown voice,
unsupported format) do not.

We keep this small instead of taking a circuit-breaker library: the ones on PyPI wrap a
whole call, while here success is decided at the first byte of a stream and failure can
also come after it.
"""

from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar, get_args

from tts import metrics

Policy = Literal["fallback", "round_robin", "least_busy"]
POLICIES: tuple[str, ...] = get_args(Policy)
State = Literal["up", "cooling_down", "probing"]
WINDOW = 512  # first-byte times kept per provider for /health's p50/p99

T = TypeVar("T")


def _percentile(ordered: Sequence[float], share: float) -> float:
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


@dataclass(slots=True)
class ProviderHealth:
    """One provider's breaker, load and first-byte times."""

    name: str
    kind: str
    breaker_failures: int
    cooldown: float
    clock: Callable[[], float] = time.monotonic
    in_flight: int = 0
    failures: int = 0  # every failure since start
    successes: int = 0  # first bytes delivered (bench.tts_openai reads the spread)
    consecutive: int = 0  # failures since the last success
    opened_at: float | None = None  # breaker open since (None: closed)
    probing: bool = False  # the one request allowed through after the cool-down is out
    first_byte: deque[float] = field(default_factory=lambda: deque(maxlen=WINDOW))

    def __post_init__(self) -> None:
        self._publish()

    @property
    def state(self) -> State:
        if self.opened_at is None:
            return "up"
        if self.probing or self.clock() - self.opened_at >= self.cooldown:
            return "probing"
        return "cooling_down"

    def usable(self) -> bool:
        """Closed, or cooled down with no probe out yet."""
        if self.opened_at is None:
            return True
        return not self.probing and self.clock() - self.opened_at >= self.cooldown

    def started(self) -> None:
        self.in_flight += 1
        metrics.PROVIDER_IN_FLIGHT.labels(self.name).set(self.in_flight)
        if self.opened_at is not None and self.usable():
            self.probing = True
            self._publish()

    def ended(self) -> None:
        self.in_flight -= 1
        metrics.PROVIDER_IN_FLIGHT.labels(self.name).set(self.in_flight)

    def succeeded(self, first_byte_seconds: float) -> None:
        self.successes += 1
        self.consecutive = 0
        self.first_byte.append(first_byte_seconds)
        if self.opened_at is not None:
            self.opened_at, self.probing = None, False
            self._publish()

    def failed(self) -> None:
        self.failures += 1
        self.consecutive += 1
        if self.probing or self.consecutive >= self.breaker_failures:
            self.opened_at, self.probing = self.clock(), False
            self._publish()

    def abandoned(self) -> None:
        """The caller left before the first byte: neither success nor failure."""
        if self.probing:
            self.probing = False  # let the next request probe instead
            self._publish()

    def snapshot(self) -> dict[str, Any]:
        ordered = sorted(self.first_byte)
        timing = (
            {
                "p50": round(_percentile(ordered, 0.5) * 1000, 2),
                "p99": round(_percentile(ordered, 0.99) * 1000, 2),
                "samples": len(ordered),
            }
            if ordered
            else None
        )
        return {
            "name": self.name,
            "kind": self.kind,
            "state": self.state,
            "in_flight": self.in_flight,
            "failures": self.failures,
            "consecutive_failures": self.consecutive,
            "first_byte_ms": timing,
        }

    def _publish(self) -> None:
        metrics.PROVIDER_STATE.labels(self.name).state(self.state)


class Balancer:
    """Orders a request's candidates by policy and health."""

    def __init__(
        self,
        providers: Iterable[tuple[str, str]],
        *,
        policy: str = "fallback",
        breaker_failures: int = 3,
        cooldown: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if policy not in POLICIES:
            raise ValueError(f"unknown speech policy {policy!r}; valid: {', '.join(POLICIES)}")
        self.policy = policy
        self.health = {
            name: ProviderHealth(name, kind, breaker_failures, cooldown, clock)
            for name, kind in providers
        }
        self._turns: dict[tuple[str, ...], itertools.count[int]] = {}

    def order(self, candidates: Sequence[T], name: Callable[[T], str]) -> list[T]:
        """``candidates`` (chain order) in the order to try them for one request."""
        tiers = itertools.groupby(candidates, key=lambda c: self.health[name(c)].kind)
        healthy: list[T] = []
        resting: list[T] = []
        for _, tier in tiers:
            for c in self._spread(list(tier), name):
                (healthy if self.health[name(c)].usable() else resting).append(c)
        return healthy + resting

    def _spread(self, tier: list[T], name: Callable[[T], str]) -> list[T]:
        if len(tier) < 2 or self.policy == "fallback":
            return tier
        if self.policy == "least_busy":
            return sorted(tier, key=lambda c: self.health[name(c)].in_flight)
        key = tuple(name(c) for c in tier)
        turn = next(self._turns.setdefault(key, itertools.count())) % len(tier)
        return tier[turn:] + tier[:turn]

    def snapshot(self) -> list[dict[str, Any]]:
        return [health.snapshot() for health in self.health.values()]
