"""One real server per module (uvicorn on a free loopback port), engine cache off so every
request really synthesizes, speech rate limit off (one client sends every request; the
limit is tests/security/test_expensive_limits.py's)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.servers import ThreadServer


@pytest.fixture(scope="module")
def server() -> Iterator[ThreadServer]:
    with ThreadServer(tts_cache_entries=0, rate_limit_speech=0) as running:
        yield running
