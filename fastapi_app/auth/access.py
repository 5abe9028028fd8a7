"""The security pieces of one app, built from settings (see ``fastapi_app.auth.security``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from config import Settings
from fastapi_app.auth.security import OriginPolicy, RateLimiter, TokenBucket, TokenVerifier
from fastapi_app.auth.shared_limits import RedisRateLimiter
from fastapi_app.features import Features


@dataclass(frozen=True, slots=True)
class Access:
    verifier: TokenVerifier  # disabled (everyone anonymous) unless auth is on
    origins: OriginPolicy | None  # None: no Origin check (skeletal, mvp)
    queries: RateLimiter | None  # questions: /ws query, /push
    audio: RateLimiter | None  # /api/get-audio, /get_tts_audio, /get-answer
    # Free text to speech: /v1/audio/speech, /api/v1/tts, /ws/tts requests, scene generation.
    speech: RateLimiter | None = None
    login: RateLimiter | None = None  # POST /login attempts, per address

    @classmethod
    def from_settings(cls, settings: Settings, features: Features) -> Access:
        origins = OriginPolicy(settings.allowed_origins) if features.origin_check else None
        if not features.rate_limits:
            return cls(_verifier(settings, features), origins, None, None)
        s = settings
        return cls(
            _verifier(settings, features),
            origins,
            queries=_limiter(s, "queries", s.rate_limit_queries, s.rate_limit_queries_burst),
            audio=_limiter(s, "audio", s.rate_limit_audio, s.rate_limit_audio_burst),
            speech=_limiter(s, "speech", s.rate_limit_speech, s.rate_limit_speech_burst),
            login=_limiter(s, "login", s.rate_limit_login, s.rate_limit_login_burst),
        )

    async def aclose(self) -> None:
        for limiter in (self.queries, self.audio, self.speech, self.login):
            if limiter is not None:
                await limiter.aclose()

    @property
    def auth(self) -> bool:
        return self.verifier.enabled


def subject_of(claims: dict[str, Any]) -> str | None:
    sub = claims.get("sub")
    return str(sub) if sub is not None else None


def _verifier(settings: Settings, features: Features) -> TokenVerifier:
    if not features.auth or settings.jwt_secret is None:
        return TokenVerifier(None)
    return TokenVerifier(
        settings.jwt_secret.get_secret_value(),
        settings.jwt_algorithm,
        settings.jwt_leeway,
        previous=[s.get_secret_value() for s in settings.jwt_previous_secrets],
        audience=settings.jwt_audience,
        issuer=settings.jwt_issuer,
    )


def _limiter(settings: Settings, name: str, per_minute: float, burst: int) -> RateLimiter | None:
    """None when off; with a fleet, one limit for all its processes, else per process."""
    if per_minute <= 0:
        return None
    if settings.redis_url:
        return RedisRateLimiter(settings.redis_url, settings.redis_channel, name, per_minute, burst)
    return TokenBucket(per_minute, burst)
