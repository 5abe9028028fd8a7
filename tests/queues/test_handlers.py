"""Job handlers: the offline one, the safe calculator, loading by name, and the OpenAI one
against a small OpenAI-compatible server on loopback (real HTTP)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import anyio
import pytest
from aiohttp import web

from config import Settings
from queues import Job, JobState, OfflineHandler, OpenAIHandler, load_handler
from queues.arithmetic import evaluate, find_expression
from queues.errors import HandlerConfigError, HandlerError
from queues.handlers import CAPABILITIES
from tests.queues.helpers import Recorder, make_queues

# Tuesday 25 November 2025, 15:07.
FIXED = datetime(2025, 11, 25, 15, 7)


def _ask(question: str) -> str:
    return OfflineHandler(clock=lambda: FIXED).answer(question)


@pytest.mark.parametrize(
    ("question", "answer"),
    [
        ("what is 12 times 7", "12 times 7 is 84."),
        ("What's 3 plus 4?", "3 plus 4 is 7."),
        ("15 divided by 4", "15 divided by 4 is 3.75."),
        ("2 to the power of 10", "2 to the power of 10 is 1024."),
        ("(3+4)*2", "(3 plus 4) times 2 is 14."),
        ("what is twenty-one minus one hundred and five", "21 minus 105 is -84."),
        ("what is five squared", "5 to the power of 2 is 25."),
        ("7 mod 3", "7 modulo 3 is 1."),
        ("3 x 4", "3 times 4 is 12."),
        ("1,000 × 3", "1000 times 3 is 3000."),
        ("10 / 4 * 2", "10 divided by 4 times 2 is 5."),
    ],
)
def test_offline_arithmetic(question: str, answer: str) -> None:
    assert _ask(question) == answer


@pytest.mark.parametrize(
    ("question", "answer"),
    [
        ("what time is it?", "It's 3:07 PM."),
        ("Tell me the time", "It's 3:07 PM."),
        ("what's the date today", "Today is Tuesday, 25 November 2025."),
        ("what day is it", "Today is Tuesday."),
        ("which day of the week is it", "Today is Tuesday."),
    ],
)
def test_offline_clock(question: str, answer: str) -> None:
    assert _ask(question) == answer


def test_offline_clock_morning_and_midnight() -> None:
    assert OfflineHandler(clock=lambda: datetime(2025, 1, 1, 0, 5)).answer("time") == (
        "It's 12:05 AM."
    )
    assert OfflineHandler(clock=lambda: datetime(2025, 1, 1, 9, 30)).answer("time?") == (
        "It's 9:30 AM."
    )


def test_division_by_zero_and_huge_numbers_are_answered_politely() -> None:
    assert "divide by zero" in _ask("what is 10 divided by 0")
    assert "divide by zero" in _ask("5 mod 0")
    assert _ask("9 ** 9 ** 9") == "Sorry, that exponent is too big for me."
    assert _ask("2 to the power of 1000") == "Sorry, that number is too big for me."
    assert _ask("(-8) ** 0.5") == "Sorry, that is not a real number."


@pytest.mark.parametrize(
    "question",
    [
        "__import__('os').system('echo pwned')",
        "open('/etc/passwd').read()",
        "().__class__.__bases__[0].__subclasses__()",
        "lambda: 1",
        "hello genie",
    ],
)
def test_no_eval_escape_unknown_is_echoed(question: str) -> None:
    answer = _ask(question)
    assert answer.startswith("I heard: ") and answer.endswith(CAPABILITIES)
    assert "pwned" not in answer.replace(question, "")


def test_calculator_accepts_only_plain_arithmetic() -> None:
    for hostile in ("__import__('os')", "a + 1", "[1] * 3", "'a' * 3", "(1).real + 1", "True + 1"):
        with pytest.raises(SyntaxError):
            evaluate(hostile)
    assert find_expression("__import__('os')") is None
    assert find_expression("what is 3 plus") == "3 +"
    assert _ask("what is 3 plus") == f"I heard: what is 3 plus. {CAPABILITIES}"
    assert find_expression("1 + " * 200 + "1") is None  # over the length cap


def test_long_unknown_question_is_echoed_shortened() -> None:
    answer = _ask("blah " * 500)
    assert answer.endswith(f"... {CAPABILITIES}") and len(answer) < 300


@pytest.mark.anyio
async def test_offline_handler_through_the_queues() -> None:
    recorder = Recorder()
    async with make_queues(recorder, OfflineHandler(clock=lambda: FIXED)) as queues:
        job = await queues.push_job("what is 6 times 7", client_id="c")
        with anyio.fail_after(5):
            await queues.wait_idle()
    assert job.state is JobState.DONE and job.answer == "6 times 7 is 42."
    assert recorder.heard_by("c")[-1] == "6 times 7 is 42."


def test_load_handler_by_name() -> None:
    assert isinstance(load_handler(Settings(job_handler="offline")), OfflineHandler)
    handler = load_handler(Settings(job_handler="openai", openai_model="tiny"))
    assert isinstance(handler, OpenAIHandler) and handler.model == "tiny"
    imported = load_handler(Settings(job_handler="tests.queues.helpers:echo"))
    from tests.queues.helpers import echo

    assert imported is echo


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("magic", "unknown job handler 'magic'; use 'offline', 'openai' or 'module:callable'"),
        ("no_such_module_xyz:run", "cannot import job handler"),
        ("tests.queues.helpers:missing", "cannot import job handler"),
        ("queues.models:MAX_QUESTION_CHARS", "is not callable (it is a int)"),
        (":echo", "not of the form 'module:callable'"),
    ],
)
def test_load_handler_refuses_clearly(name: str, message: str) -> None:
    with pytest.raises(ValueError, match="job handler") as caught:
        load_handler(Settings(job_handler=name))
    assert isinstance(caught.value, HandlerConfigError) and message in str(caught.value)


# --- a tiny OpenAI-compatible server on 127.0.0.1 ------------------------------------------


class FakeChat:
    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.mode = "ok"

    async def completions(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append((dict(request.headers), body))
        if request.headers.get("Authorization") != "Bearer sk-test":
            return web.json_response({"error": {"message": "bad key"}}, status=401)
        if self.mode == "garbage":
            return web.json_response({"choices": []})
        question = body["messages"][-1]["content"]
        reply = {"message": {"role": "assistant", "content": f" You asked: {question} "}}
        return web.json_response({"id": "chatcmpl-1", "choices": [reply]})


@pytest.fixture
async def fake_chat() -> AsyncIterator[tuple[str, FakeChat]]:
    chat = FakeChat()
    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat.completions)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/v1", chat
    finally:
        await runner.cleanup()


def _openai(base_url: str, key: str | None = "sk-test") -> OpenAIHandler:
    settings = Settings(
        job_handler="openai", openai_base_url=base_url, openai_api_key=key, openai_model="m1"
    )
    handler = load_handler(settings)
    assert isinstance(handler, OpenAIHandler)
    return handler


@pytest.mark.anyio
async def test_openai_handler_answers_from_the_chat_endpoint(fake_chat) -> None:
    base_url, chat = fake_chat
    handler = _openai(base_url)
    try:
        answer = await handler(Job(question="what is love"))
    finally:
        await handler.aclose()
    assert answer == "You asked: what is love"
    headers, body = chat.requests[0]
    assert headers["Authorization"] == "Bearer sk-test"
    assert body["model"] == "m1"
    assert body["messages"][0]["role"] == "system"
    assert body["messages"][-1] == {"role": "user", "content": "what is love"}


@pytest.mark.anyio
async def test_openai_errors_become_dead_jobs_with_a_clear_error(fake_chat) -> None:
    base_url, chat = fake_chat
    recorder = Recorder()
    async with make_queues(recorder, _openai(base_url, key="wrong")) as queues:
        denied = await queues.push_job("hello")
        with anyio.fail_after(10):
            await queues.wait_idle()
    assert denied.state is JobState.DEAD
    assert denied.error.startswith("HandlerError: chat endpoint answered HTTP 401")

    chat.mode = "garbage"
    handler = _openai(base_url)
    try:
        with pytest.raises(HandlerError, match=r"no choices\[0\]\.message\.content"):
            await handler(Job(question="hello"))
    finally:
        await handler.aclose()


@pytest.mark.anyio
async def test_openai_unreachable_endpoint_is_a_handler_error() -> None:
    # Bind then close a loopback port so nothing listens on it.
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    handler = _openai(f"http://127.0.0.1:{port}/v1")
    try:
        with pytest.raises(HandlerError, match="chat endpoint unreachable"):
            await handler(Job(question="hello"))
    finally:
        await handler.aclose()


@pytest.mark.anyio
async def test_openai_handler_is_closed_with_the_queues(fake_chat) -> None:
    base_url, _ = fake_chat
    handler = _openai(base_url)
    async with make_queues(Recorder(), handler) as queues:
        job = await queues.push_job("ping")
        with anyio.fail_after(10):
            await queues.wait_idle()
    assert job.answer == "You asked: ping"
    assert handler._client.is_closed
