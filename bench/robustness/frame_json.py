"""Hypothesis strategies for JSON frame bodies: a valid object, then one mutation of it.

A body is built as a tree whose leaves may be :class:`Raw` JSON text, so it can hold
what ``json.dumps`` never writes (``1e999``, ``NaN``, a 5,000-digit integer, 20,000
nested brackets, duplicate keys). Anything big is built from a small draw (a unit and
a repeat count): Hypothesis keeps each test case's choice sequence short, so a 64 KB
frame costs no more to draw than a 64-byte one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

Body = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Raw:
    """JSON text put in a body as is (it may be invalid on purpose)."""

    text: str


def dump(value: Any) -> str:
    """JSON text of a body tree; :class:`Raw` leaves are spliced in verbatim."""
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{dump(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(dump(v) for v in value) + "]"
    return json.dumps(value)  # ASCII: a lone surrogate goes out as a \ud800 escape


# --- values -----------------------------------------------------------------------------

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
KEYS = st.sampled_from(["a", "type", "text", "id", ""]) | st.text(max_size=4)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=3),
    max_leaves=4,
)
ODD_NUMBERS = st.sampled_from(
    [
        "1e999", "-1e999", "NaN", "Infinity", "-Infinity", "-0", "0.0000001e-400",
        "-1", "-2147483649", "9223372036854775808", "18446744073709551616",
        "1" + "0" * 4400,  # past Python's int-from-text digit limit
        "1.7976931348623157e308", "4.9e-324", "1E2", "0x10", "01", "+1", ".5",
    ]
)  # fmt: skip
ODD_TEXT = st.sampled_from(
    [
        "\ud800", "a\udfffb", "\x00", "\u202e\u0644", "e\u0301\u0301\u0301", "\U0001f600",
        "\ufeff", "\\", '"', "</script>", "%00", "../../etc/passwd", "' OR 1=1 --",
    ]
)  # fmt: skip


@st.composite
def long_strings(draw: st.DrawFn) -> str:
    unit = draw(st.sampled_from(["x", "é", "\U0001f600", "ab "]))
    size = draw(st.sampled_from([101, 4999, 5001, 20_000, 64_000]))
    return unit * (size // len(unit))


@st.composite
def deep(draw: st.DrawFn) -> Raw:
    """Nesting from harmless to far past the JSON decoder's recursion limit."""
    depth = draw(st.sampled_from([2, 64, 500, 990, 1000, 1100, 5_000, 30_000]))
    opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
    return Raw(opener * depth + "1" + closer * depth)


WEIRD = (
    VALUES
    | ODD_NUMBERS.map(Raw)
    | ODD_TEXT
    | long_strings()
    | deep()
    | st.integers(min_value=-(2**70), max_value=2**70)
)


# --- mutations --------------------------------------------------------------------------


@st.composite
def mutated(draw: st.DrawFn, valid: st.SearchStrategy[Body]) -> str:
    """JSON text of a valid body, or of that body with one mutation applied."""
    body = dict(draw(valid))
    kind = draw(st.sampled_from(_MUTATIONS)) if body else "not_an_object"
    return _MUTATORS[kind](draw, body)


def _valid(draw: st.DrawFn, body: Body) -> str:
    return dump(body)


def _wrong_type(draw: st.DrawFn, body: Body) -> str:
    key = draw(st.sampled_from(sorted(body)))
    body[key] = draw(WEIRD)
    return dump(body)


def _missing(draw: st.DrawFn, body: Body) -> str:
    body.pop(draw(st.sampled_from(sorted(body))))
    return dump(body)


def _extra(draw: st.DrawFn, body: Body) -> str:
    names = st.sampled_from(["__proto__", "constructor", "seq", "id", "extra"]) | st.text(
        max_size=8
    )
    extra = draw(st.dictionaries(names, WEIRD, min_size=1, max_size=4))
    return dump({**body, **{k: v for k, v in extra.items() if k not in body}})


def _duplicate_key(draw: st.DrawFn, body: Body) -> str:
    key = draw(st.sampled_from(sorted(body)))
    text = dump(body)
    return text[:-1] + ("," if len(text) > 2 else "") + f"{json.dumps(key)}:{dump(draw(WEIRD))}}}"


def _not_an_object(draw: st.DrawFn, body: Body) -> str:
    inner = st.lists(VALUES, max_size=3) | SCALARS | st.just([body])
    return dump(draw(inner))


def _broken(draw: st.DrawFn, body: Body) -> str:
    text = dump(body)
    how = draw(st.sampled_from(["cut", "garbage", "quotes", "empty", "bom", "ws", "two"]))
    if how == "cut":
        return text[: draw(st.integers(0, max(0, len(text) - 1)))]
    if how == "garbage":
        return text + draw(st.sampled_from(["}", "]", ",", "x", "\x00", " {}"]))
    if how == "quotes":
        return text.replace('"', "'")
    if how == "bom":
        return "\ufeff" + text
    if how == "two":
        return text + text
    return "" if how == "empty" else " \t\n"


def _whole_nested(draw: st.DrawFn, body: Body) -> str:
    depth = draw(st.sampled_from([10, 990, 1000, 20_000]))
    return "[" * depth + dump(body) + "]" * depth


_MUTATORS = {
    "valid": _valid,
    "wrong_type": _wrong_type,
    "missing": _missing,
    "extra": _extra,
    "duplicate_key": _duplicate_key,
    "not_an_object": _not_an_object,
    "broken": _broken,
    "whole_nested": _whole_nested,
}
# "valid" twice: about one frame in five is left as it was.
_MUTATIONS = [*_MUTATORS, "valid"]
