"""Play one generated script on a fresh connection and say how the server took it.

After its frames a connection that is still open gets a *marker*: a valid frame whose
answer proves the server read everything before it and is still serving this socket
(``/ws`` ping -> pong, ``/ws/tts`` ``{"ping": true}`` -> pong, Socket.IO ``40/marker,``
-> ``44/marker,``: a connect to a namespace that does not exist, refused without side
effects; over polling it is POSTed, then polled for). An :class:`Outcome` is then one
of: ``answered``, ``closed`` (the server's close code; polling: the 400 of a session
that is gone), ``refused`` (the handshake's HTTP status), ``dropped`` (TCP gone
without a close frame), ``hung`` (neither an answer nor a close within
``MARKER_WAIT``) or ``error`` (the client itself failed; ``frames.play_batch``).
A polling request's status 0 means no answer at all, -1 a long-poll we stopped waiting
for after ``POLL_WAIT`` (the server then drops the session, by design).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from bench.robustness.frame_scripts import SESSION, PollScript, Script
from bench.robustness.frame_wire import NO_CLOSE_FRAME, HandshakeRefused, RawSocket, connect, text

MARKER_WAIT = 15.0
POLL_WAIT = 0.5  # a long-poll with nothing to say may wait this long before we give up
POLLING = "/socket.io/?EIO=4&transport=polling"
BOGUS_SID = "AAAAAAAAAAAAAAAAAAAA"


@dataclass
class Outcome:
    frames: int = 0
    result: str = "answered"
    code: int | None = None
    fatal: str | None = None  # the protocol violation the script ended on, if any
    statuses: Counter[int] = field(default_factory=Counter)  # polling: per request
    connections: int = 1
    script: str = ""  # what was sent, in short (for failure messages)


def _json_has(key: str, value: str) -> Callable[[str], bool]:
    def check(message: str) -> bool:
        with contextlib.suppress(ValueError):
            data = json.loads(message)
            return isinstance(data, dict) and data.get(key) == value
        return False

    return check


MARKERS: dict[str, tuple[bytes, Callable[[str], bool]]] = {
    "ws": (b'{"type":"ping"}', _json_has("type", "pong")),
    "ws_tts": (b'{"ping":true}', _json_has("status", "pong")),
    "ws_tts_session": (b'{"type":"ping"}', _json_has("type", "pong")),
    "socketio_ws": (b"40/marker,", lambda message: message.startswith("44/marker,")),
}


async def play_ws(port: int, endpoint: str, script: Script, session_id: str) -> Outcome:
    outcome = Outcome(fatal=script.fatal, script=describe(script))
    path = script.path.replace(SESSION, session_id)
    if not script.prelude.startswith("upgrade"):
        await _play_socket(port, path, endpoint, script, outcome)
        return outcome
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=MARKER_WAIT) as http:
        opened = await http.get(POLLING)  # the session the websocket upgrades
        sid = _sid_of(opened.text) if opened.status_code == 200 else None
        outcome.connections += 1
        if sid is None:
            outcome.result, outcome.code = "refused", opened.status_code
            return outcome
        await _play_socket(port, f"{path}&sid={sid}", endpoint, script, outcome)
        await http.post(f"{POLLING}&sid={sid}", content=b"1")  # a failed upgrade leaves it
    return outcome


async def _play_socket(
    port: int, path: str, endpoint: str, script: Script, outcome: Outcome
) -> None:
    try:
        sock = await connect(port, path)
    except HandshakeRefused as refused:
        outcome.result, outcome.code = "refused", refused.status
        return
    try:
        await _prelude(sock, script.prelude)
        outcome.frames = await _send(sock, script)
        await _finish(sock, MARKERS[endpoint], outcome)
    finally:
        await sock.aclose()


def describe(script: Script) -> str:
    kinds = " ".join(step.kind for step in script.steps)
    first = script.steps[0].frames[0].payload[:80] if script.steps else b""
    return f"{script.prelude} {script.path[:80]} [{kinds[:200]}] first={first!r}"


async def _send(sock: RawSocket, script: Script) -> int:
    sent = 0
    for step in script.steps:
        for frame in step.frames:
            if not sock.send(frame):
                return sent
            sent += 1
        await sock.drain()
    return sent


async def _prelude(sock: RawSocket, prelude: str) -> None:
    """Socket.IO: the open packet, then connect first or run the upgrade's probes."""
    if prelude == "none":
        return
    if prelude.startswith("upgrade:"):
        for probe in filter(None, prelude.removeprefix("upgrade:").split(",")):
            sock.send(text(probe))
        return
    opened = await sock.next_message(MARKER_WAIT)  # "0{...}" (none on a refused query)
    if prelude == "connect" and opened is not None:
        sock.send(text("40"))
        await sock.next_message(MARKER_WAIT)


async def _finish(
    sock: RawSocket, marker: tuple[bytes, Callable[[str], bool]], outcome: Outcome
) -> None:
    payload, answers = marker
    sock.send(text(payload))
    deadline = asyncio.get_running_loop().time() + MARKER_WAIT
    while (left := deadline - asyncio.get_running_loop().time()) > 0:
        message = await sock.next_message(left)
        if message is None:
            break
        kind, data = message
        if kind == "text" and answers(str(data)):
            outcome.result = "answered"
            return
    if sock.closed.is_set():
        code = sock.close_code
        outcome.result = "dropped" if code == NO_CLOSE_FRAME else "closed"
        outcome.code = code
    else:
        outcome.result = "hung"


def _sid_of(body: str) -> str | None:
    if not body.startswith("0{"):
        return None
    with contextlib.suppress(ValueError):
        return str(json.loads(body[1:].split("\x1e", 1)[0])["sid"])
    return None


# --- Engine.IO long-polling -------------------------------------------------------------


async def play_polling(port: int, script: PollScript) -> Outcome:
    outcome = Outcome(
        fatal=script.fatal, script=f"polling {script.handshake} {script.actions[-1]!r:.200}"
    )
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=MARKER_WAIT) as http:
        opened = await http.get(f"/socket.io/?{script.handshake}")
        sid = _sid_of(opened.text) if opened.status_code == 200 else None
        if sid is None:
            outcome.result, outcome.code = "refused", opened.status_code
            return outcome
        sessions = [f"{POLLING}&sid={sid}"]
        if script.connect:
            await _request(http, outcome, "POST", sessions[0], b"40")
            await _request(http, outcome, "GET", sessions[0], b"")
        for method, which, body in script.actions:
            target = {"own": sessions[0], "none": POLLING, "bogus": f"{POLLING}&sid={BOGUS_SID}"}
            answer = await _request(http, outcome, method, target[which], body)
            outcome.frames += 1
            if which == "none" and method == "GET" and answer is not None:  # a new session
                sessions += [f"{POLLING}&sid={new}" for new in [_sid_of(answer.text)] if new]
        await _poll_marker(http, sessions[0], outcome)
        for session in sessions:  # leave nothing open (a session nobody polls holds 45 s)
            await http.post(session, content=b"1")
    return outcome


async def _request(
    http: httpx.AsyncClient, outcome: Outcome, method: str, url: str, body: bytes
) -> httpx.Response | None:
    try:
        if method == "GET":
            response = await http.get(url, timeout=POLL_WAIT)
        else:
            response = await http.post(url, content=body, headers={"Content-Type": "text/plain"})
    except httpx.ReadTimeout:
        outcome.statuses[0 if method == "POST" else -1] += 1  # -1: a long-poll left waiting
        return None
    except httpx.TransportError as exc:  # 0: no answer (judged a failure, with the reason)
        outcome.statuses[0] += 1
        outcome.script += f" | {method} {type(exc).__name__}"
        return None
    outcome.statuses[response.status_code] += 1
    return response


async def _poll_marker(http: httpx.AsyncClient, session: str, outcome: Outcome) -> None:
    posted = await _request(http, outcome, "POST", session, b"40/marker,")
    if posted is None:
        outcome.result = "hung"
        return
    if posted.status_code != 200:
        outcome.result, outcome.code = "closed", posted.status_code
        return
    for _ in range(3):  # the answer may follow a ping or a clock tick already queued
        got = await _request(http, outcome, "GET", session, b"")
        if got is not None and got.status_code != 200:
            outcome.result, outcome.code = "closed", got.status_code
            return
        if got is not None and "44/marker," in got.text:
            outcome.result = "answered"
            return
    outcome.result = "hung"
