"""What each stage switches on. ``create_app`` reads only this, never the stage name."""

from __future__ import annotations

from dataclasses import dataclass

from config import Settings
from fastapi_app.sockets.direct_frames import direct_frames_on


class StageConfigError(ValueError):
    """Settings ask for something the chosen stage does not have."""


@dataclass(frozen=True, slots=True)
class Features:
    stage: str
    native_ws: bool  # /ws endpoint (mvp, full)
    synthesize: bool  # real speech; skeletal answers every audio request with the sample
    streaming: bool  # /api/get-audio streams with voice/speed/format, cancellable
    sequence: bool  # per-client seq on /ws frames, replay buffer, resume
    heartbeat: bool
    cancel_on_disconnect: bool
    auth: bool  # JWT, only when a secret is set
    origin_check: bool
    rate_limits: bool
    metrics: bool
    direct_frames: (
        bool  # frames straight to uvicorn's transport (fastapi_app.sockets.direct_frames)
    )

    @classmethod
    def for_settings(cls, settings: Settings) -> Features:
        stage = settings.stage
        full = stage == "full"
        if settings.jwt_secret is not None and not full:
            # Failing loudly beats serving an unauthenticated API someone thinks is locked.
            raise StageConfigError(
                f"GENIE_JWT_SECRET is set but stage {stage!r} has no auth; use stage 'full'"
            )
        return cls(
            stage=stage,
            native_ws=stage in ("mvp", "full"),
            synthesize=stage != "skeletal",
            streaming=full,
            sequence=full and settings.ws_resume_frames > 0,
            heartbeat=full,
            cancel_on_disconnect=full,
            auth=full and settings.jwt_secret is not None,
            origin_check=full,
            rate_limits=full,
            metrics=full and settings.metrics_enabled,
            direct_frames=direct_frames_on(settings.direct_frames),
        )
