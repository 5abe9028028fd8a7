"""How a message goes on the wire: one strategy per way of framing it, valid or not.

A *step* is the frames one message (or one control burst) takes. Steps in ``SAFE`` keep
the connection usable (text, binary where text is expected, fragments, control frames
between fragments, ping floods); steps in ``FATAL`` break RFC 6455 or a size limit, so
the server must close with a clear code, and a script ends with at most one of them.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from hypothesis import strategies as st

from bench.robustness.frame_wire import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    Frame,
)

MAX_MESSAGE = 64 * 1024  # the server's ws_max_frame_bytes default (GENIE_WS_MAX_FRAME_BYTES)
BAD_UTF8 = (b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xe2\x82", b"\xf4\x90\x80\x80", b"\x80")


@dataclass(frozen=True, slots=True)
class Step:
    kind: str
    frames: tuple[Frame, ...]


def _split(payload: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(c, len(payload)) for c in cuts})
    edges = [0, *points, len(payload)]
    return [payload[a:b] for a, b in itertools.pairwise(edges)]


def _fragments(opcode: int, pieces: list[bytes], between: list[Frame]) -> tuple[Frame, ...]:
    out: list[Frame] = []
    for i, piece in enumerate(pieces):
        last = i == len(pieces) - 1
        out.append(Frame(opcode if i == 0 else OP_CONT, piece, fin=last))
        if not last and between:
            out.append(between[i % len(between)])
    return tuple(out)


CONTROL = st.builds(
    Frame, st.sampled_from([OP_PING, OP_PONG]), st.binary(max_size=125)
)  # a valid control frame: at most 125 bytes, never fragmented


# --- safe steps -------------------------------------------------------------------------


@st.composite
def safe_step(draw: st.DrawFn, payload: bytes, kinds: tuple[str, ...] | None = None) -> Step:
    kind = draw(st.sampled_from(kinds or SAFE))
    if kind == "text":
        return Step(kind, (Frame(OP_TEXT, payload),))
    if kind == "binary_for_text":
        return Step(kind, (Frame(OP_BINARY, payload),))
    if kind == "ping_flood":
        count = draw(st.integers(3, 20))
        return Step(kind, tuple(Frame(OP_PING, b"p%d" % i) for i in range(count)))
    if kind == "pong":
        return Step(kind, (draw(CONTROL), Frame(OP_TEXT, payload)))
    cuts = draw(st.lists(st.integers(0, max(0, len(payload))), min_size=1, max_size=4))
    between = draw(st.lists(CONTROL, min_size=1, max_size=3)) if kind == "control_mid" else []
    return Step(kind, _fragments(OP_TEXT, _split(payload, cuts), between))


# Repeats weigh the draw: plain text frames are most of the traffic.
SAFE = (
    ("text",) * 12
    + ("binary_for_text", "fragmented", "fragmented", "control_mid") * 2
    + (
        "pong",
        "ping_flood",
    )
)


# --- fatal steps ------------------------------------------------------------------------


@st.composite
def fatal_step(draw: st.DrawFn, payload: bytes) -> Step:
    kind = draw(st.sampled_from(FATAL))
    return Step(kind, _FATAL[kind](draw, payload))


def _bad_utf8(draw: st.DrawFn, payload: bytes) -> tuple[Frame, ...]:
    at = draw(st.integers(0, len(payload)))
    bad = draw(st.sampled_from(BAD_UTF8))
    return (Frame(OP_TEXT, payload[:at] + bad + payload[at:]),)


def _bad_utf8_fragmented(draw: st.DrawFn, payload: bytes) -> tuple[Frame, ...]:
    # A character cut by a fragment boundary is fine; one that never completes is not.
    return (Frame(OP_TEXT, payload + b"\xe2\x82", fin=False), Frame(OP_CONT, b"("))


def _continuation_first(draw: st.DrawFn, payload: bytes) -> tuple[Frame, ...]:
    return (Frame(OP_CONT, payload),)


def _interleaved(draw: st.DrawFn, payload: bytes) -> tuple[Frame, ...]:
    return (Frame(OP_TEXT, payload, fin=False), Frame(OP_TEXT, payload))


def _fragmented_control(draw: st.DrawFn, payload: bytes) -> tuple[Frame, ...]:
    return (Frame(draw(st.sampled_from([OP_PING, OP_PONG, OP_CLOSE])), b"x", fin=False),)


def _long_control(draw: st.DrawFn, payload: bytes) -> tuple[Frame, ...]:
    return (Frame(OP_PING, b"p" * draw(st.integers(126, 4000))),)


def _reserved_opcode(draw: st.DrawFn, payload: bytes) -> tuple[Frame, ...]:
    return (Frame(draw(st.sampled_from([3, 4, 5, 6, 7, 11, 12, 13, 14, 15])), payload),)


def _rsv_bits(draw: st.DrawFn, payload: bytes) -> tuple[Frame, ...]:
    return (Frame(OP_TEXT, payload, rsv=draw(st.integers(1, 7))),)


def _unmasked(draw: st.DrawFn, payload: bytes) -> tuple[Frame, ...]:
    return (Frame(OP_TEXT, payload, masked=False),)


def _oversize(draw: st.DrawFn, payload: bytes) -> tuple[Frame, ...]:
    size = draw(st.integers(MAX_MESSAGE + 1, MAX_MESSAGE + 8000))
    if draw(st.booleans()):
        return (Frame(OP_TEXT, b"x" * size),)
    half = b"y" * (size // 2 + 1)
    return (Frame(OP_TEXT, half, fin=False), Frame(OP_CONT, half))


def _lying_length(draw: st.DrawFn, payload: bytes) -> tuple[Frame, ...]:
    return (Frame(OP_TEXT, payload, length=draw(st.sampled_from([2**31, 2**40, 2**63 - 1]))),)


def _close(draw: st.DrawFn, payload: bytes) -> tuple[Frame, ...]:
    codes = [1000, 1001, 3000, 4999, 0, 999, 1004, 1005, 1006, 1015, 2999, 5000, 65535]
    code = draw(st.sampled_from(codes))
    reason = draw(st.sampled_from([b"", b"bye", b"\xff\xfe", "é".encode(), b"r" * 123]))
    body = code.to_bytes(2, "big") + reason
    return (Frame(OP_CLOSE, draw(st.sampled_from([body, body[:1], b""]))),)


_FATAL = {
    "bad_utf8": _bad_utf8,
    "bad_utf8_fragmented": _bad_utf8_fragmented,
    "continuation_first": _continuation_first,
    "interleaved_message": _interleaved,
    "fragmented_control": _fragmented_control,
    "long_control": _long_control,
    "reserved_opcode": _reserved_opcode,
    "rsv_bits": _rsv_bits,
    "unmasked": _unmasked,
    "oversize": _oversize,
    "lying_length": _lying_length,
    "close": _close,
}
FATAL = tuple(_FATAL)
# The ones after which the server may reset the TCP connection instead of finishing the
# closing handshake: it closes while our unread megabytes are still in its buffer.
MAY_RESET = frozenset({"oversize", "lying_length"})
