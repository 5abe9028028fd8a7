"""``--workers N`` hands the settings to each worker process as GENIE_* variables: every
setting, secrets included (a masked secret would start workers that refuse every token)."""

from __future__ import annotations

import pytest

from config import Settings
from fastapi_app.__main__ import _as_env


def test_workers_rebuild_the_same_settings_secrets_included(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = Settings(
        _env_file=None,
        jwt_secret="s" * 32,
        jwt_previous_secrets=["old-1" * 8, "old-2" * 8],
        openai_tts_api_key="sk-tts",
        elevenlabs_api_key="el-key",
        forwarded_allow_ips="10.0.0.0/8",
        allowed_origins=["https://genie.example"],
    )
    for name, value in _as_env(settings).items():
        monkeypatch.setenv(name, value)
    again = Settings(_env_file=None)
    assert again == settings
    assert [s.get_secret_value() for s in again.jwt_previous_secrets] == ["old-1" * 8, "old-2" * 8]
