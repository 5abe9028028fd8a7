"""Native WebSocket ``/ws`` frames: every frame is a JSON object ``{"type": ..., ...}``.

Server -> client
    connection_established {client_id, timestamp}     ``resumed`` {client_id, replayed,
    audio_update {audioURL}                            complete}   (answer to ``resume``)
    todo_update | run_update | done_update | dead_update {value}
    queued {id_hash}      ping {timestamp}      pong {timestamp}      error {code, message}

Client -> server
    query {text[, voice, speed]}   ping   pong   resume {client_id, last_seq}   auth {token}

Sequence numbers (full stage). Each server frame carries ``seq``. *Data* frames
(audio_update, queue events, queued) take the next number of their client and are kept
for replay; *control* frames (connection_established, resumed, ping, pong, error) repeat
the latest number and are never replayed. One error is data: ``error {code: "expired",
message, id_hash}`` tells the asker its question waited past ``GENIE_MAX_WAIT`` and was
not answered (it comes before the spoken apology, and a resume replays it). So a client
keeps ``last_seq = max(seq seen)`` and after a reconnect sends ``resume`` with it; the
server replays the data frames numbered above it, in order.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from queues.fifo import QUEUED  # the queues send it to the asker of a job
from wire import jsontext

CONNECTION_ESTABLISHED = "connection_established"
AUDIO_UPDATE = "audio_update"
RESUMED = "resumed"
PING = "ping"
PONG = "pong"
ERROR = "error"
QUEUE_EVENTS = ("todo_update", "run_update", "done_update", "dead_update")

CLIENT_TYPES = ("query", "ping", "pong", "resume", "auth")

_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def encode(payload: dict[str, Any]) -> str:
    """Compact JSON text of one frame (encode each broadcast once, send it to all)."""
    return _encoder.encode(payload)


def with_seq(body: str, seq: int) -> str:
    """``body`` (an encoded non-empty object) with ``"seq"`` spliced in first.

    Splicing keeps the broadcast hot path at one JSON encode per event, not per client.
    """
    return f'{{"seq":{seq},{body[1:]}'


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


# --- server -> client -------------------------------------------------------------------


def connection_established(client_id: str) -> dict[str, Any]:
    return {"type": CONNECTION_ESTABLISHED, "client_id": client_id, "timestamp": now_iso()}


def audio_update(audio_url: str) -> dict[str, Any]:
    return {"type": AUDIO_UPDATE, "audioURL": audio_url}


def queue_event(name: str, data: dict[str, Any]) -> dict[str, Any]:
    """A queue event (``todo_update`` {value}, ...) as a frame of the same name."""
    return {"type": name, **data}


def queued(id_hash: str) -> dict[str, Any]:
    return {"type": QUEUED, "id_hash": id_hash}


def resumed(client_id: str, replayed: int, complete: bool) -> dict[str, Any]:
    return {"type": RESUMED, "client_id": client_id, "replayed": replayed, "complete": complete}


def ping() -> dict[str, Any]:
    return {"type": PING, "timestamp": now_iso()}


def pong() -> dict[str, Any]:
    return {"type": PONG, "timestamp": now_iso()}


def error(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"type": ERROR, "code": code, "message": message, **extra}


# --- client -> server -------------------------------------------------------------------


class FrameError(ValueError):
    """A client frame we cannot act on; answered with an ``error`` frame, socket stays."""

    def __init__(self, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.code, self.message, self.extra = code, message, extra

    def frame(self) -> dict[str, Any]:
        return error(self.code, self.message, **self.extra)


@dataclass(frozen=True, slots=True)
class Query:
    text: str
    voice: str | None = None
    speed: float | None = None


@dataclass(frozen=True, slots=True)
class Ping:
    pass


@dataclass(frozen=True, slots=True)
class Pong:
    pass


@dataclass(frozen=True, slots=True)
class Resume:
    client_id: str
    last_seq: int


@dataclass(frozen=True, slots=True)
class Auth:
    token: str


ClientFrame = Query | Ping | Pong | Resume | Auth


def parse_client_frame(text: str) -> ClientFrame:
    """Decode one client text frame; raise FrameError saying what is wrong."""
    try:
        data = jsontext.loads(text)
    except ValueError as exc:
        raise FrameError("bad_json", f"frame is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise FrameError("bad_frame", 'a frame is a JSON object with a "type" string')
    kind = data["type"]
    if kind == "query":
        return _query(data)
    if kind == "ping":
        return Ping()
    if kind == "pong":
        return Pong()
    if kind == "resume":
        return _resume(data)
    if kind == "auth":
        return Auth(_field(data, "token", str))
    raise FrameError("unknown_type", f"unknown frame type {_shown(kind)}; valid: {CLIENT_TYPES}")


def _shown(value: str, limit: int = 60) -> str:
    """``value`` quoted for an error message, cut short: never echo a whole frame back."""
    quoted = repr(value)
    return quoted if len(quoted) <= limit else f"{quoted[: limit - 4]}...{quoted[0]}"


def _query(data: dict[str, Any]) -> Query:
    text = _field(data, "text", str)
    voice = data.get("voice")
    if voice is not None and not isinstance(voice, str):
        raise FrameError("bad_field", '"voice" must be a string')
    speed = data.get("speed")
    if speed is not None:
        if isinstance(speed, bool) or not isinstance(speed, int | float):
            raise FrameError("bad_field", '"speed" must be a number')
        if not 0.25 <= speed <= 4.0:
            raise FrameError("bad_field", '"speed" must be between 0.25 and 4')
    return Query(text, voice or None, float(speed) if speed is not None else None)


def _resume(data: dict[str, Any]) -> Resume:
    client_id = _field(data, "client_id", str)
    last_seq = data.get("last_seq", 0)
    if isinstance(last_seq, bool) or not isinstance(last_seq, int) or last_seq < 0:
        raise FrameError("bad_field", '"last_seq" must be a whole number >= 0')
    return Resume(client_id, last_seq)


def _field(data: dict[str, Any], name: str, kind: type) -> Any:
    value = data.get(name)
    if not isinstance(value, kind):
        raise FrameError("bad_field", f'"{name}" must be a {kind.__name__}')
    return value
