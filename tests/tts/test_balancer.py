"""The balancer's ordering and circuit breaker, on a clock the test moves."""

from __future__ import annotations

import pytest

from tts.balancer import Balancer

CHAIN = [("a", "openai"), ("b", "openai"), ("espeak", "espeak")]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def names(balancer: Balancer, candidates: list[str] | None = None) -> list[str]:
    return balancer.order(candidates or [n for n, _ in CHAIN], lambda n: n)


def test_fallback_keeps_the_order_given() -> None:
    balancer = Balancer(CHAIN)
    assert [names(balancer) for _ in range(3)] == [["a", "b", "espeak"]] * 3


def test_round_robin_turns_inside_a_tier_and_keeps_kinds_in_chain_order() -> None:
    balancer = Balancer(CHAIN, policy="round_robin")
    firsts = [names(balancer) for _ in range(4)]
    assert firsts == [["a", "b", "espeak"], ["b", "a", "espeak"]] * 2


def test_least_busy_prefers_the_instance_with_fewer_open_streams() -> None:
    balancer = Balancer(CHAIN, policy="least_busy")
    balancer.health["a"].started()
    assert names(balancer) == ["b", "a", "espeak"]
    balancer.health["b"].started()
    balancer.health["b"].started()
    assert names(balancer) == ["a", "b", "espeak"]
    balancer.health["b"].ended()
    assert names(balancer) == ["a", "b", "espeak"]  # a tie keeps the order given


def test_breaker_opens_after_failures_in_a_row_and_a_probe_closes_it() -> None:
    clock = Clock()
    balancer = Balancer(CHAIN, breaker_failures=2, cooldown=30, clock=clock)
    a = balancer.health["a"]
    a.failed()
    assert a.state == "up" and names(balancer)[0] == "a"
    a.failed()
    assert a.state == "cooling_down"
    # Still there as a last resort, behind every healthy provider.
    assert names(balancer) == ["b", "espeak", "a"]
    clock.now += 30
    assert a.state == "probing" and names(balancer)[0] == "a"
    a.started()  # the probe: while it is out, nobody else is sent to a
    assert names(balancer) == ["b", "espeak", "a"]
    a.succeeded(0.004)
    a.ended()
    assert a.state == "up" and names(balancer)[0] == "a"
    assert a.snapshot()["first_byte_ms"]["p50"] == 4.0


def test_a_failed_probe_opens_the_breaker_for_another_cool_down() -> None:
    clock = Clock()
    balancer = Balancer(CHAIN, breaker_failures=1, cooldown=10, clock=clock)
    a = balancer.health["a"]
    a.failed()
    clock.now += 10
    a.started()
    a.failed()
    a.ended()
    assert a.state == "cooling_down"
    clock.now += 9
    assert a.state == "cooling_down"
    clock.now += 1
    assert a.state == "probing"


def test_an_abandoned_probe_lets_the_next_request_probe() -> None:
    clock = Clock()
    balancer = Balancer(CHAIN, breaker_failures=1, cooldown=5, clock=clock)
    a = balancer.health["a"]
    a.failed()
    clock.now += 5
    a.started()
    assert not a.usable()
    a.abandoned()
    a.ended()
    assert a.usable() and a.state == "probing"


def test_success_resets_the_failures_in_a_row() -> None:
    balancer = Balancer(CHAIN, breaker_failures=2)
    a = balancer.health["a"]
    a.failed()
    a.succeeded(0.01)
    a.failed()
    assert a.state == "up"
    assert a.snapshot()["failures"] == 2 and a.snapshot()["consecutive_failures"] == 1


def test_unknown_policy_is_refused_with_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="fallback, round_robin, least_busy"):
        Balancer(CHAIN, policy="random")
