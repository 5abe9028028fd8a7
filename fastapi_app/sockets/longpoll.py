"""End Engine.IO long-polls whose HTTP client has gone.

python-engineio never reads from an HTTP request again once it has its body, so a
long-poll GET whose client disconnected (a closed tab, a client that closed its socket
and sent its CLOSE packet over another request) waits out ``ping_interval +
ping_timeout`` (45 s by default) for packets nobody will read. Besides holding memory,
that task makes every graceful shutdown wait its full timeout. :func:`serve_long_poll`
watches such a GET for ``http.disconnect`` and cancels the poll when it comes
(engineio handles a cancelled poll as an empty one and closes the socket).
"""

from __future__ import annotations

import asyncio
import contextlib

from starlette.types import ASGIApp, Message, Receive, Scope, Send


def is_long_poll(scope: Scope) -> bool:
    """A polling GET of an open Engine.IO session (the caller checked the path)."""
    return scope.get("method") == "GET" and b"sid=" in scope.get("query_string", b"")


async def serve_long_poll(app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
    got_request = asyncio.Event()

    async def app_receive() -> Message:
        message = await receive()
        got_request.set()
        return message

    poll = asyncio.ensure_future(app(scope, app_receive, send))
    watcher = asyncio.ensure_future(_cancel_on_disconnect(got_request, receive, poll))
    try:
        await poll
    except asyncio.CancelledError:
        me = asyncio.current_task()
        if me is not None and me.cancelling():
            poll.cancel()
            raise
        # Otherwise the watcher cancelled it: the client is gone, nobody to answer.
    finally:
        watcher.cancel()


async def _cancel_on_disconnect(
    got_request: asyncio.Event, receive: Receive, poll: asyncio.Future[None]
) -> None:
    # Only read after the app has its request: two readers must not share one message.
    await got_request.wait()
    with contextlib.suppress(Exception):
        message = await receive()
        if message["type"] == "http.disconnect" and not poll.done():
            poll.cancel()
