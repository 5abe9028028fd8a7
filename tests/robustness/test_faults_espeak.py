"""The espeak worker dying, over the wire.

The worker is a thread (``tts.espeak_worker.Worker``), not a process: libespeak-ng is
called in-process through ctypes, so there is nothing to SIGKILL, and a native crash
(SIGSEGV) takes the whole server down with it (a supervisor restarts the process; the
SQLite store resumes its jobs). What can die on its own is the thread: an exception
escaping its loop. The test kills it the way CPython kills a thread, raising
``SystemExit`` in it (``PyThreadState_SetAsyncExc``), at the two places it can be:
idle between segments, and inside a segment (the test holds the library lock so the
worker is parked in ``_process``). The request in flight then fails at once with a
clear 503 naming the worker (it must not wait for the first-byte timeout), and the next
request starts a new worker and is spoken.
"""

from __future__ import annotations

import contextlib
import ctypes
import sys
import threading
from collections.abc import Iterator

import anyio
import httpx
import pytest

from tests import audio
from tests.servers import ThreadServer
from tts.espeak_native import SHARED

pytestmark = [
    pytest.mark.anyio,
    # The test kills a thread: pytest reports that thread's SystemExit.
    pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning"),
]

TEXT = "The worker died and a new one speaks."
FIRST_BYTE_TIMEOUT = 30.0  # a stream left hanging would wait this long: the test won't


@pytest.fixture(scope="module")
def server() -> Iterator[ThreadServer]:
    settings = {
        "tts_providers": ["espeak"],
        "tts_cache_entries": 0,
        "tts_first_byte_timeout": FIRST_BYTE_TIMEOUT,
        "rate_limit_audio": 0,
    }
    with ThreadServer(**settings) as running:
        yield running


def worker(server: ThreadServer) -> threading.Thread:
    thread = server.runtime.speech.providers[0]._worker  # the provider's current worker
    assert thread is not None and thread.is_alive()
    return thread


def kill(thread: threading.Thread) -> None:
    """Raise SystemExit in ``thread`` at its next Python instruction."""
    assert thread.ident is not None
    hit = ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread.ident), ctypes.py_object(SystemExit)
    )
    assert hit == 1


def innermost(thread: threading.Thread, depth: int) -> tuple[str, ...]:
    """The names of the functions ``thread`` is in, innermost first."""
    frame = sys._current_frames().get(thread.ident or 0)
    names: list[str] = []
    while frame is not None and len(names) < depth:
        names.append(frame.f_code.co_name)
        frame = frame.f_back
    return tuple(names)


async def parked(thread: threading.Thread, *names: str) -> None:
    """Wait until ``thread`` is blocked (in C, running no bytecode) inside ``names``."""
    with anyio.fail_after(10):
        while True:
            if innermost(thread, len(names)) == names:
                await anyio.sleep(0.05)  # still there: blocked, not passing through
                if innermost(thread, len(names)) == names:
                    return
            await anyio.sleep(0.01)


@pytest.mark.parametrize("where", ["between segments", "inside a segment"])
async def test_a_dead_worker_fails_its_request_clearly_and_a_new_one_speaks_next(
    server: ThreadServer, where: str
) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=FIRST_BYTE_TIMEOUT * 2) as http:
        assert (await http.get("/api/get-audio", params={"msg": TEXT})).status_code == 200
        victim = worker(server)
        with anyio.fail_after(FIRST_BYTE_TIMEOUT / 2), contextlib.ExitStack() as stack:
            if where == "between segments":
                await parked(victim, "wait", "_take")  # idle, waiting for a segment
                kill(victim)  # it dies when the next segment wakes it
                failed = await http.get("/api/get-audio", params={"msg": TEXT})
            else:
                stack.enter_context(SHARED.lock)  # the worker takes a segment, then waits
                async with anyio.create_task_group() as tasks:
                    answers: list[httpx.Response] = []

                    async def ask() -> None:
                        answers.append(await http.get("/api/get-audio", params={"msg": TEXT}))

                    tasks.start_soon(ask)
                    await parked(victim, "_process")  # on the library lock
                    kill(victim)
                    stack.close()  # let it go: it dies inside the segment
                failed = answers[0]
        victim.join(5)
        assert not victim.is_alive()
        assert failed.status_code == 503, failed.text
        assert "espeak worker" in failed.json()["message"]

        spoken = await http.get("/api/get-audio", params={"msg": TEXT})
        assert spoken.status_code == 200 and audio.duration(spoken.content) > 1.5
        assert worker(server) is not victim
