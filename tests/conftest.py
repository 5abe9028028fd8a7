from __future__ import annotations

import pytest

pytest_plugins = ["tests.fakes.elevenlabs_server", "tests.fakes.openai_speech_server"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
