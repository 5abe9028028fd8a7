"""The fleet tests' Redis: ``bench.redisproc.RedisServer`` (a real ``redis-server`` on
a free loopback port). Tests skip with the install command when it is absent;
``.ci/run`` installs it, so CI never skips them.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator

import pytest

from bench.redisproc import RedisServer

__all__ = ["RedisServer", "running_redis"]


@contextlib.contextmanager
def running_redis(*, aof: bool = False) -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    server = RedisServer(aof=aof)
    try:
        yield server.start()
    finally:
        server.close()
