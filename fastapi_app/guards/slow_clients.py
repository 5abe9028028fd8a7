"""Slow clients (slowloris): a request's headers and its body must arrive in time.

uvicorn 0.54 times out nothing while a request arrives: a client that connects and
sends nothing, sends a header byte every few seconds, or announces a body and never
finishes it, holds its socket (and, for the body, a task of the app) for as long as it
likes, and a few thousand such clients exhaust the process's file descriptors.
:class:`SlowClientGuard` is uvicorn's httptools protocol with two deadlines:

- headers: ``GENIE_HEADER_TIMEOUT`` seconds from connecting (or, on a kept-alive
  connection, from the next request's first byte) to the end of its headers; past it
  the client gets ``408`` and the connection is closed;
- body: ``GENIE_BODY_TIMEOUT`` seconds from the end of the headers to the end of the
  body; past it the connection is closed (the app sees the client leave).

Idle time between requests is uvicorn's keep-alive timeout (5 s); a WebSocket is
handed to its own protocol once its handshake headers are in, and has its heartbeats.
Each expiry counts in ``genie_connections_refused{reason="slow_headers"|"slow_body"}``.

It overrides parser callbacks of uvicorn's ``HttpToolsProtocol``, which are not a
public API; ``requirements.txt`` pins uvicorn. So it can step aside, as
``fastapi_app.sockets.direct_frames`` does: :func:`slow_client_protocol` checks at start-up
that the installed uvicorn still has every method it hooks and attribute it reads, and
when it does not, warns once and leaves uvicorn's own protocol in place (no deadlines,
same wire). A hook that meets a missing attribute at run time turns it off the same
way. ``tests/robustness/test_floods.py`` fails if the deadlines silently stop working.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
from collections.abc import Callable
from typing import Any

from config import Settings
from fastapi_app.guards.connection_caps import CONNECTIONS_REFUSED
from fastapi_app.internals import attribute_names

log = logging.getLogger(__name__)

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # no httptools: uvicorn serves with h11, without deadlines
    HttpToolsProtocol = None  # type: ignore[assignment, misc]

SLOW_HEADERS, SLOW_BODY = "slow_headers", "slow_body"
_BODY = b"the request headers did not arrive in time"
REQUEST_TIMEOUT = b"".join((
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n",
    b"content-length: %d\r\nconnection: close\r\n\r\n" % len(_BODY), _BODY,
))  # fmt: skip
# What is hooked and read of uvicorn's protocol (none of it is a public API).
HOOKS = ("connection_made", "connection_lost", "on_message_begin", "on_headers_complete",
         "on_message_complete", "handle_websocket_upgrade")  # fmt: skip
READS = ("transport", "loop", "cycle", "response_complete")
INIT_PARAMETERS = ("config", "server_state", "app_state", "_loop")
_off = False  # set for good when a connection turns out to lack what is read


def missing_internals() -> list[str]:
    """``HttpToolsProtocol.name`` for each hook or read the installed uvicorn lacks."""
    if HttpToolsProtocol is None:
        return ["uvicorn.protocols.http.httptools_impl (httptools is not installed)"]
    from uvicorn.protocols.http.httptools_impl import RequestResponseCycle

    names = attribute_names(HttpToolsProtocol) | attribute_names(RequestResponseCycle)
    missing = [name for name in HOOKS + READS if name not in names]
    parameters = inspect.signature(HttpToolsProtocol.__init__).parameters
    missing += [f"__init__({name})" for name in INIT_PARAMETERS if name not in parameters]
    return [f"HttpToolsProtocol.{name}" for name in missing]


def slow_client_protocol(settings: Settings) -> Callable[..., asyncio.Protocol] | str:
    """uvicorn's ``http`` option: the guard with the settings' deadlines; or "auto"
    (uvicorn's own protocol) when both are off or uvicorn lacks what the guard hooks."""
    if not settings.header_timeout and not settings.body_timeout:
        return "auto"
    missing = missing_internals()
    if missing:
        _turn_off(f"the installed uvicorn lacks {', '.join(missing)}")
        return "auto"
    return functools.partial(
        SlowClientGuard,
        header_timeout=settings.header_timeout,
        body_timeout=settings.body_timeout,
    )


def _turn_off(why: str) -> None:
    global _off
    if not _off:
        _off = True
        log.warning(
            "slow-client deadlines are off: %s; a client may take as long as it likes to "
            "send a request. Pin the uvicorn of requirements.txt to get them back.",
            why,
        )


_Base: Any = HttpToolsProtocol if HttpToolsProtocol is not None else object


class SlowClientGuard(_Base):  # type: ignore[misc]
    """uvicorn's httptools protocol with a deadline on each request's headers and body."""

    def __init__(
        self,
        config: Any,
        server_state: Any,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        header_timeout: float,
        body_timeout: float,
    ) -> None:
        super().__init__(config=config, server_state=server_state, app_state=app_state,
                         _loop=_loop)  # fmt: skip
        self._timeouts = {SLOW_HEADERS: header_timeout, SLOW_BODY: body_timeout}
        self._deadline: asyncio.TimerHandle | None = None

    # --- the hooks: each phase arms its deadline, the next phase disarms it -------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._arm(SLOW_HEADERS)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._deadline is None:  # a kept-alive connection's next request
            self._arm(SLOW_HEADERS)

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()
        self._arm(SLOW_BODY)  # disarmed at once when there is no body

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def handle_websocket_upgrade(self) -> None:
        self._disarm()  # the WebSocket protocol takes the connection over
        super().handle_websocket_upgrade()

    # --- deadlines ---------------------------------------------------------------------
    def _arm(self, phase: str) -> None:
        timeout = self._timeouts[phase]
        if timeout and not _off:
            self._deadline = self.loop.call_later(timeout, self._expired, phase)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self, phase: str) -> None:
        self._deadline = None
        try:
            transport, cycle = self.transport, self.cycle
            if transport.is_closing():
                return
            CONNECTIONS_REFUSED.labels(phase).inc()
            log.debug("closing a connection: %s", phase.replace("_", " "))
            # 408 only where no response is on its way (a pipelined request arrives slowly
            # while the previous answer streams: that answer is cut, not corrupted).
            if phase == SLOW_HEADERS and (cycle is None or cycle.response_complete):
                transport.write(REQUEST_TIMEOUT)
            transport.close()
        except AttributeError as exc:
            _turn_off(f"a connection lacks {exc.name!r}")
