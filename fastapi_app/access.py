"""The security pieces of one app, built from settings (see ``fastapi_app.security``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from config import Settings
from fastapi_app.features import Features
from fastapi_app.security import OriginPolicy, RateLimiter, TokenBucket, TokenVerifier
from fastapi_app.shared_limits import RedisRateLimiter


@dataclass(frozen=True, slots=True)
class Access:
    verifier: TokenVerifier  # disabled (everyone anonymous) unless auth is on
    origins: OriginPolicy | None  # None: no Origin check (skeletal, mvp)
    queries: RateLimiter | None  # questions: /ws query, /push
    audio: RateLimiter | None  # /api/get-audio, /get_tts_audio, /get-answer

    @classmethod
    def from_settings(cls, settings: Settings, features: Features) -> Access:
        secret = settings.jwt_secret.get_secret_value() if features.auth else None
        verifier = TokenVerifier(secret, settings.jwt_algorithm, settings.jwt_leeway)
        origins = OriginPolicy(settings.allowed_origins) if features.origin_check else None
        queries = audio = None
        if features.rate_limits:
            queries = _limiter(
                settings, "queries", settings.rate_limit_queries, settings.rate_limit_queries_burst
            )
            audio = _limiter(
                settings, "audio", settings.rate_limit_audio, settings.rate_limit_audio_burst
            )
        return cls(verifier, origins, queries, audio)

    async def aclose(self) -> None:
        for limiter in (self.queries, self.audio):
            if limiter is not None:
                await limiter.aclose()

    @property
    def auth(self) -> bool:
        return self.verifier.enabled


def subject_of(claims: dict[str, Any]) -> str | None:
    sub = claims.get("sub")
    return str(sub) if sub is not None else None


def _limiter(settings: Settings, name: str, per_minute: float, burst: int) -> RateLimiter | None:
    """None when off; with a fleet, one limit for all its processes, else per process."""
    if per_minute <= 0:
        return None
    if settings.redis_url:
        return RedisRateLimiter(settings.redis_url, settings.redis_channel, name, per_minute, burst)
    return TokenBucket(per_minute, burst)
