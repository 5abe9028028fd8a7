"""Fleet nodes for the process tests: real ``python -m fastapi_app`` (and
``python -m flask_app``) processes on one real ``redis-server``, each fleet under its own
key prefix."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from tests.fastapi_app.helpers import WsClient
from tests.flask_app.launch import ServerProcess, server_of

SLEEPY = "tests.fastapi_app.handlers:sleepy"


FLASK_THREADING = {"kind": "flask-threading"}
FLASK_GEVENT = {"kind": "flask-gevent"}


def node(redis_url: str, prefix: str, role: dict[str, Any]) -> ServerProcess:
    """A server on the fleet ``prefix``: the role's ``kind`` (``server_of``; default
    FastAPI); the role's other keys are settings."""
    settings = {"redis_url": redis_url, "redis_channel": prefix, **role}
    return server_of(settings.pop("kind", "fastapi"), settings=settings)


@contextlib.contextmanager
def fleet(redis_url: str, *roles: dict[str, Any], **common: Any) -> Iterator[list[ServerProcess]]:
    """Start one process per ``roles`` entry (settings), all on one prefix."""
    prefix = f"t{uuid.uuid4().hex[:8]}"
    nodes: list[ServerProcess] = []
    try:
        for role in roles:
            nodes.append(node(redis_url, prefix, {**common, **role}).start())
        yield nodes
    finally:
        for server in nodes:
            server.close()


def said(frame: dict[str, Any]) -> str:
    """The text an ``audio_update`` frame's URL speaks."""
    return parse_qs(urlsplit(frame["audioURL"]).query)["msg"][0]


async def answer_to(client: WsClient, text: str, wait: float = 30.0) -> dict[str, Any]:
    """The next ``audio_update`` that speaks ``text``."""
    async with asyncio.timeout(wait):
        while True:
            frame = await client.next("audio_update", wait=wait)
            if said(frame) == text:
                return frame


async def health(node: ServerProcess) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=5) as http:
        return (await http.get(f"{node.url}/health")).json()


async def eventually(check: Any, wait: float = 20.0, every: float = 0.05) -> Any:
    """Poll the async ``check()`` until it returns something truthy."""
    async with asyncio.timeout(wait):
        while not (result := await check()):  # noqa: ASYNC110 - another process's state
            await asyncio.sleep(every)
    return result
