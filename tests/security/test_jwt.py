"""Every kind of bad JWT, refused on every way in (HTTP 401, /ws and /ws/tts close 1008,
Socket.IO connect refused), and a key rollover: a previous secret accepted while listed,
refused once removed, and never with another algorithm.

The server pins HS256 and requires ``aud`` and ``iss`` (``GENIE_JWT_AUDIENCE`` /
``GENIE_JWT_ISSUER``). Each bad token differs from a good one in one thing only, so each
refusal is the check under test and not some other.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import jwt
import pytest

from tests.security.transports import TRANSPORTS, admitted
from tests.servers import ThreadServer

pytestmark = pytest.mark.anyio

# 64 bytes: PyJWT warns about shorter HMAC keys for HS512.
SECRET = "jwt-suite-current-secret-".ljust(64, "c")
OLD = "jwt-suite-previous-secret-".ljust(64, "p")
AUD, ISS = "genie", "https://issuer.example"
SETTINGS: dict[str, Any] = {
    "stage": "full",
    "jwt_secret": SECRET,
    "jwt_audience": AUD,
    "jwt_issuer": ISS,
    "jwt_leeway": 10,
}


def claims(**changes: Any) -> dict[str, Any]:
    """Good claims; a change to None drops that claim."""
    now = int(time.time())
    base = {"sub": "alice", "iat": now, "exp": now + 600, "aud": AUD, "iss": ISS, **changes}
    return {name: value for name, value in base.items() if value is not None}


def signed(payload: dict[str, Any], key: str = SECRET, alg: str = "HS256") -> str:
    return jwt.encode(payload, key, algorithm=alg)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def confused(alg: str) -> str:
    """A header naming ``alg`` over a valid HS256 signature made with the server's own
    secret: the algorithm-confusion shape (an RS256 header, an HMAC signature)."""
    head = _b64(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    body = _b64(json.dumps(claims()).encode())
    mac = hmac.new(SECRET.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64(mac)}"


def tampered_signature() -> str:
    head, body, sig = signed(claims()).split(".")
    flipped = "A" if sig[10] != "A" else "B"  # mid-signature: never a padding bit
    return f"{head}.{body}.{sig[:10]}{flipped}{sig[11:]}"


def tampered_payload() -> str:
    head, _, sig = signed(claims()).split(".")
    return f"{head}.{_b64(json.dumps(claims(sub='admin')).encode())}.{sig}"


def in_the_past(seconds: int) -> int:
    return int(time.time()) - seconds


def in_the_future(seconds: int) -> int:
    return int(time.time()) + seconds


BAD_TOKENS: dict[str, Callable[[], str]] = {
    "alg_none": lambda: jwt.encode(claims(), None, algorithm="none"),
    "hs512_header": lambda: signed(claims(), alg="HS512"),
    "rs256_header_hmac_signed": lambda: confused("RS256"),
    "hs512_with_previous_secret": lambda: signed(claims(), OLD, alg="HS512"),
    "expired": lambda: signed(claims(exp=in_the_past(120))),
    "not_yet_valid_nbf": lambda: signed(claims(nbf=in_the_future(300))),
    "issued_in_the_future": lambda: signed(claims(iat=in_the_future(300))),
    "wrong_audience": lambda: signed(claims(aud="someone-else")),
    "no_audience": lambda: signed(claims(aud=None)),
    "wrong_issuer": lambda: signed(claims(iss="https://evil.example")),
    "no_issuer": lambda: signed(claims(iss=None)),
    "no_expiry": lambda: signed(claims(exp=None)),
    "no_subject": lambda: signed(claims(sub=None)),
    "unknown_secret": lambda: signed(claims(), "someone-elses-secret-".ljust(64, "s")),
    "tampered_signature": tampered_signature,
    "tampered_payload": tampered_payload,
    # Correctly signed: only the size cap refuses it.
    "oversized": lambda: signed(claims(padding="x" * 5000)),
}


@pytest.fixture(scope="module")
def server() -> Iterator[ThreadServer]:
    with ThreadServer(**SETTINGS, jwt_previous_secrets=[OLD]) as running:
        yield running


@pytest.fixture(scope="module")
def rotated() -> Iterator[ThreadServer]:
    """The same server once the rollover is over: the previous secret is removed."""
    with ThreadServer(**SETTINGS) as running:
        yield running


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("variant", list(BAD_TOKENS))
async def test_a_bad_token_is_refused(server: ThreadServer, variant: str, transport: str) -> None:
    assert not await admitted(transport, server, token=BAD_TOKENS[variant]())


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_good_tokens_pass_with_the_current_and_the_previous_secret(
    server: ThreadServer, transport: str
) -> None:
    # Inside the leeway, a little clock skew is no refusal.
    skewed = signed(claims(iat=in_the_future(5), nbf=in_the_future(5), exp=in_the_past(5)))
    for token in (signed(claims()), signed(claims(), OLD), skewed):
        assert await admitted(transport, server, token=token)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_removed_previous_secret_is_refused(rotated: ThreadServer, transport: str) -> None:
    assert await admitted(transport, rotated, token=signed(claims()))
    assert not await admitted(transport, rotated, token=signed(claims(), OLD))
