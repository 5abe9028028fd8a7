"""Staged rollout of the native ``/ws`` transport: which transport a browser should use.

Framework-free: both apps call :func:`decide` and answer ``GET /api/client-config`` with
:func:`client_config_body`; each sets the bucket cookie with its own response API.

Every browser holds a random *bucket* (0 .. 9,999) in a cookie. A bucket below
``ws_percent * 100`` gets ``ws``. Keeping the bucket, not the decided transport, makes
the rollout monotone: raising the percentage only moves browsers from Socket.IO to
``/ws``, never back, and lowering it does the reverse.

Precedence, first match wins (the label is ``reason``, used as a metrics label):

1. ``kill_switch``     the kill switch is on: ``socketio``, whatever else is asked
2. ``ws_unavailable``  this server has no ``/ws`` (Flask; FastAPI's skeletal stage)
3. ``override``        ``?transport=ws|socketio`` (for testing one browser; not sticky)
4. ``cookie``          the browser's bucket cookie against the percentage
5. ``new_bucket``      no (valid) cookie yet: a fresh random bucket, then as 4

The bucket is returned (to be set again) whatever decided, so a browser keeps its place
in the rollout through a kill switch or an override.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from config import Settings

WS = "ws"
SOCKETIO = "socketio"
TRANSPORTS = (WS, SOCKETIO)
REASONS = ("kill_switch", "ws_unavailable", "override", "cookie", "new_bucket")
BUCKETS = 10_000  # basis points: percentages like 0.5 % work

DEFAULT_COOKIE = "genie_rollout_bucket"
DEFAULT_COOKIE_MAX_AGE = 365 * 24 * 3600


def random_bucket() -> int:
    return secrets.randbelow(BUCKETS)


@dataclass(frozen=True, slots=True)
class RolloutConfig:
    ws_percent: float = 0.0
    kill_switch: bool = False
    cookie_name: str = DEFAULT_COOKIE
    cookie_max_age: int = DEFAULT_COOKIE_MAX_AGE

    @classmethod
    def from_settings(cls, settings: Settings) -> RolloutConfig:
        return cls(
            ws_percent=settings.rollout_ws_percent,
            kill_switch=settings.rollout_kill_switch,
            cookie_name=settings.rollout_cookie_name,
            cookie_max_age=settings.rollout_cookie_max_age,
        )

    @property
    def threshold(self) -> int:
        """Buckets below this get ``ws``."""
        return round(self.ws_percent * BUCKETS / 100)


@dataclass(frozen=True, slots=True)
class Decision:
    transport: str
    reason: str
    detail: str
    bucket: int

    def pair(self) -> tuple[str, str]:
        return self.transport, self.reason


def parse_bucket(value: str | None) -> int | None:
    """The bucket of a cookie value; None when missing or not a bucket (then a new one)."""
    # isascii(): str.isdigit() also accepts "²" and other digits int() refuses.
    if value is None or not (value.isascii() and value.isdigit()) or len(value) > 5:
        return None
    bucket = int(value)
    return bucket if bucket < BUCKETS else None


def parse_override(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip().lower()
    return value if value in TRANSPORTS else None


def decide(
    config: RolloutConfig,
    *,
    ws_available: bool,
    override: str | None = None,
    cookie: str | None = None,
    rand: Callable[[], int] = random_bucket,
) -> Decision:
    """The transport for one browser and why. ``override``/``cookie`` are raw strings."""
    bucket = parse_bucket(cookie)
    fresh = bucket is None
    if bucket is None:
        bucket = rand() % BUCKETS
    if config.kill_switch:
        return Decision(SOCKETIO, "kill_switch", "the kill switch forces Socket.IO", bucket)
    if not ws_available:
        return Decision(
            SOCKETIO, "ws_unavailable", "this server has no /ws endpoint; Socket.IO only", bucket
        )
    wanted = parse_override(override)
    if wanted is not None:
        return Decision(wanted, "override", f"?transport={wanted} asked for it", bucket)
    transport = WS if bucket < config.threshold else SOCKETIO
    side = "<" if transport == WS else ">="
    pct = f"{config.ws_percent:g}"
    detail = f"bucket {bucket} {side} {config.threshold} of {BUCKETS} ({pct} % on ws)"
    return Decision(transport, "new_bucket" if fresh else "cookie", detail, bucket)


def client_config_body(
    decision: Decision,
    config: RolloutConfig,
    *,
    server: str,
    transports: tuple[str, ...],
    notification_sound: str | None,
) -> dict[str, Any]:
    """The JSON of ``GET /api/client-config``, the same shape from both apps."""
    return {
        "server": server,
        "transport": decision.transport,
        "reason": decision.reason,
        "detail": decision.detail,
        "bucket": decision.bucket,
        "ws_percent": config.ws_percent,
        "kill_switch": config.kill_switch,
        "transports": list(transports),
        "ws_path": "/ws" if WS in transports else None,
        "socketio_path": "/socket.io/",
        "notification_sound": notification_sound,
    }


def cookie(decision: Decision, config: RolloutConfig) -> dict[str, Any]:
    """``set_cookie`` keyword arguments (Starlette and Werkzeug take the same names)."""
    return {
        "key": config.cookie_name,
        "value": str(decision.bucket),
        "max_age": config.cookie_max_age,
        "path": "/",
        "httponly": True,
        "samesite": "lax",
    }
