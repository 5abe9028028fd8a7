"""``/ws`` frames written straight to uvicorn's transport arrive exactly as through ASGI.

The direct path frames text itself (``fastapi_app.sockets.direct_frames``), so these tests send
through the real app to a real ``websockets`` client, which validates every frame, at
each header size (7-bit, 16-bit and 64-bit lengths, counted in UTF-8 bytes), and check
the path is taken when it should be and left when it must be.
"""

from __future__ import annotations

import json
import logging
import types
from collections.abc import Iterator

import anyio
import pytest
import websockets
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from fastapi_app.sockets import direct_frames
from fastapi_app.sockets.direct_frames import frame_header
from tests.servers import ThreadServer

pytestmark = pytest.mark.anyio

# Text lengths whose UTF-8 size sits on each side of the 126 and 65,536 byte limits once
# the frame's JSON wrapping is added; "é" is two bytes, so characters != bytes.
SIZES = [0, 1, 50, 100, 120, 32_700, 32_800, 40_000]


def test_header_sizes_follow_rfc_6455() -> None:
    assert frame_header(0) == b"\x81\x00"
    assert frame_header(125) == b"\x81\x7d"
    assert frame_header(126) == b"\x81\x7e\x00\x7e"
    assert frame_header(65_535) == b"\x81\x7e\xff\xff"
    assert frame_header(65_536) == b"\x81\x7f" + (65_536).to_bytes(8, "big")


async def _exchange(server: ThreadServer, **connect: object) -> tuple[bool, list[dict]]:
    """Send frames of every size to one client; return (direct path used, frames)."""
    rt = server.runtime
    async with websockets.connect(server.ws_url + "/ws", max_size=None, **connect) as ws:
        hello = json.loads(await ws.recv())
        client = rt.connections.clients[hello["client_id"]]

        def send_all() -> None:
            for n in SIZES:
                rt.connections.send(client.id, {"type": "probe", "text": "é" * n, "n": n})

        await anyio.to_thread.run_sync(server.call, send_all)
        got = [json.loads(await ws.recv()) for _ in SIZES]
        return client.outbox.direct, got


def _check(got: list[dict]) -> None:
    assert [f["n"] for f in got] == SIZES
    assert all(f["text"] == "é" * f["n"] for f in got)
    assert [f["seq"] for f in got] == list(range(1, len(SIZES) + 1))


async def test_frames_of_every_header_size_arrive_intact_on_the_direct_path() -> None:
    async with ThreadServer(stage="full") as server:
        direct, got = await _exchange(server)
    assert direct, "uvicorn's websockets-sansio socket should take the direct path"
    _check(got)


async def test_a_compressed_socket_takes_the_asgi_path_with_the_same_frames() -> None:
    # permessage-deflate changes the framing: the direct path must step aside.
    async with ThreadServer(stage="full", ws_per_message_deflate=True) as server:
        direct, got = await _exchange(server, compression="deflate")
    assert not direct
    _check(got)


# --- the switch and the self-check: slower, never broken ------------------------------


@pytest.fixture
def fresh_check(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The self-check runs anew and whatever a test turns off is back on after it."""
    monkeypatch.setattr(direct_frames, "_off", False)
    direct_frames.direct_frames_on.cache_clear()
    yield
    direct_frames.direct_frames_on.cache_clear()


async def test_the_switch_turns_the_direct_path_off(fresh_check: None) -> None:
    async with ThreadServer(stage="full", direct_frames=False) as server:
        direct, got = await _exchange(server)
        assert not server.runtime.legacy.sio.manager.direct_on
    assert not direct
    _check(got)


async def test_a_library_without_what_it_reads_turns_it_off_with_one_warning(
    fresh_check: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # As if uvicorn renamed an attribute the direct path reads.
    reads = dict(direct_frames.READS)
    reads[WebSocketsSansIOProtocol] = (*reads[WebSocketsSansIOProtocol], "renamed_writable")
    monkeypatch.setattr(direct_frames, "READS", reads)
    with caplog.at_level(logging.WARNING, logger="fastapi_app.sockets.direct_frames"):
        async with ThreadServer(stage="full") as server:
            direct, got = await _exchange(server)
            assert not server.runtime.legacy.sio.manager.direct_on
    assert not direct
    _check(got)
    warnings = [
        r.getMessage() for r in caplog.records if r.name == "fastapi_app.sockets.direct_frames"
    ]
    assert len(warnings) == 1 and "renamed_writable" in warnings[0]


async def test_a_socket_missing_an_attribute_at_run_time_falls_back_for_good(
    fresh_check: None, caplog: pytest.LogCaptureFixture
) -> None:
    async with ThreadServer(stage="full") as server:
        rt = server.runtime
        async with websockets.connect(server.ws_url + "/ws") as ws:
            hello = json.loads(await ws.recv())
            outbox = rt.connections.clients[hello["client_id"]].outbox
            writer = outbox._direct  # the socket's DirectFrames
            writer._proto = types.SimpleNamespace()  # a protocol that lacks what is read
            with caplog.at_level(logging.WARNING, logger="fastapi_app.sockets.direct_frames"):
                for n in (1, 2, 3):
                    await anyio.to_thread.run_sync(
                        server.call, rt.connections.send, hello["client_id"], {"type": "t", "n": n}
                    )
                    assert json.loads(await ws.recv())["n"] == n  # through ASGI, in order
        direct, got = await _exchange(server)  # a new socket gets no direct writer
    assert not direct
    _check(got)
    warnings = [
        r.getMessage() for r in caplog.records if r.name == "fastapi_app.sockets.direct_frames"
    ]
    assert len(warnings) == 1 and "close_sent" in warnings[0]
