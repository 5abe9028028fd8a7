"""Auth, Origin and rate-limit checks shared by the HTTP routes, ``/ws`` and Socket.IO.

Nothing here builds an app: each piece is a plain object that ``create_app`` wires in.

- :class:`TokenVerifier` checks HS256 (or another HMAC) JWTs with PyJWT. With no secret
  it is disabled and every caller is anonymous (dev default).
- Token sources, safest first: ``Authorization: Bearer`` (:func:`bearer_token`), the
  first WebSocket frame ``{"type": "auth", "token": ...}`` (:func:`auth_frame_token`),
  and ``?token=`` (:func:`query_token`). The query string is the least safe: it ends up
  in access logs, proxies and browser history, so it exists only for the seeds' clients
  that cannot set headers. Last, the login page's HttpOnly session cookie
  (:func:`cookie_token`), for the unmodified page, which sends no token of its own.
- :class:`OriginPolicy` guards WebSocket and Socket.IO handshakes against cross-site
  pages (browsers apply no CORS to WebSockets).
- :class:`RateLimiter` is what the routes and ``/ws`` ask; :class:`TokenBucket` is the
  in-process one (bounded memory), ``fastapi_app.auth.shared_limits`` the fleet-wide one.
"""

from __future__ import annotations

import ipaddress
import json
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

import jwt
from starlette.requests import HTTPConnection, cookie_parser

Clock = Callable[[], float]
SESSION_COOKIE = "genie_session"  # set by the login page (fastapi_app.auth.login)


class AuthError(Exception):
    """A request or socket failed authentication; ``code`` is stable, ``message`` is prose."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# --- JWT ------------------------------------------------------------------------------


# Longest token read at all. HMAC tokens minted for this server are a few hundred bytes;
# the cap stops a megabyte "token" (an auth frame may be 64 KiB, a Socket.IO auth payload
# more) from costing base64 and JSON decoding before its signature is even looked at.
MAX_TOKEN_CHARS = 4096


class TokenVerifier:
    """Verify (and, for tests, dev and the login page, mint) JWTs signed with a shared secret.

    ``previous`` secrets are still accepted during a key rollover; tokens are always
    signed with ``secret``. Every key is tried with the one configured ``algorithm``, so a
    rollover never lets a token's header choose another one. ``audience`` / ``issuer``,
    when set, are required claims (and put into issued tokens); unset, not checked.
    """

    def __init__(
        self,
        secret: str | None,
        algorithm: str = "HS256",
        leeway: float = 10.0,
        clock: Clock = time.time,
        *,
        previous: Sequence[str] = (),
        audience: str | None = None,
        issuer: str | None = None,
    ) -> None:
        self._secret = secret or None
        self._keys = [k for k in (self._secret, *previous) if k] if self._secret else []
        self.algorithm = algorithm
        # Leeway absorbs small clock skew between the token issuer and this server.
        self.leeway = leeway
        self._clock = clock
        self._claims = {k: v for k, v in (("aud", audience), ("iss", issuer)) if v}
        self._options: dict[str, Any] = {
            "require": ["exp", "sub", *self._claims],
            "verify_aud": audience is not None,
        }

    @property
    def enabled(self) -> bool:
        return self._secret is not None

    def verify(self, token: str | None) -> dict[str, Any]:
        """Return the token's claims; raise :class:`AuthError` if it is missing or bad.

        When auth is disabled every caller passes with empty claims.
        """
        if not self.enabled:
            return {}
        if not token:
            raise AuthError("missing_token", "an access token is required")
        if len(token) > MAX_TOKEN_CHARS:
            raise AuthError(
                "token_too_large", f"the access token is over {MAX_TOKEN_CHARS} characters"
            )
        try:
            return self._decode(token)
        except jwt.ExpiredSignatureError as exc:
            raise AuthError("token_expired", "the access token has expired") from exc
        except jwt.InvalidTokenError as exc:
            raise AuthError("invalid_token", f"the access token is invalid: {exc}") from exc

    def _decode(self, token: str) -> dict[str, Any]:
        # PyJWT takes one key per call: current first, then each previous one, moving on
        # only when the signature does not match (an expired token stays expired).
        *older, last = self._keys
        for key in older:
            try:
                return self._decode_with(token, key)
            except jwt.InvalidSignatureError:
                continue
        return self._decode_with(token, last)

    def _decode_with(self, token: str, key: str) -> dict[str, Any]:
        return jwt.decode(
            token,
            key,
            # A fixed list: never let the token's own header choose the algorithm.
            algorithms=[self.algorithm],
            leeway=self.leeway,
            audience=self._claims.get("aud"),
            issuer=self._claims.get("iss"),
            options=self._options,  # type: ignore[arg-type]
        )

    def issue(self, subject: str, ttl: float = 3600.0, **claims: Any) -> str:
        """Mint a token for ``subject`` valid for ``ttl`` seconds, signed with ``secret``."""
        if self._secret is None:
            raise RuntimeError("cannot issue tokens: no JWT secret is configured")
        now = int(self._clock())
        payload = {"iat": now, **self._claims, **claims, "sub": subject, "exp": now + int(ttl)}
        return jwt.encode(payload, self._secret, algorithm=self.algorithm)


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header value, else None."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def query_token(query: Mapping[str, str] | str | None) -> str | None:
    """``?token=`` from parsed query params or a raw query string. Least safe source."""
    if query is None:
        return None
    if isinstance(query, str):
        values = parse_qs(query).get("token")
        return values[0] if values else None
    return query.get("token") or None


def cookie_token(cookies: Mapping[str, str] | str | None) -> str | None:
    """The login page's session cookie (``fastapi_app.auth.login``), from parsed cookies or a
    raw ``Cookie`` header. Browsers send it by themselves, so it comes last everywhere."""
    if isinstance(cookies, str):
        cookies = cookie_parser(cookies)
    return (cookies or {}).get(SESSION_COOKIE) or None


def token_from_connection(conn: HTTPConnection, *, cookie: bool = True) -> str | None:
    """Token of an HTTP request or WebSocket handshake: Bearer header, ``?token=``, then
    (unless ``cookie`` is False) the session cookie."""
    return (
        bearer_token(conn.headers.get("authorization"))
        or query_token(conn.query_params)
        or (cookie_token(conn.cookies) if cookie else None)
    )


def auth_frame_token(frame: str | bytes | Mapping[str, Any]) -> str | None:
    """Token of a first frame ``{"type": "auth", "token": "..."}``; None for any other frame."""
    if isinstance(frame, str | bytes):
        try:
            frame = json.loads(frame)
        except (ValueError, RecursionError):  # deep nesting is no auth frame either
            return None
    if not isinstance(frame, Mapping) or frame.get("type") != "auth":
        return None
    token = frame.get("token")
    return token if isinstance(token, str) and token else None


def token_from_sio(environ: Mapping[str, Any], auth: object = None) -> str | None:
    """Token of a Socket.IO connect: ``auth={"token": ...}``, Bearer header, ``?token=``,
    then the session cookie (the unmodified page sends nothing else)."""
    if isinstance(auth, Mapping) and isinstance(auth.get("token"), str) and auth["token"]:
        return auth["token"]
    return (
        bearer_token(environ.get("HTTP_AUTHORIZATION"))
        or query_token(environ.get("QUERY_STRING", ""))
        or cookie_token(environ.get("HTTP_COOKIE"))
    )


# --- Origin ---------------------------------------------------------------------------

_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
_LOOPBACK_NAMES = {"localhost", "localhost.localdomain"}
Origin = tuple[str, str, int]


def _parse_origin(value: str) -> Origin | None:
    """``scheme://host[:port]`` -> (scheme, host, port) with the default port filled in."""
    try:
        parts = urlsplit(value.strip().lower())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    return parts.scheme, parts.hostname, port or _DEFAULT_PORTS[parts.scheme]


def _is_loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class OriginPolicy:
    """Allow-list for the ``Origin`` of WebSocket and Socket.IO handshakes.

    - An Origin in ``allowed`` passes; ``"*"`` in the list lets every origin through.
    - A same-origin page (Origin's host:port equals the ``Host`` header) always passes.
    - With an empty list, pages served from a loopback host pass too (dev default).
    - A request without Origin passes: only browsers send it, and the check exists to
      stop other sites' pages from riding a user's browser. ``Origin: null`` (sandboxed
      frames, ``file://``) passes only if ``"null"`` is listed.

    Same-origin trusts the Host header, so deployments reachable by name should also
    restrict Host (Starlette's ``TrustedHostMiddleware``) against DNS rebinding.

    An instance is also a valid ``cors_allowed_origins`` callable for python-socketio.
    """

    def __init__(self, allowed: list[str] | tuple[str, ...] = ()) -> None:
        self.allow_any = "*" in allowed
        self.allow_null = "null" in allowed
        self._allowed = {o for o in map(_parse_origin, allowed) if o is not None}
        self.loopback_ok = not allowed

    def allows(self, origin: str | None, host: str | None) -> bool:
        if origin is None or self.allow_any:
            return True
        if origin.strip().lower() == "null":
            return self.allow_null
        parsed = _parse_origin(origin)
        if parsed is None:
            return False
        if parsed in self._allowed or self._same_origin(parsed, host):
            return True
        return self.loopback_ok and _is_loopback(parsed[1])

    def __call__(self, origin: str | None, environ: Mapping[str, Any] | None = None) -> bool:
        """python-socketio / engineio ``cors_allowed_origins`` hook."""
        return self.allows(origin, (environ or {}).get("HTTP_HOST"))

    @staticmethod
    def _same_origin(origin: Origin, host: str | None) -> bool:
        if not host:
            return False
        scheme, name, port = origin
        try:
            target = urlsplit(f"//{host.strip().lower()}")
            target_port = target.port or _DEFAULT_PORTS[scheme]
        except ValueError:
            return False
        return target.hostname == name and target_port == port


# --- Rate limits ----------------------------------------------------------------------


class RateLimiter(Protocol):
    """A per-key limit; the call sites cannot tell an in-process one from a shared one."""

    async def hit(self, key: str) -> float | None:
        """Spend one request of ``key``: None if allowed, else seconds to wait (> 0)."""
        ...

    async def aclose(self) -> None: ...


@dataclass(slots=True)
class _Bucket:
    tokens: float
    stamp: float


class TokenBucket:
    """Token buckets keyed by client id: ``rate_per_minute`` sustained, ``burst`` at once.

    O(1) per call. Buckets live in an LRU-ordered dict; a bucket idle long enough to
    be full again carries no information and is dropped, and at most ``max_keys``
    buckets are kept (the least recently used one is forgotten first, which can only
    forgive a client, never block one wrongly). ``rate_per_minute <= 0`` disables it.
    """

    def __init__(
        self,
        rate_per_minute: float,
        burst: int,
        *,
        max_keys: int = 100_000,
        clock: Clock = time.monotonic,
    ) -> None:
        self.rate = rate_per_minute / 60.0
        self.burst = float(max(burst, 1))
        self.max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        # After this long untouched a bucket has refilled to ``burst``.
        self._refill_time = self.burst / self.rate if self.rate > 0 else 0.0

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def allow(self, key: str, cost: float = 1.0) -> bool:
        """Take ``cost`` tokens from ``key``'s bucket if it has them."""
        if not self.enabled:
            return True
        bucket = self._refill(key, self._clock())
        if bucket.tokens >= cost:
            bucket.tokens -= cost
            return True
        return False

    def retry_after(self, key: str, cost: float = 1.0) -> float:
        """Seconds until ``key`` could spend ``cost`` tokens (0.0 if it can now)."""
        if not self.enabled:
            return 0.0
        bucket = self._buckets.get(key)
        if bucket is None:
            return 0.0
        tokens = min(self.burst, bucket.tokens + (self._clock() - bucket.stamp) * self.rate)
        return max(0.0, (cost - tokens) / self.rate)

    async def hit(self, key: str) -> float | None:
        if self.allow(key):
            return None
        # Refused means short of a token, so the wait is > 0; the floor guards rounding.
        return max(self.retry_after(key), 0.001)

    async def aclose(self) -> None:
        pass  # nothing held outside this process

    def __len__(self) -> int:
        return len(self._buckets)

    def _refill(self, key: str, now: float) -> _Bucket:
        self._evict(now)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(self.burst, now)
            return bucket
        self._buckets.move_to_end(key)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.stamp) * self.rate)
        bucket.stamp = now
        return bucket

    def _evict(self, now: float) -> None:
        # The dict is ordered by last use, so idle buckets sit at the front: each call
        # pops at most what earlier calls inserted (amortised O(1)).
        buckets = self._buckets
        while buckets:
            oldest = next(iter(buckets.values()))
            if len(buckets) < self.max_keys and now - oldest.stamp < self._refill_time:
                return
            buckets.popitem(last=False)
