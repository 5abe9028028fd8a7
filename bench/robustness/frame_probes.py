"""Well-behaved clients: after every batch of bad frames, does the real protocol still work?

Each probe speaks its endpoint as the page or seed client does and checks what matters:
``/ws`` a question gets its answer and that answer's audio decodes; ``/ws/tts`` a
request streams MP3 that decodes; ``/ws/tts/{session}`` a new session on the demo scene
streams every chunk (decodable) and closes 1000; Socket.IO (python-socketio client, on
the transport named) connects and hears the queue counts and the audio of a ``/push``.
A probe returns None when all is well, else what went wrong.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Awaitable, Callable
from typing import Any

import engineio.payload
import httpx
import miniaudio
import socketio
import websockets

TIMEOUT = 30.0
MIN_SECONDS = 0.2  # any spoken sentence lasts longer than this
# A busy server batches more than python-engineio's client accepts per long-poll (16).
engineio.payload.Payload.max_decode_packets = 1000


def mp3_seconds(data: bytes) -> float:
    try:
        decoded = miniaudio.mp3_read_s16(data)
    except miniaudio.DecodeError:
        return 0.0
    return decoded.num_frames / decoded.sample_rate


def _short(audio: bytes, what: str) -> str | None:
    seconds = mp3_seconds(audio)
    return None if seconds >= MIN_SECONDS else f"{what}: {len(audio)} bytes, {seconds:.2f} s"


async def probe_ws(base: str) -> str | None:
    async with websockets.connect(_ws(base, "/ws"), max_size=None) as ws:
        hello = json.loads(await ws.recv())
        if hello.get("type") != "connection_established":
            return f"/ws greeted with {hello}"
        await ws.send(json.dumps({"type": "query", "text": "what is two plus two"}))
        while True:
            frame = json.loads(await ws.recv())
            if frame.get("type") == "error":
                return f"/ws question refused: {frame}"
            if frame.get("type") == "audio_update":
                break
    async with httpx.AsyncClient(base_url=base, timeout=TIMEOUT) as http:
        response = await http.get(frame["audioURL"])
    if response.status_code != 200:
        return f"/ws answer audio: HTTP {response.status_code}"
    return _short(response.content, "/ws answer audio")


async def probe_ws_tts(base: str) -> str | None:
    audio = bytearray()
    async with websockets.connect(_ws(base, "/ws/tts"), max_size=None) as ws:
        await ws.send(json.dumps({"text": "The robustness check is still speaking.", "lang": "en"}))
        while True:
            message = await ws.recv()
            if isinstance(message, bytes):
                audio += message
                continue
            status = json.loads(message).get("status")
            if status == "error":
                return f"/ws/tts refused the request: {message}"
            if status == "complete":
                break
    return _short(bytes(audio), "/ws/tts audio")


async def probe_scene(base: str) -> str | None:
    async with httpx.AsyncClient(base_url=base, timeout=TIMEOUT) as http:
        started = await http.post("/api/tts/generate-ws/1")
    if started.status_code != 200:
        return f"session start: HTTP {started.status_code} {started.text[:200]}"
    frames, code = await read_session(base, started.json()["session_id"])
    chunks = [f for f in frames if f.get("type") == "chunk_ready"]
    if code != 1000 or not any(f.get("type") == "complete" for f in frames):
        return f"session ended with {code} after {[f.get('type') for f in frames][-3:]}"
    for chunk in chunks:
        if problem := _short(base64.b64decode(chunk.get("audio", "")), "scene chunk"):
            return problem
    return None if len(chunks) == 4 else f"session sent {len(chunks)} of 4 chunks"


async def read_session(
    base: str, session_id: str, send: dict[str, Any] | None = None
) -> tuple[list[dict[str, Any]], int | None]:
    """Every JSON frame of a session socket until the server closes it, and its code."""
    frames: list[dict[str, Any]] = []
    async with websockets.connect(_ws(base, f"/ws/tts/{session_id}"), max_size=None) as ws:
        if send is not None:
            await ws.send(json.dumps(send))
        try:
            while True:
                message = await ws.recv()
                if isinstance(message, str):
                    frames.append(json.loads(message))
        except websockets.ConnectionClosed as closed:
            return frames, closed.rcvd.code if closed.rcvd else None


async def stop_session(base: str, session_id: str) -> str | None:
    """A valid ``stop`` ends the batch's session: ``stopped`` (or ``complete``), then 1000."""
    frames, code = await read_session(base, session_id, {"type": "stop"})
    ends = {f.get("type") for f in frames} & {"stopped", "complete"}
    return None if ends and code == 1000 else f"stop: {code} after {frames[-2:]}"


async def probe_socketio(base: str, transport: str) -> str | None:
    """Connect, ``/push`` a question, hear its counts and then its answer's audio (the
    page hears a "hmm... let me think" audio_update first, before any count)."""
    heard: list[str] = []
    answered = asyncio.Event()
    sio = socketio.AsyncClient(reconnection=False)

    def record(name: str) -> Callable[[Any], Awaitable[None]]:
        async def handler(data: Any) -> None:
            heard.append(name)
            if name == "audio_update" and "done_update" in heard:
                answered.set()

        return handler

    for name in ("todo_update", "done_update", "audio_update"):
        sio.on(name, record(name))
    await sio.connect(base, transports=[transport], wait_timeout=10)
    try:
        async with httpx.AsyncClient(base_url=base, timeout=TIMEOUT) as http:
            await http.get("/push?question=what time is it")
        await asyncio.wait_for(answered.wait(), TIMEOUT)
    except TimeoutError:
        return f"Socket.IO ({transport}) heard {heard}, no counts then audio"
    finally:
        await sio.disconnect()
    return None


def _ws(base: str, path: str) -> str:
    return base.replace("http://", "ws://", 1) + path


PROBES: dict[str, Callable[[str], Awaitable[str | None]]] = {
    "ws": probe_ws,
    "ws_tts": probe_ws_tts,
    "ws_tts_session": probe_scene,
    "socketio_ws": lambda base: probe_socketio(base, "websocket"),
    "socketio_polling": lambda base: probe_socketio(base, "polling"),
}


async def probe(endpoint: str, base: str) -> str | None:
    """Run one endpoint's probe with a deadline; any exception is a failed probe."""
    try:
        return await asyncio.wait_for(PROBES[endpoint](base), TIMEOUT * 2)
    except Exception as exc:  # the probe's whole point: report, do not crash the bench
        return f"{endpoint} probe: {type(exc).__name__}: {exc}"
