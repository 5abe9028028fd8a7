"""The bridge between the Flask side and the core's private event loop, in both modes.

gevent runs here for real, without monkey-patching (as ``python -m flask_app`` runs it):
the hub lives on the test's thread, the core on its own OS thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any

import pytest

from flask_app.bridge import CoreBridge, CoreUnavailableError
from flask_app.handoff import CoreTimeoutError, GeventHandoff, ThreadHandoff
from queues.errors import JobNotFoundError


class Core:
    """A tiny core: builds asyncio objects on its loop and posts "emits" back."""

    def __init__(self, handoff: Any, seen: list[tuple[str, int]]) -> None:
        self.handoff = handoff
        self.seen = seen
        self.lock = asyncio.Lock()  # bound to the core's loop on first use
        self.loop_thread = threading.get_ident()

    async def work(self, n: int, delay: float = 0.0) -> int:
        async with self.lock:
            await asyncio.sleep(delay)
        for i in range(3):  # posted from the loop thread, in order
            self.handoff.post(self._emit, f"event-{n}-{i}")
        return n * 10

    def _emit(self, name: str) -> None:
        self.seen.append((name, threading.get_ident()))

    async def fail(self) -> None:
        raise JobNotFoundError("abc")

    async def hang(self) -> None:
        await asyncio.Event().wait()


def opener(handoff: Any, seen: list[tuple[str, int]]) -> Any:
    async def open_core(stack: contextlib.AsyncExitStack) -> Core:
        return Core(handoff, seen)

    return open_core


def test_threading_bridge() -> None:
    handoff = ThreadHandoff()
    drainer = threading.Thread(target=handoff.drain, daemon=True)
    drainer.start()
    seen: list[tuple[str, int]] = []
    bridge: CoreBridge[Core] = CoreBridge(handoff, call_timeout=0.5)
    core = bridge.start(opener(handoff, seen))
    assert core.loop_thread != threading.get_ident()

    results: list[int] = []
    callers = [
        threading.Thread(target=lambda n=n: results.append(bridge.call(core.work, n)))
        for n in range(5)
    ]
    for thread in callers:
        thread.start()
    for thread in callers:
        thread.join(10)
    assert sorted(results) == [0, 10, 20, 30, 40]
    with pytest.raises(JobNotFoundError):
        bridge.call(core.fail)
    with pytest.raises(CoreTimeoutError):
        bridge.call(core.hang)
    bridge.stop()
    with pytest.raises(CoreUnavailableError):
        bridge.call(core.work, 1)
    handoff.close()
    drainer.join(10)
    _check_order(seen, drainer.ident)


def test_gevent_bridge_never_blocks_the_hub() -> None:
    gevent = pytest.importorskip("gevent")
    handoff = GeventHandoff()  # on this thread: the hub's
    drainer = gevent.spawn(handoff.drain)
    seen: list[tuple[str, int]] = []
    bridge: CoreBridge[Core] = CoreBridge(handoff, call_timeout=1.0)
    core = bridge.start(opener(handoff, seen))

    ticks = [0]

    def ticker() -> None:
        while True:
            ticks[0] += 1
            gevent.sleep(0.01)

    tick = gevent.spawn(ticker)
    gevent.sleep(0)
    # Five greenlets wait on a slow core at once; meanwhile the hub keeps running others.
    before = ticks[0]
    callers = [gevent.spawn(bridge.call, core.work, n, 0.05) for n in range(5)]
    gevent.joinall(callers, timeout=10, raise_error=True)
    assert sorted(c.value for c in callers) == [0, 10, 20, 30, 40]
    assert ticks[0] > before + 5  # the ticker ran while the callers waited

    with pytest.raises(JobNotFoundError):
        bridge.call(core.fail)
    with pytest.raises(CoreTimeoutError):
        bridge.call(core.hang)
    tick.kill()
    bridge.stop()
    handoff.close()
    drainer.join(10)
    assert drainer.dead
    # Every posted call ran on the hub's thread (this one), never on the core's.
    _check_order(seen, threading.get_ident())


def _check_order(seen: list[tuple[str, int]], drainer_thread: int | None) -> None:
    assert len(seen) == 15
    assert {thread for _, thread in seen} == {drainer_thread}
    for n in range(5):
        mine = [name for name, _ in seen if name.startswith(f"event-{n}-")]
        assert mine == [f"event-{n}-{i}" for i in range(3)]


def test_a_core_that_fails_to_open_is_reported() -> None:
    handoff = ThreadHandoff()

    async def broken(stack: contextlib.AsyncExitStack) -> Core:
        raise ValueError("bad job handler")

    bridge: CoreBridge[Core] = CoreBridge(handoff)
    with pytest.raises(ValueError, match="bad job handler"):
        bridge.start(broken)
    with pytest.raises(CoreUnavailableError):
        bridge.call(print)


def test_the_core_closes_on_its_own_loop() -> None:
    handoff = ThreadHandoff()
    events: list[str] = []

    async def open_core(stack: contextlib.AsyncExitStack) -> Core:
        loop = asyncio.get_running_loop()

        async def close() -> None:
            assert asyncio.get_running_loop() is loop
            events.append("closed")

        stack.push_async_callback(close)
        return Core(handoff, [])

    bridge: CoreBridge[Core] = CoreBridge(handoff)
    bridge.start(open_core)
    assert events == []
    bridge.stop()
    assert events == ["closed"]
