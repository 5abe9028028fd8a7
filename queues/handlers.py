"""Job handlers: what answers a question. ``JobHandler = Callable[[Job], Awaitable[str]]``.

- ``offline`` (default): time, date, day of the week and spoken arithmetic, no network.
- ``openai``: any OpenAI-compatible ``/chat/completions`` endpoint (Ollama, vLLM, OpenAI).
- ``module:callable``: your own async function taking a Job and returning the answer.

A handler may be slow or raise; the consumer turns both into a dead job with the error.
A handler with an ``aclose()`` coroutine is closed when ``JobQueues`` stops.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import httpx

from queues import arithmetic
from queues.errors import HandlerConfigError, HandlerError
from queues.models import Job, JobHandler

if TYPE_CHECKING:
    from config import Settings

CAPABILITIES = "I can tell the time, the date and do arithmetic."
SYSTEM_PROMPT = (
    "You are Genie, a voice assistant. Answer in one to three short plain sentences "
    "that read well aloud: no lists, no markdown."
)
_ECHO_LIMIT = 200


def _local_now() -> datetime:
    return datetime.now().astimezone()


class OfflineHandler:
    """Answers from the clock and a safe calculator; everything else is echoed politely."""

    def __init__(self, clock: Callable[[], datetime] = _local_now) -> None:
        self._clock = clock

    async def __call__(self, job: Job) -> str:
        return self.answer(job.question)

    def answer(self, question: str) -> str:
        text = question.strip().lower()
        expression = arithmetic.find_expression(text)
        if expression is not None:
            reply = _calculate(expression)
            if reply is not None:
                return reply
        now = self._clock()
        if re.search(r"\btime\b", text):
            hour = now.hour % 12 or 12
            return f"It's {hour}:{now.minute:02d} {'AM' if now.hour < 12 else 'PM'}."
        if re.search(r"\b(?:what|which) day\b|\bday of the week\b|\bweekday\b", text):
            return f"Today is {now:%A}."
        if re.search(r"\bdate\b|\btoday\b", text):
            return f"Today is {now:%A}, {now.day} {now:%B} {now.year}."
        return _unknown(question)


# The default handler, ready to pass as ``handler=`` (it holds no state).
offline: JobHandler = OfflineHandler()


def _calculate(expression: str) -> str | None:
    """A spoken answer, or None when the text only looked like arithmetic."""
    try:
        value = arithmetic.evaluate(expression)
    except ZeroDivisionError:
        return "I can't divide by zero. Nobody can, but it's a nice try."
    except arithmetic.UnreasonableNumberError as exc:
        return f"Sorry, {exc}."
    except (SyntaxError, ValueError, TypeError, RecursionError, MemoryError):
        return None
    return f"{arithmetic.spoken(expression)} is {arithmetic.format_number(value)}."


def _unknown(question: str) -> str:
    heard = question.strip().rstrip("?!. ")
    if len(heard) > _ECHO_LIMIT:
        return f"I heard: {heard[:_ECHO_LIMIT].rstrip()}... {CAPABILITIES}"
    return f"I heard: {heard}. {CAPABILITIES}"


class OpenAIHandler:
    """POST {base_url}/chat/completions and speak ``choices[0].message.content``."""

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key: str | None = None,
        timeout: float = 30.0,
        system_prompt: str = SYSTEM_PROMPT,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.model = model
        self._system_prompt = system_prompt
        self._client = httpx.AsyncClient(base_url=base_url, timeout=timeout, headers=headers)

    async def __call__(self, job: Job) -> str:
        body = {
            "model": self.model,
            "messages": [
                {"role": "system", "content": self._system_prompt},
                {"role": "user", "content": job.question},
            ],
        }
        try:
            response = await self._client.post("/chat/completions", json=body)
        except httpx.HTTPError as exc:
            raise HandlerError(f"chat endpoint unreachable: {exc!r}") from exc
        if response.status_code != 200:
            detail = response.text[:200].strip()
            raise HandlerError(f"chat endpoint answered HTTP {response.status_code}: {detail}")
        return _content(response)

    async def aclose(self) -> None:
        await self._client.aclose()


def _content(response: httpx.Response) -> str:
    try:
        content: Any = response.json()["choices"][0]["message"]["content"]
    except (ValueError, LookupError, TypeError) as exc:
        raise HandlerError("chat endpoint reply has no choices[0].message.content") from exc
    if not isinstance(content, str) or not content.strip():
        raise HandlerError("chat endpoint returned an empty answer")
    return content.strip()


def import_handler(path: str) -> JobHandler:
    """``package.module:attribute`` (dots allowed after the colon) -> that callable."""
    module_name, _, attribute = path.partition(":")
    if not module_name or not attribute:
        raise HandlerConfigError(f"job handler {path!r} is not of the form 'module:callable'")
    try:
        target: Any = importlib.import_module(module_name)
        for part in attribute.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise HandlerConfigError(f"cannot import job handler {path!r}: {exc}") from exc
    if not callable(target):
        kind = type(target).__name__
        raise HandlerConfigError(f"job handler {path!r} is not callable (it is a {kind})")
    return target


def load_handler(settings: Settings) -> JobHandler:
    """The handler named by ``settings.job_handler``."""
    name = settings.job_handler.strip()
    if name == "offline":
        return OfflineHandler()
    if name == "openai":
        key = settings.openai_api_key
        return OpenAIHandler(
            base_url=settings.openai_base_url,
            model=settings.openai_model,
            api_key=key.get_secret_value() if key is not None else None,
            timeout=settings.job_timeout,
        )
    if ":" in name:
        return import_handler(name)
    raise HandlerConfigError(
        f"unknown job handler {name!r}; use 'offline', 'openai' or 'module:callable'"
    )
