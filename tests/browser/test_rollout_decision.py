"""``wire.rollout``: the transport decision itself (no browser, no server)."""

from __future__ import annotations

import math
import random

import pytest
from pydantic import ValidationError

from config import Settings
from wire import rollout
from wire.rollout import BUCKETS, RolloutConfig, decide


def config(percent: float = 50, kill: bool = False) -> RolloutConfig:
    return RolloutConfig(ws_percent=percent, kill_switch=kill)


@pytest.mark.parametrize(
    ("cfg", "ws_available", "override", "cookie", "expected"),
    [
        (config(100, kill=True), True, "ws", "0", ("socketio", "kill_switch")),
        (config(100), False, "ws", "0", ("socketio", "ws_unavailable")),
        (config(100, kill=True), False, None, None, ("socketio", "kill_switch")),
        (config(0), True, "ws", "9999", ("ws", "override")),
        (config(100), True, "socketio", "0", ("socketio", "override")),
        (config(100), True, " WS ", None, ("ws", "override")),
        (config(50), True, None, "4999", ("ws", "cookie")),
        (config(50), True, None, "5000", ("socketio", "cookie")),
        (config(50), True, "pigeon", "5000", ("socketio", "cookie")),
        (config(50), True, None, None, ("ws", "new_bucket")),  # rand() -> 7 below
        (config(50), True, None, "bogus", ("ws", "new_bucket")),
    ],
)
def test_precedence(
    cfg: RolloutConfig,
    ws_available: bool,
    override: str | None,
    cookie: str | None,
    expected: tuple[str, str],
) -> None:
    decision = decide(
        cfg, ws_available=ws_available, override=override, cookie=cookie, rand=lambda: 7
    )
    assert decision.pair() == expected
    assert decision.reason in rollout.REASONS and decision.transport in rollout.TRANSPORTS
    # The bucket to store is the browser's own, whatever decided.
    stored = rollout.parse_bucket(cookie)
    assert decision.bucket == (stored if stored is not None else 7)


@pytest.mark.parametrize(
    ("value", "bucket"),
    [("0", 0), ("9999", 9999), ("0042", 42), (None, None), ("", None), ("-1", None),
     ("10000", None), ("99999999", None), ("1e3", None), ("²", None), ("１２", None),
     (" 12", None)],
)  # fmt: skip
def test_parse_bucket(value: str | None, bucket: int | None) -> None:
    assert rollout.parse_bucket(value) == bucket


@pytest.mark.parametrize("percent", [0, 0.5, 10, 50, 99.99, 100])
def test_percentage_is_exact_over_all_buckets(percent: float) -> None:
    cfg = config(percent)
    on_ws = sum(
        decide(cfg, ws_available=True, cookie=str(b)).transport == "ws" for b in range(BUCKETS)
    )
    assert on_ws == round(percent * BUCKETS / 100)


def test_raising_the_percentage_never_moves_a_browser_back() -> None:
    steps = [0, 1, 5, 25, 50, 75, 100]
    for bucket in range(0, BUCKETS, 7):
        seen = [decide(config(p), ws_available=True, cookie=str(bucket)).transport for p in steps]
        first_ws = seen.index("ws") if "ws" in seen else len(seen)
        assert seen[first_ws:] == ["ws"] * (len(seen) - first_ws), (bucket, seen)


def test_new_buckets_split_as_asked() -> None:
    """100,000 fresh browsers at 30 %: the share on ws within a 99.9 % normal bound."""
    rng = random.Random(20261125)
    n, p = 100_000, 0.30
    on_ws = sum(
        decide(config(30), ws_available=True, rand=lambda: rng.randrange(BUCKETS)).transport == "ws"
        for _ in range(n)
    )
    bound = 3.29 * math.sqrt(p * (1 - p) / n)
    assert abs(on_ws / n - p) < bound


def test_default_rand_draws_fresh_buckets() -> None:
    buckets = {decide(config(), ws_available=True).bucket for _ in range(200)}
    assert len(buckets) > 150 and all(0 <= b < BUCKETS for b in buckets)


def test_settings_defaults_mean_off() -> None:
    cfg = RolloutConfig.from_settings(Settings(_env_file=None))
    assert cfg == RolloutConfig()
    assert (cfg.ws_percent, cfg.kill_switch) == (0.0, False)
    assert cfg.cookie_name == "genie_rollout_bucket"


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENIE_ROLLOUT_WS_PERCENT", "25")
    monkeypatch.setenv("GENIE_ROLLOUT_KILL_SWITCH", "true")
    cfg = RolloutConfig.from_settings(Settings(_env_file=None))
    assert (cfg.ws_percent, cfg.kill_switch) == (25.0, True)


@pytest.mark.parametrize("raw", ["150", "-5", "nan", "lots"])
def test_settings_refuse_percentages_out_of_range(
    monkeypatch: pytest.MonkeyPatch, raw: str
) -> None:
    monkeypatch.setenv("GENIE_ROLLOUT_WS_PERCENT", raw)
    with pytest.raises(ValidationError, match="rollout_ws_percent"):
        Settings(_env_file=None)


def test_client_config_body() -> None:
    cfg = config(25)
    decision = decide(cfg, ws_available=True, cookie="100")
    body = rollout.client_config_body(
        decision, cfg, server="fastapi", transports=("socketio", "ws"), notification_sound="/s"
    )
    assert body == {
        "server": "fastapi",
        "transport": "ws",
        "reason": "cookie",
        "detail": "bucket 100 < 2500 of 10000 (25 % on ws)",
        "bucket": 100,
        "ws_percent": 25,
        "kill_switch": False,
        "transports": ["socketio", "ws"],
        "ws_path": "/ws",
        "socketio_path": "/socket.io/",
        "notification_sound": "/s",
    }
    flask = rollout.client_config_body(
        decision, cfg, server="flask", transports=("socketio",), notification_sound=None
    )
    assert flask["ws_path"] is None and flask["transports"] == ["socketio"]
