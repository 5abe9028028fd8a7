"""``python -m flask_app`` as a process: static files, long URLs, Nagle, CLI, shutdown."""

from __future__ import annotations

import signal
import socket
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import anyio
import httpx
import pytest
from werkzeug.serving import make_server

from flask_app.__main__ import DEFAULT_PORT, parse_args
from flask_app.server import NoDelayRequestHandler, nodelay_spawn
from tests.flask_app.launch import ServerProcess, flask_server, raw_get
from tests.flask_app.sio import EventLog

pytestmark = pytest.mark.anyio

MODES = ["threading", "gevent"]


@pytest.fixture(scope="module", params=MODES)
def server(request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    with flask_server(request.param) as running:
        yield running


@pytest.mark.parametrize(
    "path",
    [
        "/static/../config.py",
        "/static/%2e%2e/config.py",
        "/static/..%2fconfig.py",
        "/static/%2e%2e%2fconfig.py",
        "/static/..%2f..%2fetc%2fpasswd",
        "/static//etc/passwd",
        "/static/%2Fetc%2Fpasswd",
        "/static/nothing-here.mp3",
    ],
)
async def test_static_files_cannot_escape_static(server: ServerProcess, path: str) -> None:
    status, raw = await raw_get(server.port, path)
    assert status == 404, raw[:300]
    assert b"Settings" not in raw and b"root:" not in raw
    assert b'"code":"not_found"' in raw


async def test_static_file_is_served(server: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        sample = await http.get("/static/sample-audio.mp3")
    assert sample.status_code == 200 and sample.headers["content-type"] == "audio/mpeg"


async def test_a_long_url_reaches_the_app(server: ServerProcess) -> None:
    """5,001 three-byte characters percent-encoded (~45 KB of URL): the app's 413, not
    the HTTP server's 414 (gevent's pywsgi stops at 8 KB unless raised)."""
    async with httpx.AsyncClient(base_url=server.url, timeout=20) as http:
        text = quote("€" * 5001, safe="")
        for path in (f"/push?question={text}", f"/get_tts_audio?tts_text={text}"):
            response = await http.get(path)
            assert response.status_code == 413, response.text[:200]
        ok = await http.get(f"/get_tts_audio?tts_text={quote('five euros. ' * 400)}")
        assert ok.status_code == 200 and ok.headers["content-type"] == "audio/mpeg"


async def test_unknown_routes_answer_json(server: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        missing = await http.get("/no/such/page")
        assert missing.status_code == 404
        assert missing.json()["code"] == "not_found"
        wrong = await http.post("/push")
        assert wrong.status_code == 405 and wrong.json()["code"] == "method_not_allowed"


# --- Nagle ----------------------------------------------------------------------------


def _nodelay_of(sock: Any) -> int:
    return int(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))


def test_werkzeug_sockets_have_nagle_off() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [str(_nodelay_of(environ["werkzeug.socket"])).encode()]

    for handler, expected in ((NoDelayRequestHandler, "1"), (None, "0")):
        server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            answer = httpx.get(f"http://127.0.0.1:{server.server_port}/")
        finally:
            server.shutdown()
            thread.join(10)
        assert answer.text == expected


def test_gevent_sockets_have_nagle_off() -> None:
    gevent = pytest.importorskip("gevent")
    from gevent import pywsgi
    from geventwebsocket.handler import WebSocketHandler

    options: list[int] = []  # TCP_NODELAY of each accepted socket, read before it closes

    def spawn(fn: Any, *args: Any) -> Any:
        greenlet = nodelay_spawn(fn, *args)
        flat = [a for arg in args for a in (arg if isinstance(arg, tuple) else (arg,))]
        options.extend(_nodelay_of(a) for a in flat if hasattr(a, "getsockopt"))
        return greenlet

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    server = pywsgi.WSGIServer(
        ("127.0.0.1", 0), app, handler_class=WebSocketHandler, spawn=spawn, log=None
    )
    server.start()
    try:
        client = gevent.socket.create_connection(("127.0.0.1", server.server_port))
        client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        reply = b""
        while chunk := client.recv(4096):
            reply += chunk
        client.close()
    finally:
        server.stop()
    assert reply.endswith(b"ok")
    assert options == [1]


# --- CLI and shutdown -----------------------------------------------------------------


def test_cli_defaults() -> None:
    args, rest = parse_args(["--clock-interval", "0.5"])
    assert (args.port, args.async_mode, args.host, args.message_queue) == (
        DEFAULT_PORT,
        "threading",
        None,
        None,
    )
    assert DEFAULT_PORT == 7999 and rest == ["--clock-interval", "0.5"]
    with pytest.raises(SystemExit):
        parse_args(["--async-mode", "eventlet"])


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
@pytest.mark.parametrize("async_mode", MODES)
async def test_graceful_stop(async_mode: str, signum: int) -> None:
    with flask_server(async_mode) as srv:
        page = await EventLog().connect(srv.url, "websocket")
        reasons: list[str] = []
        gone = anyio.Event()

        @page.sio.on("disconnect")
        async def on_disconnect(reason: str = "") -> None:
            reasons.append(reason)
            gone.set()

        code = await anyio.to_thread.run_sync(srv.signal, signum)
        assert code == 0, srv.tail()
        assert "Traceback" not in srv.log_text(), srv.tail()
        with anyio.fail_after(10):
            await gone.wait()
        # Told goodbye by the server before it exited, not cut off.
        assert reasons == [page.sio.reason.SERVER_DISCONNECT]
