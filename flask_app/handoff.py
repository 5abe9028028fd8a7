"""Calls handed from the core's event-loop thread to the Flask-SocketIO side, in order.

The asyncio core runs on its own OS thread. Whatever it wants done on the Flask side
(``socketio.emit``, waking a request that waits for a result) is *posted* here and run
by one drainer task that Flask-SocketIO started (``socketio.start_background_task``):

- threading mode: a ``queue.SimpleQueue`` and a drainer thread. A request waits for a
  core result with ``Future.result()``, which only blocks its own thread.
- gevent mode: a real OS thread must never touch gevent objects (they belong to the
  hub's thread), and must not block the hub either. Posting appends to a deque (atomic
  in CPython) and signals the hub's loop through an ``async_`` watcher, the one gevent
  primitive meant to be poked from another thread; its callback sets a gevent Event
  that the drainer greenlet waits on. A request greenlet waits on a gevent
  ``AsyncResult`` that the drainer settles, so the hub keeps serving meanwhile.

One drainer for everything keeps the core's order: a ``done_update`` posted before a
``notification_sound_update`` reaches every client before it.
"""

from __future__ import annotations

import concurrent.futures
import logging
import queue
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

log = logging.getLogger(__name__)

Call = tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]


class CoreTimeoutError(TimeoutError):
    """The core did not answer in time (the call was cancelled)."""


class Handoff(Protocol):
    def post(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Run ``fn(*args, **kwargs)`` on the Flask side, after everything posted before."""

    def wait(self, future: concurrent.futures.Future[Any], timeout: float) -> Any:
        """The future's result, waiting the way the current async mode allows."""

    def drain(self) -> None:
        """Run posted calls until ``close()``; the body of the drainer task."""

    def close(self) -> None:
        """Let the drainer finish what was posted, then stop."""


def _run(call: Call) -> None:
    fn, args, kwargs = call
    try:
        fn(*args, **kwargs)
    except Exception:  # one failed emit (a socket gone) must not stop the drainer
        log.exception("posted call %s failed", getattr(fn, "__qualname__", fn))


class ThreadHandoff:
    def __init__(self) -> None:
        self._calls: queue.SimpleQueue[Call | None] = queue.SimpleQueue()

    def post(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        self._calls.put((fn, args, kwargs))

    def wait(self, future: concurrent.futures.Future[Any], timeout: float) -> Any:
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise CoreTimeoutError(f"the core did not answer within {timeout:g} s") from None

    def drain(self) -> None:
        while (call := self._calls.get()) is not None:
            _run(call)

    def close(self) -> None:
        self._calls.put(None)


class GeventHandoff:
    """Create it on the hub's thread (the main thread of a gevent server)."""

    def __init__(self) -> None:
        import gevent
        from gevent.event import Event

        self._calls: deque[Call | None] = deque()
        self._ready = Event()
        self._watcher = gevent.get_hub().loop.async_()
        # The callback runs on the hub's thread, so the Event is only touched there.
        self._watcher.start(self._ready.set)

    def post(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        self._calls.append((fn, args, kwargs))
        self._watcher.send()  # thread-safe: wakes the hub's loop

    def wait(self, future: concurrent.futures.Future[Any], timeout: float) -> Any:
        from gevent import Timeout
        from gevent.event import AsyncResult

        result = AsyncResult()
        # Runs on the core's thread (or here, if already done): it only posts.
        future.add_done_callback(lambda done: self.post(_settle, result, done))
        try:
            return result.get(timeout=timeout)
        except Timeout:
            future.cancel()
            raise CoreTimeoutError(f"the core did not answer within {timeout:g} s") from None

    def drain(self) -> None:
        while True:
            while self._calls:
                call = self._calls.popleft()
                if call is None:
                    self._watcher.close()
                    return
                _run(call)
            self._ready.clear()
            if not self._calls:  # a post between the check and clear() set it again
                self._ready.wait()

    def close(self) -> None:
        self._calls.append(None)
        self._watcher.send()


def _settle(result: Any, done: concurrent.futures.Future[Any]) -> None:
    if done.cancelled():
        result.set_exception(concurrent.futures.CancelledError())
    elif (exc := done.exception()) is not None:
        result.set_exception(exc)
    else:
        result.set(done.result())


def make_handoff(async_mode: str) -> Handoff:
    if async_mode == "gevent":
        return GeventHandoff()
    if async_mode == "threading":
        return ThreadHandoff()
    raise ValueError(f"unsupported async mode {async_mode!r}; valid: threading, gevent")
