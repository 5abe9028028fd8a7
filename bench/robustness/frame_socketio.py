"""Hypothesis strategies for Engine.IO v4 / Socket.IO v5 packets: valid ones, and not.

Engine.IO packet: a type digit (0 open, 1 close, 2 ping, 3 pong, 4 message, 5 upgrade,
6 noop) and data; over polling, packets are joined by ``\\x1e`` and binary ones travel
as ``b`` + base64. A Socket.IO packet rides in a message (``4``): type digit (0 connect,
1 disconnect, 2 event, 3 ack, 4 connect_error, 5 binary event, 6 binary ack), then
``N-`` attachments, ``/namespace,``, an ack id and JSON data.

*Valid* packets may carry anything a client may send (any JSON arguments, unknown
namespaces, acks nobody asked for, pings and probes out of turn): the session must
survive them. *Invalid* ones break the grammar or the rules (reserved event names,
placeholders pointing nowhere, data nested past any parser's limit...): the server may
end the session, clearly.
"""

from __future__ import annotations

import base64

from hypothesis import strategies as st

from bench.robustness.frame_json import ODD_NUMBERS, VALUES, WEIRD, Raw, dump

RESERVED = ("connect", "disconnect", "connect_error")
MAX_BODY = 64 * 1024  # the server's max_http_buffer_size (GENIE_WS_MAX_FRAME_BYTES)
EVENT_NAMES = st.sampled_from(["message", "time_update", "todo_update", "x", "newListener",
                               "__proto__", "", "é"]) | st.text(max_size=10).filter(
    lambda name: name not in RESERVED
)  # fmt: skip
NAMESPACES = st.sampled_from(["", "", "", "", "/,", "/admin,", "/x?y=1,", "/\u0000,", "/é,"]) | (
    st.integers(1, 3000).map(lambda n: "/" + "a" * n + ",")
)
ACK_IDS = st.sampled_from(["", "", "", "1", "42", "0", "9" * 19])
# Harmless out of turn over a websocket; over polling a client may only send these two.
CONTROL = ("2", "3", "2probe", "3probe", "5", "6", "0")
POLLING_CONTROL = ("3", "5")


@st.composite
def valid_socketio(draw: st.DrawFn) -> str:
    """A Socket.IO packet a client may send (the text after the Engine.IO ``4``)."""
    kind = draw(st.sampled_from(["event"] * 6 + ["connect", "disconnect", "ack"]))
    namespace = draw(NAMESPACES)
    if kind == "event":
        args = draw(st.lists(WEIRD.filter(lambda v: not isinstance(v, Raw)), max_size=3))
        return "2" + namespace + draw(ACK_IDS) + dump([draw(EVENT_NAMES), *args])
    if kind == "ack":
        return (
            "3"
            + namespace
            + draw(st.sampled_from(["1", "7", "99"]))
            + dump(draw(VALUES.map(lambda v: [v])))
        )
    auth = draw(st.sampled_from(["", "", "{}", '{"token":"x"}']))
    return ("0" if kind == "connect" else "1") + namespace + auth


@st.composite
def valid_engineio(draw: st.DrawFn, polling: bool = False) -> str:
    if draw(st.integers(1, 20)) in (10, 11):  # about one in ten (see frame_scripts.one_in)
        return draw(st.sampled_from(POLLING_CONTROL if polling else CONTROL))
    return "4" + draw(valid_socketio())


@st.composite
def invalid_socketio(draw: st.DrawFn) -> str:
    """A Socket.IO packet that breaks the grammar or the rules."""
    return _INVALID[draw(st.integers(0, len(_INVALID) - 1))](draw, draw(EVENT_NAMES))


_INVALID = [
    lambda draw, name: "4" + dump(["x"]),  # CONNECT_ERROR: the server's to send
    lambda draw, name: draw(st.sampled_from(["7", "8", "9", "x", " "])) + dump([name]),
    lambda draw, name: "2" + dump(draw(WEIRD.filter(lambda v: not isinstance(v, list)))),
    lambda draw, name: "2[]",
    lambda draw, name: "2" + dump([draw(st.sampled_from([1, None, [], {}, True])), "x"]),
    lambda draw, name: "2" + dump([draw(st.sampled_from(RESERVED)), "x"]),
    lambda draw, name: "2" + dump([name, Raw("[" * 5000 + "]" * 5000)]),
    lambda draw, name: "2" + dump([name, 1])[:-1],
    lambda draw, name: "2" + "9" * 150 + dump([name]),
    lambda draw, name: "3" + dump(["no id"]),
    lambda draw, name: "31" + dump({"not": "a list"}),
    lambda draw, name: "51-" + dump([name, {"_placeholder": True, "num": draw(_bad_num())}]),
    lambda draw, name: draw(st.sampled_from(["50-", "599999999999-", "5"])) + dump([name]),
    lambda draw, name: "0" + dump(draw(st.sampled_from([[1], "s", 5]))),
]


def _bad_num() -> st.SearchStrategy[object]:
    return st.sampled_from([1, 5, -1, "0", None, True, 0.5]) | ODD_NUMBERS.map(Raw)


ENGINE_INVALID = st.sampled_from(
    ["", "7", "8x", "9", "x", "b", "b!!!", "bQUJD=", "-1", " 4", "4[" * 2000]
)


@st.composite
def invalid_engineio(draw: st.DrawFn) -> str:
    if draw(st.booleans()):
        return draw(ENGINE_INVALID)
    return "4" + draw(invalid_socketio())


def binary_event(namespace: str = "") -> str:
    """A valid binary event announcing one attachment (sent next, as a binary frame)."""
    return "451-" + namespace + dump(["upload", {"_placeholder": True, "num": 0}])


# --- polling ----------------------------------------------------------------------------


@st.composite
def polling_body(draw: st.DrawFn, safe: list[bytes], bad: list[bytes] | None = None) -> bytes:
    """A POST body of 1-16 of the ``safe`` packets joined by ``\\x1e``; with ``bad``, a
    malformed one (a bad packet among them, or a bad payload around them)."""
    packets = draw(st.lists(st.sampled_from(safe), min_size=1, max_size=16))
    if bad is None:  # as many as fit the server's limit (over it: the "huge" body)
        while len(packets) > 1 and sum(map(len, packets)) + len(packets) > MAX_BODY:
            packets.pop()
        return b"\x1e".join(packets)[:MAX_BODY]
    how = draw(st.sampled_from(["packet", "packet", "b64", "bad_utf8", "jsonp", "huge", "many"]))
    if how in ("packet", "b64"):  # b64: a binary message no binary event announced
        extra = draw(st.sampled_from(bad)) if how == "packet" else draw(_b64_packet())
        packets.insert(draw(st.integers(0, len(packets))), extra)
    body = b"\x1e".join(packets)
    if how == "bad_utf8":
        at = draw(st.integers(0, len(body)))
        return body[:at] + b"\xff\xfe" + body[at:]
    if how == "jsonp":
        return b"d=" + body
    if how == "huge":
        return body + b"\x1e4" + b"2" * draw(st.integers(64 * 1024, 70 * 1024))
    return body if how in ("packet", "b64") else b"\x1e".join([b"6"] * 17)


def _b64_packet() -> st.SearchStrategy[bytes]:
    return st.binary(max_size=64).map(lambda b: b"b" + base64.b64encode(b))
