"""Local stand-ins for remote services, served on 127.0.0.1 only."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeVar

from aiohttp import web

Fake = TypeVar("Fake", bound=AbstractAsyncContextManager[Any])


@contextlib.contextmanager
def in_thread(factory: Callable[..., Fake], **options: Any) -> Iterator[Fake]:
    """A fake server entered on its own event loop thread, for synchronous tests (and for
    servers under test that block the test's loop while they start)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="fake-server", daemon=True)
    thread.start()

    async def started() -> Fake:
        # Built inside the loop so its asyncio primitives belong to that loop.
        return await factory(**options).__aenter__()

    server = asyncio.run_coroutine_threadsafe(started(), loop).result(timeout=10)
    try:
        yield server
    finally:
        asyncio.run_coroutine_threadsafe(server.__aexit__(None, None, None), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


async def start_site(app: web.Application, port: int = 0) -> tuple[web.AppRunner, str, int]:
    """Serve ``app`` on 127.0.0.1; returns the runner (to clean up) and the bound address.
    The shutdown timeout is short: a client may leave a stream half read."""
    runner = web.AppRunner(app, shutdown_timeout=1.0, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    host, bound = runner.addresses[0][:2]
    return runner, host, bound
