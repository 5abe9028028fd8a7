"""FastAPI dependencies: the runtime, the caller's identity, rate limits.

All ``async def``: none of them blocks, and FastAPI runs a plain ``def`` dependency in
its threadpool, which cost ~0.3 ms per dependency on every request here.
"""

from __future__ import annotations

import math
from typing import Annotated

from fastapi import Depends, Request
from starlette.requests import HTTPConnection

from fastapi_app.auth.access import subject_of
from fastapi_app.auth.security import AuthError, RateLimiter, token_from_connection
from fastapi_app.errors import ApiError
from fastapi_app.runtime import Runtime


async def get_runtime(conn: HTTPConnection) -> Runtime:
    runtime = getattr(conn.app.state, "runtime", None)
    if runtime is None:
        raise ApiError(503, "starting", "the server is starting or stopping")
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def authenticate(request: Request, rt: RuntimeDep) -> str | None:
    """The token's subject; None when auth is off. Bearer header, ?token=, session cookie."""
    if not rt.access.auth:
        return None
    try:
        claims = rt.access.verifier.verify(token_from_connection(request))
    except AuthError as exc:
        if rt.metrics is not None:
            rt.metrics.auth_failures.labels("http").inc()
        raise ApiError(401, exc.code, exc.message, {"WWW-Authenticate": "Bearer"}) from None
    return subject_of(claims)


Subject = Annotated[str | None, Depends(authenticate)]


async def refused_for(rt: Runtime, limiter: RateLimiter | None, kind: str, key: str) -> int | None:
    """Spend one request of ``key``: None if allowed, else whole seconds to wait (counted
    in ``genie_rate_limited_total{kind}``). For callers that answer in their own shape."""
    if limiter is None or (retry_after := await limiter.hit(key)) is None:
        return None
    if rt.metrics is not None:
        rt.metrics.rate_limited.labels(kind).inc()
    return max(1, math.ceil(retry_after))


async def _limit(rt: Runtime, limiter: RateLimiter | None, kind: str, key: str) -> None:
    if (wait := await refused_for(rt, limiter, kind, key)) is None:
        return
    raise ApiError(
        429,
        "rate_limited",
        f"too many {kind} requests; retry in {wait} s",
        {"Retry-After": str(wait)},
    )


def caller_key(conn: HTTPConnection, subject: str | None) -> str:
    """Rate-limit key: the token's subject, else the peer address."""
    if subject is not None:
        return f"sub:{subject}"
    return f"ip:{conn.client.host if conn.client else 'unknown'}"


async def limit_queries(request: Request, rt: RuntimeDep, subject: Subject) -> None:
    await _limit(rt, rt.access.queries, "query", caller_key(request, subject))


async def limit_audio(request: Request, rt: RuntimeDep, subject: Subject) -> None:
    await _limit(rt, rt.access.audio, "audio", caller_key(request, subject))


async def limit_speech(request: Request, rt: RuntimeDep, subject: Subject) -> None:
    await _limit(rt, rt.access.speech, "speech", caller_key(request, subject))


QueryAllowed = Annotated[None, Depends(limit_queries)]
AudioAllowed = Annotated[None, Depends(limit_audio)]
SpeechAllowed = Annotated[None, Depends(limit_speech)]
