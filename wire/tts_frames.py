"""Frames of the streaming speech endpoints (seeds 000-002 and 004), framework-free.

Seed 004, ``WS /ws/tts`` (JSON text frames keyed by ``status``, audio as binary frames)
    client: ``{text, lang?}`` a request · ``{ping: true}`` keepalive · ``{cancel: true}``
    server: ``generating {message}`` · ``ready {message, size}`` · binary MP3 frames ·
            ``complete {message, size, frames}`` · ``error {error}`` · ``pong``
    ``size`` in ``ready`` is the bytes already encoded when streaming starts (the seed
    sent the whole file's size; streaming does not know it yet); ``complete`` carries
    the total.

Seeds 000-002, ``WS /ws/tts/{session_id}`` (JSON frames keyed by ``type``)
    server: ``progress {chunks_ready, total}`` ·
            ``chunk_ready {chunk, chunk_number, total, total_chunks, duration, audio?,
            binary?}`` (``audio`` is base64 unless the client asked for binary frames:
            then ``binary: true`` and the MP3 follows as the next binary frame) ·
            ``complete {total_chunks, total_duration}`` · ``stopped {chunks_ready}`` ·
            ``error {message[, chunk]}`` · ``pong``
    client: ``auth {token}`` · ``resume {last_chunk}`` · ``stop`` · ``ping``
"""

from __future__ import annotations

import base64
import json
from typing import Any

from wire import jsontext

MAX_BINARY_FRAME = 8 * 1024  # seed 004: audio goes out in frames of at most 8 KB
PREVIEW_CHARS = 50


def parse(raw: str) -> dict[str, Any]:
    """A client's JSON object; ValueError (with a sentence for the client) otherwise."""
    try:
        value = jsontext.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON: {exc.msg} at position {exc.pos}") from None
    if not isinstance(value, dict):
        raise ValueError("a frame must be a JSON object")
    return value


# --- seed 004 -----------------------------------------------------------------------------


def generating(text: str) -> dict[str, Any]:
    preview = text if len(text) <= PREVIEW_CHARS else text[:PREVIEW_CHARS] + "..."
    return {"status": "generating", "message": f"Generating speech for: {preview}"}


def ready(size: int) -> dict[str, Any]:
    return {"status": "ready", "message": "Audio ready, streaming...", "size": size}


def complete(size: int, frames: int) -> dict[str, Any]:
    return {
        "status": "complete",
        "message": "Audio streaming complete",
        "size": size,
        "frames": frames,
    }


def status_error(message: str, code: str = "error") -> dict[str, Any]:
    return {"status": "error", "error": message, "code": code}


def pong() -> dict[str, Any]:
    return {"status": "pong", "type": "pong"}


def split_frames(data: bytes, limit: int = MAX_BINARY_FRAME) -> list[bytes]:
    return [data[i : i + limit] for i in range(0, len(data), limit)]


# --- seeds 000-002 ----------------------------------------------------------------------------


def progress(chunks_ready: int, total: int) -> dict[str, Any]:
    return {"type": "progress", "chunks_ready": chunks_ready, "total": total}


def chunk_ready(
    chunk: int, total: int, duration: float, audio: bytes | None, *, binary: bool
) -> dict[str, Any]:
    frame: dict[str, Any] = {
        "type": "chunk_ready",
        "chunk": chunk,
        "chunk_number": chunk,  # seed 000's name for the same number
        "total": total,
        "total_chunks": total,
        "duration": round(duration, 3),
    }
    if binary:
        frame["binary"] = True
    elif audio is not None:
        frame["audio"] = base64.b64encode(audio).decode("ascii")
    return frame


def scene_complete(total_chunks: int, total_duration: float) -> dict[str, Any]:
    return {
        "type": "complete",
        "total_chunks": total_chunks,
        "total_duration": round(total_duration, 3),
    }


def stopped(chunks_ready: int) -> dict[str, Any]:
    return {"type": "stopped", "chunks_ready": chunks_ready}


def scene_error(message: str, chunk: int | None = None, code: str = "error") -> dict[str, Any]:
    frame: dict[str, Any] = {"type": "error", "message": message, "code": code}
    if chunk is not None:
        frame["chunk"] = chunk
    return frame


def session_not_found(session_id: str) -> dict[str, Any]:
    return scene_error(f"Session {session_id} not found", code="session_not_found")


def scene_pong() -> dict[str, Any]:
    return {"type": "pong"}
