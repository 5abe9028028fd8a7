"""End Engine.IO long-polls whose HTTP client has gone.

python-engineio never reads from an HTTP request again once it has its body, so a
long-poll GET whose client disconnected (a closed tab, a client that closed its socket
and sent its CLOSE packet over another request) waits out ``ping_interval +
ping_timeout`` (45 s by default) for packets nobody will read. Besides holding memory,
that task makes every graceful shutdown wait its full timeout. This middleware watches
such GETs for ``http.disconnect`` and cancels the poll when it comes (engineio handles
a cancelled poll as an empty one and closes the socket).
"""

from __future__ import annotations

import asyncio
import contextlib

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class LongPollGuard:
    def __init__(self, app: ASGIApp, socketio_path: str = "/socket.io/") -> None:
        self.app = app
        self.path = socketio_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self._is_poll(scope):
            await self.app(scope, receive, send)
            return
        got_request = asyncio.Event()

        async def app_receive() -> Message:
            message = await receive()
            got_request.set()
            return message

        poll = asyncio.ensure_future(self.app(scope, app_receive, send))
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

    def _is_poll(self, scope: Scope) -> bool:
        return (
            scope["type"] == "http"
            and scope.get("method") == "GET"
            and scope["path"].startswith(self.path)
            and b"sid=" in scope.get("query_string", b"")
        )


async def _cancel_on_disconnect(
    got_request: asyncio.Event, receive: Receive, poll: asyncio.Future[None]
) -> None:
    # Only read after the app has its request: two readers must not share one message.
    await got_request.wait()
    with contextlib.suppress(Exception):
        message = await receive()
        if message["type"] == "http.disconnect" and not poll.done():
            poll.cancel()
