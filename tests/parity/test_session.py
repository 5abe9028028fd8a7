"""One scripted legacy session, run over Socket.IO against every server, must give the
same events (names, payload keys and values) in the same order, and the same HTTP
status codes, content types and bodies (ids and timestamps aside).

The session: connect; push three questions while the first is held in ``running``;
read the four lists; let the jobs finish; read the lists; fetch every audio URL and
every answer; delete one job; read the done list.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from queues.handlers import OfflineHandler
from tests.audio import duration
from tests.flask_app.sio import EventLog
from tests.parity.conftest import Gated
from wire.legacy_http import TEXT_PLAIN

pytestmark = pytest.mark.anyio

QUESTIONS = ("what is 2 plus 3", "what is 3 times 4", "what is 10 minus 4")
JSON = "application/json"
MP3 = "audio/mpeg"
GONG = {"soundFile": "/static/sounds/gentle-gong.mp3"}


def said(text: str) -> tuple[str, dict[str, str]]:
    return ("audio_update", {"audioURL": "/get_tts_audio?tts_text=" + quote(text, safe="")})


def count(event: str, value: int) -> tuple[str, dict[str, int]]:
    return (event, {"value": value})


# The offline handler's answers (arithmetic: the same on every run).
ANSWERS = [OfflineHandler().answer(q) for q in QUESTIONS]

# What every server must send, in order (time_update aside).
EXPECTED_EVENTS: list[Any] = [
    # q1: the queue was empty; a consumer takes it at once and holds it.
    said("hmm... let me think"), count("todo_update", 1),
    count("todo_update", 0), count("run_update", 1),
    # q2: todo is empty again (q1 is running), so the same phrase.
    said("hmm... let me think"), count("todo_update", 1),
    # q3: one job waits before it.
    said("1 job before this one"), count("todo_update", 2),
    # The gate opens: q1, q2, q3 finish one after another.
    count("done_update", 1), count("run_update", 0), said(ANSWERS[0]),
    count("todo_update", 1), count("run_update", 1),
    count("done_update", 2), count("run_update", 0), said(ANSWERS[1]),
    count("todo_update", 0), count("run_update", 1),
    count("done_update", 3), count("run_update", 0), said(ANSWERS[2]),
    # Delete q2: the done count, then the gong.
    count("done_update", 2), ("notification_sound_update", GONG),
]  # fmt: skip


def li(n: int) -> str:
    return f"\"<li id='q{n}'>TS Q: {QUESTIONS[n]}</li>\""


def play(n: int) -> str:
    item = f"<span class='play'>TS Q: {QUESTIONS[n]}</span> <span class='delete'></span>"
    return f"\"<li id='q{n}'>{item}</li>\""


# (step, status, content type, body with ids as q<n> and times as TS; audio: headers)
EXPECTED_HTTP: list[tuple[str, int, str, str]] = [
    ("push 0", 200, TEXT_PLAIN, "Job [q0] added to the queue"),
    ("push 1", 200, TEXT_PLAIN, "Job [q1] added to the queue"),
    ("push 2", 200, TEXT_PLAIN, "Job [q2] added to the queue"),
    ("list todo", 200, JSON, f'{{"todo_jobs":[{li(2)},{li(1)}]}}'),
    ("list run", 200, JSON, f'{{"run_jobs":[{li(0)}]}}'),
    ("list done", 200, JSON, '{"done_jobs":[]}'),
    ("list dead", 200, JSON, '{"dead_jobs":[]}'),
    ("list todo", 200, JSON, '{"todo_jobs":[]}'),
    ("list run", 200, JSON, '{"run_jobs":[]}'),
    ("list done", 200, JSON, f'{{"done_jobs":[{play(2)},{play(1)},{play(0)}]}}'),
    ("list dead", 200, JSON, '{"dead_jobs":[]}'),
    *[(f"audio {n}", 200, MP3, "inline/no-cache") for n in range(6)],
    *[(f"answer {n}", 200, MP3, "inline/no-cache") for n in range(3)],
    ("delete 1", 200, TEXT_PLAIN, "Deleted snapshot [q1]"),
    ("list done", 200, JSON, f'{{"done_jobs":[{play(2)},{play(0)}]}}'),
]


class Session:
    def __init__(self, server: Gated, http: httpx.AsyncClient, page: EventLog) -> None:
        self.server, self.http, self.page = server, http, page
        self.ids: list[str] = []
        self.http_trace: list[tuple[str, int, str, str]] = []

    async def get(self, label: str, url: str) -> httpx.Response:
        response = await self.http.get(url)
        self.record(label, response)
        return response

    def record(self, label: str, response: httpx.Response) -> None:
        kind = response.headers.get("content-type", "")
        if kind == MP3:
            assert duration(response.content) > 0.2, label
            body = f"{response.headers['content-disposition']}/{response.headers['cache-control']}"
        else:
            body = self.normalise(response.text)
        self.http_trace.append((label, response.status_code, kind, body))

    def normalise(self, text: str) -> str:
        """Ids -> q<n> (the question's number), times -> TS: the rest must match exactly."""
        for n, id_hash in enumerate(self.ids):
            text = text.replace(id_hash, f"q{n}")
        return re.sub(r"\d{4}-\d\d-\d\d @ \d\d:\d\d:\d\d", "TS", text)

    async def lists(self) -> None:
        for name in ("todo", "run", "done", "dead"):
            await self.get(f"list {name}", f"/get_queue/{name}")

    async def run(self) -> None:
        page = self.page
        for n, question in enumerate(QUESTIONS):
            response = await self.http.get(f"/push?question={question}")
            self.ids.append(re.search(r"\[([0-9a-f]{32})\]", response.text).group(1))
            self.record(f"push {n}", response)
            # Wait for the state this push leads to before the next step (by state, not
            # by event count: the FastAPI server may conflate counts, see below).
            if n == 0:
                await page.wait_for_latest("run_update", {"value": 1})
            else:
                await page.wait_for_latest("todo_update", {"value": n})
        await self.lists()
        self.server.open_gate()
        await page.wait_for("done_update", where=lambda d: d == {"value": 3})
        await page.wait_for("audio_update", 6)
        await self.lists()
        for n, (_, data) in enumerate(e for e in page.without_clock() if e[0] == "audio_update"):
            await self.get(f"audio {n}", data["audioURL"])
        for n, id_hash in enumerate(self.ids):
            await self.get(f"answer {n}", f"/get-answer/{id_hash}")
        await self.get("delete 1", f"/delete-snapshot/{self.ids[1]}")
        await page.wait_for("notification_sound_update")
        await self.get("list done", "/get_queue/done")


COUNT_EVENTS = {"todo_update", "run_update", "done_update", "dead_update"}


def assert_same_events(events: list[Any], *, conflating: bool) -> None:
    """The expected events in order. Where the server conflates queue counts (FastAPI,
    Socket.IO websocket: ``migration_docs/differences.md``), a count may be missing when a
    later count of the same name replaced it; every other event is there, in order."""
    if not conflating:
        assert events == EXPECTED_EVENTS
        return
    rest = iter(events)
    following = next(rest, None)
    for i, event in enumerate(EXPECTED_EVENTS):
        if event == following:
            following = next(rest, None)
            continue
        name = event[0]
        assert name in COUNT_EVENTS, f"{event} is missing from {events}"
        assert any(e[0] == name for e in EXPECTED_EVENTS[i + 1 :]), f"{event}: nothing newer"
    assert following is None, f"unexpected {following} in {events}"


@pytest.mark.parametrize("transport", ["websocket", "polling"])
async def test_scripted_session(gated_server: Gated, transport: str) -> None:
    page = await EventLog().connect(gated_server.url, transport)
    async with httpx.AsyncClient(base_url=gated_server.url, timeout=20) as http:
        session = Session(gated_server, http, page)
        await session.run()
        clock = await page.wait_for("time_update", 1)
    await page.close()

    assert_same_events(page.without_clock(), conflating=gated_server.kind == "fastapi" and
                       transport == "websocket")  # fmt: skip
    assert session.http_trace == EXPECTED_HTTP
    assert set(clock[0]) == {"date"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\d @ \d\d:\d\d:\d\d.*", clock[0]["date"])
