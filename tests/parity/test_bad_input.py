"""Bad input on the legacy routes: the same status, content type and JSON error body from
every server; neither server crashes and no queued job is lost.

The original defined one error (an unknown queue name, as a 200 with ``{"error"}``);
both servers now answer it, and every other case, with a real status and
``{"code", "message"}``.
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest

from tests.flask_app.launch import raw_get
from tests.flask_app.sio import EventLog
from tests.parity.conftest import Gated
from wire.legacy_http import APPLICATION_JSON, TEXT_PLAIN

pytestmark = pytest.mark.anyio

MISSING = [{"loc": ["query", "{}"], "msg": "Field required", "type": "missing"}]
LONG = "x" * 5001
UNKNOWN = "0123456789abcdef0123456789abcdef"


def error(status: int, code: str, message: str, **extra: Any) -> tuple[int, str, dict[str, Any]]:
    return status, APPLICATION_JSON, {"code": code, "message": message, **extra}


def missing(name: str) -> tuple[int, str, dict[str, Any]]:
    detail = json.loads(json.dumps(MISSING).replace("{}", name))
    return error(422, "invalid_request", f"query.{name}: Field required", detail=detail)


# (request path; HELD is the id of a job held in running) -> (status, type, body)
CASES: list[tuple[str, tuple[int, str, Any]]] = [
    ("/push", missing("question")),
    ("/push?question=", error(422, "empty_question", "the question is empty; say or type something to ask")),  # noqa: E501
    ("/push?question=%20%20", error(422, "empty_question", "the question is empty; say or type something to ask")),  # noqa: E501
    (f"/push?question={LONG}", error(413, "question_too_long", "the question is 5001 characters; the limit is 5000")),  # noqa: E501
    ("/get_queue/nope", error(404, "unknown_queue", "unknown queue 'nope'; valid: todo, run, done, dead")),  # noqa: E501
    ("/get_queue/TODO", error(404, "unknown_queue", "unknown queue 'TODO'; valid: todo, run, done, dead")),  # noqa: E501
    (f"/get-answer/{UNKNOWN}", error(404, "job_not_found", f"no answered job '{UNKNOWN}'")),
    ("/get-answer/HELD", error(404, "job_not_found", "no answered job 'HELD'")),
    (f"/delete-snapshot/{UNKNOWN}", error(404, "job_not_found", f"no job '{UNKNOWN}' in any queue")),  # noqa: E501
    ("/delete-snapshot/HELD", error(409, "job_active", "job 'HELD' is running; only done or dead jobs can be deleted")),  # noqa: E501
    ("/get_tts_audio", missing("tts_text")),
    ("/get_tts_audio?tts_text=", error(422, "invalid_text", "text is empty; send 1 to 5000 characters")),  # noqa: E501
    ("/get_tts_audio?tts_text=%20", error(422, "invalid_text", "text is empty; send 1 to 5000 characters")),  # noqa: E501
    (f"/get_tts_audio?tts_text={LONG}", error(413, "text_too_long", "text is 5001 characters; the limit is 5000")),  # noqa: E501
    ("/static/nothing-here.mp3", error(404, "not_found", "no file 'nothing-here.mp3' under /static")),  # noqa: E501
]  # fmt: skip

# Sent as raw request lines: no client may normalise the dots away.
ESCAPES = ("/static/../config.py", "/static/%2e%2e/config.py", "/static/..%2fconfig.py")


async def test_bad_input_answers(gated_server: Gated) -> None:
    page = await EventLog().connect(gated_server.url, "websocket")
    async with httpx.AsyncClient(base_url=gated_server.url, timeout=20) as http:
        held = await http.get("/push?question=what is 6 times 7")
        held_id = re.search(r"\[([0-9a-f]{32})\]", held.text).group(1)
        await page.wait_for("run_update", where=lambda d: d == {"value": 1})
        waiting = await http.get("/push?question=what is 1 plus 1")  # queued behind it

        differences: dict[str, Any] = {}
        for path, (status, kind, body) in CASES:
            response = await http.get(path.replace("HELD", held_id))
            got = (response.status_code, response.headers.get("content-type"), response.json())
            want = (status, kind, json.loads(json.dumps(body).replace("HELD", held_id)))
            if got != want:
                differences[path] = (got, want)
        # "running" is accepted as well as the page's "run"; the key echoes the name.
        for name in ("run", "running"):
            listing = (await http.get(f"/get_queue/{name}")).json()
            assert list(listing) == [f"{name}_jobs"] and held_id in listing[f"{name}_jobs"][0]
        for path in ESCAPES:
            status, raw = await raw_get(gated_server.server.port, path)
            assert status == 404, (path, raw[:300])
            assert b"Settings" not in raw

        # Unencoded text with HTML in it is queued as sent and listed escaped.
        odd = await http.get("/push?question=what is 2+2 & <b>bold</b>?")
        assert odd.status_code == 200 and odd.headers["content-type"] == TEXT_PLAIN
        todo = (await http.get("/get_queue/todo")).json()["todo_jobs"]
        assert "Q: what is 2+2 &amp; &lt;b&gt;bold&lt;/b&gt;?</li>" in todo[0]

        # Nothing was lost: the held job and the two queued behind it all finish.
        gated_server.open_gate()
        await page.wait_for("done_update", where=lambda d: d == {"value": 3})
        done = (await http.get("/get_queue/done")).json()["done_jobs"]
        assert [held_id, waiting.text[5:37]] == [_id(item) for item in done[-1:-3:-1]]
        # A deleted job is gone for good.
        assert (await http.get(f"/delete-snapshot/{held_id}")).status_code == 200
        for path in (f"/get-answer/{held_id}", f"/delete-snapshot/{held_id}"):
            response = await http.get(path)
            assert response.status_code == 404 and response.json()["code"] == "job_not_found"
        assert (await http.get("/health")).status_code == 200
    await page.close()
    assert differences == {}


def _id(item: str) -> str:
    return re.match(r"<li id='([0-9a-f]{32})'>", item).group(1)
