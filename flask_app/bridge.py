"""The asyncio core (job queues, speech engine) on ONE private event-loop thread.

asyncio primitives bind to the loop they are used on, so the core is built, used and
closed on that one loop. Flask handlers reach it through :meth:`CoreBridge.call`, which
runs a function on the loop (``run_coroutine_threadsafe``) and waits for the result the
way the async mode allows (see ``flask_app.handoff``). Every access to the core, reads
included, goes through ``call``: the queues are plain dicts mutated on the loop thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from flask_app.handoff import Handoff

log = logging.getLogger(__name__)

T = TypeVar("T")
Opener = Callable[[contextlib.AsyncExitStack], Awaitable[T]]


class CoreUnavailableError(RuntimeError):
    """The core is not running (starting, stopping or failed)."""


class CoreBridge(Generic[T]):
    def __init__(self, handoff: Handoff, *, call_timeout: float = 60.0) -> None:
        self.handoff = handoff
        self.call_timeout = call_timeout
        self._core: T | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    @property
    def core(self) -> T:
        if self._core is None:
            raise CoreUnavailableError("the core is not running")
        return self._core

    def start(self, opener: Opener[T], timeout: float = 60.0) -> T:
        """Start the loop thread and build the core there with ``opener(stack)``.

        What ``opener`` enters on the stack is exited, in reverse, on the same loop at
        ``stop()``. Raises whatever ``opener`` raised.
        """
        if self._thread is not None:
            raise RuntimeError("a CoreBridge can be started only once")
        self._thread = threading.Thread(
            target=self._run, args=(opener,), name="genie-core", daemon=True
        )
        self._thread.start()
        if not self._started.wait(timeout):
            raise CoreUnavailableError(f"the core did not start within {timeout:g} s")
        if self._error is not None:
            raise self._error
        return self.core

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)`` on the loop thread (awaited if it is a coroutine function)."""
        loop = self._loop
        if loop is None or self._core is None:
            raise CoreUnavailableError("the server is starting or stopping")
        coro = _invoke(fn, args)
        try:
            future = asyncio.run_coroutine_threadsafe(coro, loop)
        except RuntimeError:  # the loop closed since the check above
            coro.close()
            raise CoreUnavailableError("the server is stopping") from None
        return self.handoff.wait(future, self.call_timeout)

    def stop(self, timeout: float = 30.0) -> None:
        """Close the core on its loop (queues, then speech) and end the thread."""
        thread, loop, stopping = self._thread, self._loop, self._stopping
        if thread is None or loop is None or stopping is None:
            return
        self._core = None  # new calls are refused from now on
        with contextlib.suppress(RuntimeError):  # already closed
            loop.call_soon_threadsafe(stopping.set)
        thread.join(timeout)
        if thread.is_alive():
            log.warning("the core did not stop within %g s", timeout)

    # --- loop thread ----------------------------------------------------------------
    def _run(self, opener: Opener[T]) -> None:
        try:
            asyncio.run(self._main(opener))
        except BaseException as exc:  # reported to start(); logged if after start
            if self._started.is_set():
                log.critical("the core's event loop failed", exc_info=exc)
            self._error = exc
        finally:
            self._loop = None
            self._started.set()

    async def _main(self, opener: Opener[T]) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        async with contextlib.AsyncExitStack() as stack:
            self._core = await opener(stack)
            self._started.set()
            await self._stopping.wait()
            self._core = None


async def _invoke(fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    result = fn(*args)
    if inspect.isawaitable(result):
        result = await result
    return result
