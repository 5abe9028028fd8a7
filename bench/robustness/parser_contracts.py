"""What each wire parser promises, checked on one input (the fuzz targets call these).

A parser either gives a well-formed value or raises its documented error with a short
message that can be sent back; any other exception, or a broken promise
(:class:`ContractError`), is a finding. The checks take the parser as an argument, so a
test can hand them a broken one and see the harness catch it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any
from urllib.parse import quote_plus

# An error message longer than this echoes the client's input back at it.
MAX_ERROR_CHARS = 300
WS_ERROR_CODES = frozenset({"bad_json", "bad_frame", "unknown_type", "bad_field"})
# A browser percent-encodes these in a URL's query (WHATWG "special-query percent-encode
# set"), besides C0 controls and everything above '~'.
_QUERY_ENCODED = frozenset(" \"#<>'")
_PERCENT_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")


class ContractError(AssertionError):
    """A parser broke its promise (a value it should not give, a loss, a long error)."""


def require(condition: bool, message: str) -> None:
    if not condition:
        raise ContractError(message)


def as_text(data: bytes) -> str:
    """Fuzz bytes as the text a WebSocket text frame carries (always valid UTF-8)."""
    return data.decode("utf-8", "replace")


def strings_of(value: Any) -> Iterator[str]:
    """Every string in a decoded JSON value, keys included; iterative (any depth)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def require_sendable(value: Any, what: str) -> None:
    """Strings the server may send on or store must encode as UTF-8 (no lone surrogate)."""
    for text in strings_of(value):
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ContractError(f"{what} holds {text[exc.start]!r}, not UTF-8 text") from None


def require_short_error(message: str) -> None:
    require_sendable(message, "the error message")
    require(len(message) <= MAX_ERROR_CHARS, f"error message of {len(message)} characters")


# --- /ws (wire.frames) -------------------------------------------------------------------


def check_ws_frame(frames: ModuleType, parse: Callable[[str], Any], text: str) -> None:
    """A client frame or ``FrameError`` with a known code and a short, sendable message."""
    try:
        frame = parse(text)
    except frames.FrameError as exc:
        require(exc.code in WS_ERROR_CODES, f"unknown error code {exc.code!r}")
        require_short_error(exc.message)
        frames.encode(exc.frame()).encode("utf-8")
        return
    kinds = (frames.Query, frames.Ping, frames.Pong, frames.Resume, frames.Auth)
    require(isinstance(frame, kinds), f"parsed to {type(frame).__name__}, not a client frame")
    require_sendable([getattr(frame, name) for name in frame.__slots__], "the frame")
    if isinstance(frame, frames.Query):
        require(frame.voice is None or bool(frame.voice), "an empty voice is kept")
        speed = frame.speed
        require(speed is None or 0.25 <= speed <= 4.0, f"speed {speed!r} out of range")
    if isinstance(frame, frames.Resume):
        require(type(frame.last_seq) is int and frame.last_seq >= 0, "bad last_seq")
    # What a client builds from these fields parses back to the same frame.
    again = parse(frames.encode(_ws_payload(frame)))
    require(again == frame, f"{frame!r} re-encoded parses to {again!r}")


def _ws_payload(frame: Any) -> dict[str, Any]:
    fields = {name: getattr(frame, name) for name in frame.__slots__}
    kind = type(frame).__name__.lower()
    return {"type": kind, **{k: v for k, v in fields.items() if v is not None}}


# --- /ws/tts and /ws/tts/{session} (wire.tts_frames) -------------------------------------


def check_tts_frame(parse: Callable[[str], Any], text: str) -> None:
    """A JSON object whose strings can be echoed, or ValueError with a short message."""
    try:
        frame = parse(text)
    except ValueError as exc:
        require_short_error(str(exc))
        return
    require(isinstance(frame, dict), f"parsed to {type(frame).__name__}, not an object")
    require_sendable(frame, "the frame")


# --- /push (wire.legacy) -----------------------------------------------------------------


def browser_query(question: str) -> tuple[bytes, str]:
    """What a browser sends for the page's ``fetch("/push?question=" + question)``: the
    raw query string, and the question still in it (WHATWG URL parsing strips trailing
    controls and spaces, drops tabs and newlines, and cuts at '#')."""
    url = ("question=" + question).rstrip("".join(map(chr, range(0x21))))
    url = url.replace("\t", "").replace("\n", "").replace("\r", "")
    query = url.split("#", 1)[0]
    raw = "".join(_browser_escape(char) for char in query)
    return raw.encode("ascii"), query[len("question=") :]


def _browser_escape(char: str) -> str:
    if " " < char <= "~" and char not in _QUERY_ENCODED:
        return char
    return "".join(f"%{byte:02X}" for byte in char.encode("utf-8"))


def check_push_query(parse: Callable[[bytes], str | None], data: bytes) -> None:
    """Any raw query gives a sendable question or None; the page's and a form's
    questions come back as sent (the documented '+' reading aside)."""
    got = parse(data)
    require(got is None or isinstance(got, str), f"gave {type(got).__name__}")
    require_sendable(got, "the question")
    question = as_text(data)
    form = parse(f"lang=en&question={quote_plus(question)}".encode("ascii"))
    require(form == question, f"form-encoded {question!r} read as {form!r}")
    raw, sent = browser_query(question)
    if _PERCENT_ESCAPE.search(sent):
        return  # the page sends "%41" as is: no reader can tell it from an escape
    # Documented: '+' is a space when no %20 shows the page's own encoding.
    expected = sent.replace("+", " ") if " " not in sent else sent
    got = parse(raw)
    require(got == expected, f"the page's {sent!r} (sent as {raw!r}) read as {got!r}")


# --- sentence splitting (tts.sentences) --------------------------------------------------


def sentence_args(data: bytes) -> tuple[str, int, int | None]:
    """Fuzz bytes as (text, max_chars 1-256, first_max_chars None or -127..127)."""
    first = None if data[1] == 0 else data[1] - 128
    return as_text(data[2:]), data[0] + 1, first


def check_sentences(
    split: Callable[..., list[str]], text: str, max_chars: int, first: int | None
) -> None:
    """No empty or untidy segment, none over its cap, no non-space character lost."""
    segments = split(text, max_chars, first)
    for index, segment in enumerate(segments):
        cap = max_chars if index or first is None else max(1, min(max_chars, first))
        require(bool(segment), f"segment {index} is empty")
        require(" ".join(segment.split()) == segment, f"segment {index} is untidy: {segment!r}")
        require(len(segment) <= cap, f"segment {index} has {len(segment)} > {cap} characters")
    kept, given = _visible("".join(segments)), _visible(text)
    require(kept == given, f"characters lost or changed: {given!r} -> {kept!r}")


def _visible(text: str) -> str:
    return "".join(char for char in text if not char.isspace())
