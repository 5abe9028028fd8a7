"""JWT verification, token sources, Origin policy and rate limits (no server needed)."""

from __future__ import annotations

import time

import jwt
import pytest
from starlette.requests import Request

from fastapi_app.security import (
    AuthError,
    OriginPolicy,
    RateLimiter,
    TokenVerifier,
    auth_frame_token,
    bearer_token,
    query_token,
    token_from_connection,
    token_from_sio,
)

# 64 bytes: PyJWT warns about shorter HMAC keys for HS512.
SECRET = "a-test-secret-long-enough-for-hs512-signatures-0123456789abcdefg"
OTHER_SECRET = SECRET.upper()


# --- JWT --------------------------------------------------------------------------------


def test_issued_token_verifies_with_its_claims() -> None:
    verifier = TokenVerifier(SECRET)
    claims = verifier.verify(verifier.issue("alice", ttl=60, role="listener"))
    assert claims["sub"] == "alice"
    assert claims["role"] == "listener"
    assert claims["exp"] - claims["iat"] == 60


def test_token_from_another_issuer_with_the_same_secret_verifies() -> None:
    token = jwt.encode({"sub": "bob", "exp": int(time.time()) + 60}, SECRET, algorithm="HS256")
    assert TokenVerifier(SECRET).verify(token)["sub"] == "bob"


def test_expired_token_is_rejected_as_expired() -> None:
    verifier = TokenVerifier(SECRET, leeway=0)
    with pytest.raises(AuthError) as caught:
        verifier.verify(verifier.issue("alice", ttl=-5))
    assert caught.value.code == "token_expired"


def test_leeway_tolerates_small_clock_skew() -> None:
    verifier = TokenVerifier(SECRET, leeway=30)
    assert verifier.verify(verifier.issue("alice", ttl=-5))["sub"] == "alice"


def test_token_issued_in_the_past_by_an_injected_clock_is_expired() -> None:
    old = TokenVerifier(SECRET, clock=lambda: time.time() - 7200)
    with pytest.raises(AuthError, match="expired"):
        TokenVerifier(SECRET).verify(old.issue("alice", ttl=3600))


@pytest.mark.parametrize(
    "token",
    [
        jwt.encode({"sub": "x", "exp": int(time.time()) + 60}, OTHER_SECRET),
        jwt.encode({"sub": "x", "exp": int(time.time()) + 60}, SECRET, algorithm="HS512"),
        jwt.encode({"sub": "x", "exp": int(time.time()) + 60}, None, algorithm="none"),
        jwt.encode({"sub": "x"}, SECRET),  # no expiry: never accepted
        jwt.encode({"exp": int(time.time()) + 60}, SECRET),  # no subject
        "not.a.jwt",
        "garbage",
    ],
    ids=["wrong-secret", "wrong-alg", "alg-none", "no-exp", "no-sub", "bad-segments", "garbage"],
)
def test_bad_tokens_are_rejected_as_invalid(token: str) -> None:
    with pytest.raises(AuthError) as caught:
        TokenVerifier(SECRET).verify(token)
    assert caught.value.code == "invalid_token"


def test_tampered_payload_is_rejected() -> None:
    verifier = TokenVerifier(SECRET)
    header, _, signature = verifier.issue("alice").split(".")
    forged_payload = jwt.utils.base64url_encode(b'{"sub":"admin","exp":9999999999}').decode()
    with pytest.raises(AuthError, match="invalid"):
        verifier.verify(f"{header}.{forged_payload}.{signature}")


@pytest.mark.parametrize("token", [None, ""])
def test_missing_token_is_rejected_when_enabled(token: str | None) -> None:
    with pytest.raises(AuthError) as caught:
        TokenVerifier(SECRET).verify(token)
    assert caught.value.code == "missing_token"


@pytest.mark.parametrize("secret", [None, ""])
def test_disabled_verifier_lets_everyone_in(secret: str | None) -> None:
    verifier = TokenVerifier(secret)
    assert not verifier.enabled
    assert verifier.verify(None) == {}
    assert verifier.verify("garbage") == {}
    with pytest.raises(RuntimeError):
        verifier.issue("alice")


# --- token sources ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Bearer abc.def.ghi", "abc.def.ghi"),
        ("bearer   abc ", "abc"),
        ("Basic dXNlcjpwYXNz", None),
        ("Bearer", None),
        ("", None),
        (None, None),
    ],
)
def test_bearer_token(header: str | None, expected: str | None) -> None:
    assert bearer_token(header) == expected


def test_query_token_from_string_and_mapping() -> None:
    assert query_token("msg=hi&token=t%2B1") == "t+1"
    assert query_token("msg=hi") is None
    assert query_token({"token": "abc"}) == "abc"
    assert query_token({"token": ""}) is None
    assert query_token(None) is None


def _request(headers: dict[str, str], query: str = "") -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    scope = {"type": "http", "method": "GET", "path": "/", "headers": raw}
    return Request({**scope, "query_string": query.encode()})


def test_token_from_connection_prefers_the_header() -> None:
    assert token_from_connection(_request({"Authorization": "Bearer H"}, "token=Q")) == "H"
    assert token_from_connection(_request({}, "token=Q")) == "Q"
    assert token_from_connection(_request({"Authorization": "Basic x"})) is None


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        ('{"type": "auth", "token": "abc"}', "abc"),
        (b'{"type": "auth", "token": "abc"}', "abc"),
        ({"type": "auth", "token": "abc"}, "abc"),
        ('{"type": "query", "text": "hi"}', None),
        ('{"type": "auth"}', None),
        ('{"type": "auth", "token": 5}', None),
        ("not json", None),
        ("[1, 2]", None),
    ],
)
def test_auth_frame_token(frame: object, expected: str | None) -> None:
    assert auth_frame_token(frame) == expected  # type: ignore[arg-type]


def test_token_from_sio_handshake() -> None:
    environ = {"HTTP_AUTHORIZATION": "Bearer H", "QUERY_STRING": "EIO=4&token=Q"}
    assert token_from_sio(environ, {"token": "A"}) == "A"
    assert token_from_sio(environ, None) == "H"
    assert token_from_sio({"QUERY_STRING": "EIO=4&token=Q"}, {}) == "Q"
    assert token_from_sio({}, "not-a-dict") is None


# --- Origin -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("origin", "host", "allowed"),
    [
        (None, "example.com", True),  # non-browser client
        ("https://example.com", "example.com", True),  # same origin, default port
        ("https://example.com:443", "example.com", True),
        ("http://example.com:8000", "example.com:8000", True),
        ("http://example.com:8000", "example.com:8001", False),
        ("https://example.com", "example.com:8000", False),
        ("https://evil.example", "example.com", False),
        ("http://localhost:3000", "example.com", True),  # loopback page, dev default
        ("http://127.0.0.1:5173", "example.com", True),
        ("http://[::1]:5173", "example.com", True),
        ("http://app.localhost", "example.com", True),
        ("http://10.0.0.5", "example.com", False),
        ("null", "example.com", False),
        ("file://", "example.com", False),
        ("not a url", "example.com", False),
        ("https://example.com", None, False),
    ],
)
def test_empty_allow_list_means_same_origin_and_loopback(
    origin: str | None, host: str | None, allowed: bool
) -> None:
    assert OriginPolicy([]).allows(origin, host) is allowed


def test_explicit_allow_list() -> None:
    policy = OriginPolicy(["https://app.example.com", "http://kiosk.lan:8080"])
    assert policy.allows("https://app.example.com", "api.example.com")
    assert policy.allows("HTTPS://APP.example.com:443", "api.example.com")
    assert policy.allows("http://kiosk.lan:8080", "api.example.com")
    assert not policy.allows("http://kiosk.lan", "api.example.com")
    assert not policy.allows("https://other.example.com", "api.example.com")
    # Loopback pages are trusted only when nothing is configured.
    assert not policy.allows("http://localhost:3000", "api.example.com")
    # A page served by this very host is always fine.
    assert policy.allows("https://api.example.com", "api.example.com")


def test_wildcard_and_null() -> None:
    assert OriginPolicy(["*"]).allows("https://anything.example", "example.com")
    assert OriginPolicy(["null"]).allows("null", "example.com")


def test_policy_works_as_socketio_cors_callable() -> None:
    policy = OriginPolicy([])
    assert policy("http://example.com:8000", {"HTTP_HOST": "example.com:8000"})
    assert not policy("https://evil.example", {"HTTP_HOST": "example.com:8000"})
    assert policy("http://localhost:8000")


# --- rate limits ------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_refill_at_the_configured_rate() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate_per_minute=60, burst=3, clock=clock)
    assert [limiter.allow("a") for _ in range(4)] == [True, True, True, False]
    assert limiter.retry_after("a") == pytest.approx(1.0)
    clock.now += 0.5
    assert not limiter.allow("a")
    assert limiter.retry_after("a") == pytest.approx(0.5)
    clock.now += 0.5
    assert limiter.allow("a")
    assert not limiter.allow("a")


def test_keys_are_independent() -> None:
    limiter = RateLimiter(rate_per_minute=6, burst=1, clock=FakeClock())
    assert limiter.allow("a")
    assert not limiter.allow("a")
    assert limiter.allow("b")
    assert limiter.retry_after("b") == pytest.approx(10.0)
    assert limiter.retry_after("never-seen") == 0.0


def test_tokens_never_exceed_the_burst() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate_per_minute=600, burst=2, clock=clock)
    limiter.allow("a")
    clock.now += 3600
    assert [limiter.allow("a") for _ in range(3)] == [True, True, False]


def test_idle_buckets_are_evicted() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate_per_minute=60, burst=5, clock=clock)
    for n in range(1000):
        limiter.allow(f"client-{n}")
    assert len(limiter) == 1000
    clock.now += 5.0  # every bucket has refilled: keeping them carries no information
    limiter.allow("late")
    assert len(limiter) == 1


def test_memory_is_bounded_by_max_keys() -> None:
    limiter = RateLimiter(rate_per_minute=1, burst=1, max_keys=100, clock=FakeClock())
    for n in range(10_000):
        limiter.allow(f"client-{n}")
    assert len(limiter) <= 100
    assert not limiter.allow("client-9999")  # recent keys are still limited


def test_recently_used_keys_survive_eviction() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate_per_minute=60, burst=2, clock=clock)
    limiter.allow("busy")
    limiter.allow("idle")
    clock.now += 1.5
    limiter.allow("busy")  # touched again: moves to the back, and empties
    limiter.allow("busy")
    clock.now += 1.0  # "idle" is now 2.5 s old (full again), "busy" 1.0 s old (1 token)
    limiter.allow("other")
    assert len(limiter) == 2
    assert limiter.allow("busy") and not limiter.allow("busy")


def test_zero_rate_disables_limiting() -> None:
    limiter = RateLimiter(rate_per_minute=0, burst=1, clock=FakeClock())
    assert not limiter.enabled
    assert all(limiter.allow("a") for _ in range(1000))
    assert limiter.retry_after("a") == 0.0
