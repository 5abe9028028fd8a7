"""A real ``haproxy`` (Debian's) in front of Genie servers on loopback, for wire tests:
``bench.haproxyproc.HaproxyProcess`` with the tests' URL helpers.

``running_haproxy(flask=[ports], fastapi=[ports], percent=P)`` yields once the frontend
accepts connections and every server is UP. Tests skip with the install command when
haproxy is absent; ``.ci/run`` installs it.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from bench import haproxyproc
from tests.servers import LoopbackUrls

haproxy_binary = haproxyproc.haproxy_binary


def require_haproxy() -> str:
    binary = haproxy_binary()
    if binary is None:
        pytest.skip("haproxy is not installed (apt-get install haproxy)")
    return binary


class HaproxyProcess(LoopbackUrls, haproxyproc.HaproxyProcess):
    """The bench's process, with ``.ws_url`` as every test server has."""


@contextlib.contextmanager
def running_haproxy(
    listen_port: int | None = None,
    *,
    flask: Sequence[int] = (),
    fastapi: Sequence[int] = (),
    percent: float = 0.0,
    tmp_path: Path | None = None,
    wait_up: bool = True,
) -> Iterator[HaproxyProcess]:
    """HAProxy on ``listen_port`` (default: a free one) in front of loopback servers."""
    require_haproxy()
    with contextlib.ExitStack() as stack:
        if tmp_path is None:
            tmp_path = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="hap-")))
        proxy = HaproxyProcess(
            flask=flask, fastapi=fastapi, percent=percent, directory=tmp_path,
            listen_port=listen_port,
        )  # fmt: skip
        stack.callback(proxy.close)
        yield proxy.start(wait_up=wait_up)
