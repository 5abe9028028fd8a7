from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.servers import ThreadServer


@pytest.fixture
async def http(server: ThreadServer) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the module's ``server`` fixture."""
    async with httpx.AsyncClient(base_url=server.url, timeout=20) as client:
        yield client
