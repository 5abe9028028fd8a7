"""Generated WebSocket, Engine.IO and Socket.IO frames, and the bugs they found.

``test_generated_frames`` runs ``bench.robustness.frames`` at CI size (seeded): a real
``python -m fastapi_app`` process, every endpoint, a well-behaved client after each
batch, the server log scanned, RSS bounded. The rest replays what it found, raw bytes
on real sockets against one in-process server, each test also failing on any ERROR the
server logs:

- a text frame that is not UTF-8 followed, in the same read, by the client's close
  frame: uvicorn raised InvalidState in ``data_received`` ("Fatal error on transport",
  no close code) - ``fastapi_app.sockets.ws_protocol``;
- an answer to a frame whose connection uvicorn had just closed for a protocol error:
  a bare RuntimeError, "Exception in ASGI application" - ``fastapi_app.guards.peer_closed``;
- a first frame nested past the recursion limit on a server with auth on: a dropped
  socket instead of 1008 - ``fastapi_app.auth.security.auth_frame_token``;
- Engine.IO / Socket.IO packets the libraries cannot act on (tracebacks at ERROR, a
  500, a POST hanging until the next poll, a websocket dropped without a close frame,
  an upgrade waiting forever) and reserved events a client emitted (which silenced
  every legacy broadcast) - ``fastapi_app.guards.sio_guard``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable, Iterator

import httpx
import pytest
import socketio

from bench.robustness import frames
from bench.robustness.frame_server import CLIENT_CAUSED
from bench.robustness.frame_socketio import binary_event
from bench.robustness.frame_wire import OP_BINARY, OP_TEXT, Frame, RawSocket, close_frame, connect
from fastapi_app.guards import sio_guard
from tests.servers import ThreadServer

pytestmark = pytest.mark.anyio

CI_SCALE = 200
POLLING = "/socket.io/?EIO=4&transport=polling"
WEBSOCKET = "/socket.io/?EIO=4&transport=websocket"
WAIT = 10.0


async def test_generated_frames() -> None:
    section = await frames.run(scale=CI_SCALE, seed=6455, parallel=8)
    assert section.passed, "\n".join(section.failures)
    for endpoint in frames.ENDPOINTS:
        figures = section.figures[endpoint]
        assert figures["frames"] >= CI_SCALE, endpoint
        assert figures["checks_passed"] == figures["checks"] >= 2, endpoint


# --- regressions ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[ThreadServer]:
    with ThreadServer(tts_providers=["sample"], rate_limit_speech=0) as running:
        yield running


Errors = Callable[[], list[str]]


@pytest.fixture
def errors(caplog: pytest.LogCaptureFixture) -> Errors:
    """ERROR records the server has logged so far in this test (python-engineio's
    once-per-kind line for a bad request excepted, as in the bench's log scan)."""
    caplog.set_level(logging.ERROR)
    return lambda: [
        f"{r.name}: {r.getMessage()}"
        for r in caplog.records
        if r.levelno >= logging.ERROR and not r.getMessage().endswith(CLIENT_CAUSED)
    ]


async def _closed(sock: RawSocket) -> int | None:
    await asyncio.wait_for(sock.closed.wait(), WAIT)
    return sock.close_code


async def _write_at_once(sock: RawSocket, *frames_: Frame) -> None:
    sock.writer.write(b"".join(frame.encode() for frame in frames_))  # one read, server side
    await sock.drain()


@pytest.mark.parametrize("path", ["/ws", "/ws/tts", WEBSOCKET])
async def test_not_utf8_then_close_in_one_read(server: ThreadServer, errors: Errors,
                                               path: str) -> None:  # fmt: skip
    sock = await connect(server.port, path)
    await _write_at_once(sock, Frame(OP_TEXT, b'{"type":"\xff"}'), close_frame(1000))
    assert await _closed(sock) == 1000  # the client's close stands: no 1006, no abort
    await sock.aclose()
    assert errors() == []


@pytest.mark.parametrize("target", ["/ws/tts", "upgrade"])
async def test_answer_after_protocol_close(
    server: ThreadServer, errors: Errors, upgrade_path: str, target: str
) -> None:
    # The server reads both frames at once: it closes 1007 for the second while the
    # app is still answering the first (a pong; an upgrade's 3probe).
    if target == "upgrade":
        path, first = upgrade_path, b"2probe"
    else:
        path, first = target, b'{"ping":true}'
    sock = await connect(server.port, path)
    await _write_at_once(sock, Frame(OP_TEXT, first), Frame(OP_TEXT, b"\xff"))
    assert await _closed(sock) == 1007
    await asyncio.sleep(0.2)  # the answer is attempted after the close
    await sock.aclose()
    assert errors() == []


async def test_deep_first_frame_with_auth_on_is_1008(errors: Errors) -> None:
    # With auth on, a browser's first frame carries the token; one nested past the JSON
    # decoder's recursion limit raised RecursionError (no ValueError): a dropped socket.
    async with ThreadServer(jwt_secret="x" * 32) as secured:
        sock = await connect(secured.port, "/ws")
        sock.send(Frame(OP_TEXT, b"[" * 5000))
        assert await _closed(sock) == 1008
    assert errors() == []


BAD_PACKETS = [
    "", "x", "7", "b!!!", "4" + "[" * 5000, "4x", "44", "42{}", "42[1]", "42[]",
    '42["connect"]', '42["disconnect"]', "4" + "2" + "9" * 150 + '["a"]',
    '451-["a",{"_placeholder":true,"num":5}]', '45999-["a"]', "4" + "42[" * 3000,
]  # fmt: skip


@pytest.mark.parametrize("packet", BAD_PACKETS)
async def test_bad_packet_on_websocket_closes_1002(server: ThreadServer, errors: Errors,
                                                   packet: str) -> None:  # fmt: skip
    sock = await _socketio(server)
    sock.send(Frame(OP_TEXT, packet.encode()))
    assert await _closed(sock) == 1002
    assert errors() == []


async def test_binary_without_event_closes_1002(server: ThreadServer, errors: Errors) -> None:
    sock = await _socketio(server)
    sock.send(Frame(OP_BINARY, b"\x00\x01"))
    assert await _closed(sock) == 1002
    assert errors() == []


async def test_valid_binary_event_keeps_the_session(server: ThreadServer) -> None:
    sock = await _socketio(server)
    sock.send(Frame(OP_TEXT, binary_event().encode()))
    sock.send(Frame(OP_BINARY, b"\x00\xff"))
    sock.send(Frame(OP_TEXT, b"40/nowhere,"))
    assert await _text_starting(sock, "44/nowhere,")
    await sock.aclose()


async def test_reserved_events_do_not_silence_broadcasts(server: ThreadServer) -> None:
    page = socketio.AsyncClient(reconnection=False)
    ticks = asyncio.Event()
    page.on("time_update", lambda data: ticks.set())
    await page.connect(server.url, transports=["websocket"], wait_timeout=WAIT)
    try:
        for _ in range(3):  # before the guard, each one counted as a page leaving
            sock = await _socketio(server)
            sock.send(Frame(OP_TEXT, b'42["disconnect","transport close"]'))
            assert await _closed(sock) == 1002
        assert server.runtime.legacy.connected >= 1  # the page (refused sockets: soon gone)
        ticks.clear()
        await asyncio.wait_for(ticks.wait(), WAIT)  # broadcasts still go out
    finally:
        await page.disconnect()


async def test_socketio_websocket_keeps_direct_frames(server: ThreadServer) -> None:
    # Socket.IO's websocket send is left unwrapped (peer_closed wraps the others), so
    # broadcasts still take fastapi_app.sockets.direct_frames' direct path.
    page = socketio.AsyncClient(reconnection=False)
    await page.connect(server.url, transports=["websocket"], wait_timeout=WAIT)
    try:
        assert page.eio.sid in server.runtime.legacy.sio.manager.direct
    finally:
        await page.disconnect()


@pytest.mark.parametrize(
    "body", [b"2", b"6", b"x", b"\xff", b"d=4", b"b!!!", b"\x1e".join([b"3"] * 17)]
)
async def test_bad_polling_payload_is_400_at_once(server: ThreadServer, errors: Errors,
                                                  body: bytes) -> None:  # fmt: skip
    async with httpx.AsyncClient(base_url=server.url, timeout=WAIT) as http:
        session = await _polling_session(http)
        posted = await http.post(session, content=body)  # no poll pending: used to hang
        assert posted.status_code == 400
        assert (await http.post(session, content=b"40")).status_code == 400  # gone
    assert errors() == []


async def test_post_after_client_close_is_400(server: ThreadServer, errors: Errors) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=WAIT) as http:
        session = await _polling_session(http)
        assert (await http.post(session, content=b"1")).status_code == 200
        assert (await http.post(session, content=b"40")).status_code == 400  # was 500
    assert errors() == []


async def test_websocket_asking_for_polling_is_refused(server: ThreadServer) -> None:
    with pytest.raises(ConnectionError, match="403"):
        await connect(server.port, POLLING)  # was accepted, then dropped without a code


UPGRADES = [(["5"], 1002), (["2probe", "40"], 1002), ([], 1002), (["2probe", "5", "1"], 1000)]


@pytest.mark.parametrize(("probes", "code"), UPGRADES)
async def test_upgrade_ends_with_a_close_code(
    server: ThreadServer,
    upgrade_path: str,
    monkeypatch: pytest.MonkeyPatch,
    probes: list[str],
    code: int,
) -> None:
    monkeypatch.setattr(sio_guard, "UPGRADE_TIMEOUT", 0.5)  # a probe that never comes
    sock = await connect(server.port, upgrade_path)
    for probe in probes:
        sock.send(Frame(OP_TEXT, probe.encode()))
    assert await _closed(sock) == code


async def _socketio(server: ThreadServer) -> RawSocket:
    """A raw Engine.IO websocket, connected to Socket.IO's default namespace."""
    sock = await connect(server.port, WEBSOCKET)
    assert await _text_starting(sock, "0{")
    sock.send(Frame(OP_TEXT, b"40"))
    assert await _text_starting(sock, "40")
    return sock


async def _text_starting(sock: RawSocket, prefix: str) -> bool:
    while (message := await sock.next_message(WAIT)) is not None:
        if message[0] == "text" and str(message[1]).startswith(prefix):
            return True
    return False


@pytest.fixture
async def upgrade_path(server: ThreadServer) -> AsyncIterator[str]:
    """Where a polling session (opened here, closed after the test: a session nobody
    polls would hold the server's shutdown) upgrades to a websocket."""
    async with httpx.AsyncClient(base_url=server.url, timeout=WAIT) as http:
        session = await _polling_session(http)
        yield session.replace(POLLING, WEBSOCKET)
        await http.post(session, content=b"1")


async def _polling_session(http: httpx.AsyncClient) -> str:
    opened = await http.get(POLLING)
    return f"{POLLING}&sid={json.loads(opened.text[1:])['sid']}"
