"""One connection's generated traffic per endpoint: which messages, framed how.

A :class:`Script` is what one connection sends: a request target, a prelude (Socket.IO:
connect first, or an upgrade from polling with its probes in or out of order), safe
steps, and at most one ending that breaks a rule (:data:`ENDINGS`). :class:`PollScript`
is the same for Engine.IO long-polling: HTTP requests instead of frames. Each script is
one Hypothesis test case drawn from a batch's messages (``frame_messages``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from hypothesis import strategies as st

from bench.robustness.frame_messages import Messages
from bench.robustness.frame_socketio import binary_event, polling_body
from bench.robustness.frame_steps import FATAL, MAX_MESSAGE, SAFE, Step, fatal_step, safe_step
from bench.robustness.frame_wire import OP_BINARY, OP_TEXT, Frame, text

ENDINGS = (*FATAL, "invalid_packet", "binary_unannounced", "client_close")
SESSION = "{session}"  # filled in with the batch's live scene session at run time
MAX_STEPS = 30


@dataclass(frozen=True, slots=True)
class Script:
    path: str
    steps: tuple[Step, ...]
    prelude: str = "none"  # socket.io: none | connect | upgrade:<probe,probe,...>

    @property
    def frames(self) -> int:
        return sum(len(step.frames) for step in self.steps)

    @property
    def fatal(self) -> str | None:
        """How the script ends if it breaks a rule (the server may close), else None."""
        if self.prelude.startswith("upgrade:") and self.prelude != "upgrade:2probe,5":
            return "bad_upgrade"
        last = self.steps[-1].kind if self.steps else None
        return last if last in ENDINGS else None


@dataclass(frozen=True, slots=True)
class PollScript:
    handshake: str  # the query string of the opening GET
    actions: tuple[tuple[str, str, bytes], ...]  # (GET|POST, sid: own|none|bogus, body)
    connect: bool = False
    invalid: bool = False  # the last POST's body is malformed

    @property
    def frames(self) -> int:
        return len(self.actions)

    @property
    def fatal(self) -> str | None:
        return "invalid_payload" if self.invalid else None


def one_in(draw: st.DrawFn, n: int) -> bool:
    """True about once in ``n`` draws. Hypothesis favours the ends of an integer range,
    so the winning values sit in its middle."""
    return draw(st.integers(1, 2 * n)) in (n, n + 1)


def _ends_badly(draw: st.DrawFn) -> bool:
    return one_in(draw, 3)


@st.composite
def _steps(draw: st.DrawFn, messages: Messages, kinds: tuple[str, ...] = SAFE) -> list[Step]:
    payloads = st.sampled_from(messages["safe"])
    count = draw(st.integers(1, MAX_STEPS))
    # A safe step's message fits the server's limit (over it is the "oversize" step).
    return [draw(safe_step(draw(payloads)[:MAX_MESSAGE], kinds)) for _ in range(count)]


@st.composite
def ws_script(draw: st.DrawFn, messages: Messages, path: str | st.SearchStrategy[str]) -> Script:
    steps = draw(_steps(messages))
    if _ends_badly(draw):
        steps.append(draw(fatal_step(draw(st.sampled_from(messages["safe"])))))
    return Script(draw(path) if isinstance(path, st.SearchStrategy) else path, tuple(steps))


@st.composite
def _scene_path(draw: st.DrawFn) -> str:
    session = SESSION
    if one_in(draw, 10):
        session = quote(draw(st.text(min_size=1, max_size=40) | st.just("x" * 3000)), safe="")
    params = []
    if draw(st.booleans()):
        params.append("binary=" + draw(st.sampled_from(["1", "true", "0", "on", "", "x"])))
    if draw(st.booleans()):
        name = draw(st.sampled_from(["last_chunk", "from"]))
        value = draw(st.sampled_from(["-5", "0", "3", "499", "1e3", "abc", "9" * 30, "", "%00"]))
        params.append(f"{name}={value}")
    return f"/ws/tts/{session}" + ("?" + "&".join(params) if params else "")


SIO_WS = "/socket.io/?EIO=4&transport=websocket"
SIO_QUERIES = st.sampled_from(
    ["EIO=4&transport=websocket"] * 12
    + ["EIO=3&transport=websocket", "EIO=5&transport=websocket", "EIO=x&transport=websocket",
       "transport=websocket", "EIO=4&transport=polling", "EIO=4&transport=websocket&sid=nope",
       "EIO=4&transport=websocket&t=1&j=0"]
)  # fmt: skip
PROBES = st.sampled_from(["2probe,5", "2probe,5", "5", "2probe,2probe", "3probe", "2probe,40", ""])
_SIO_SAFE = tuple(kind for kind in SAFE if kind != "binary_for_text")  # Engine.IO binary


@st.composite
def socketio_ws_script(draw: st.DrawFn, messages: Messages) -> Script:
    prelude = draw(st.sampled_from(["none", "connect", "connect", "upgrade"]))
    if prelude == "upgrade":
        prelude += ":" + draw(PROBES)
        path = SIO_WS  # the runner adds the polling session's sid
    else:
        path = "/socket.io/?" + draw(SIO_QUERIES)
    steps = draw(_steps(messages, _SIO_SAFE))
    if prelude == "connect" and one_in(draw, 4):  # announced, then sent
        at = draw(st.integers(0, len(steps)))
        steps.insert(at, Step("binary_event", (text(binary_event()), Frame(OP_BINARY, b"\0\xff"))))
    if _ends_badly(draw):
        steps.append(draw(_socketio_ending(messages)))
    return Script(path, tuple(steps), prelude)


@st.composite
def _socketio_ending(draw: st.DrawFn, messages: Messages) -> Step:
    how = draw(st.sampled_from(["invalid_packet"] * 3 + ["binary_unannounced", "client_close",
                                                         "wire"]))  # fmt: skip
    if how == "invalid_packet":
        return Step(how, (Frame(OP_TEXT, draw(st.sampled_from(messages["bad"]))[:MAX_MESSAGE]),))
    if how == "binary_unannounced":
        return Step(how, (Frame(OP_BINARY, draw(st.sampled_from(messages["safe"]))),))
    if how == "client_close":
        return Step(how, (text("1"),))
    return draw(fatal_step(draw(st.sampled_from(messages["safe"]))))


@st.composite
def polling_script(draw: st.DrawFn, messages: Messages) -> PollScript:
    odd = ["EIO=3&transport=polling", "EIO=4&transport=x", "EIO=4&transport=polling&b64=1"]
    handshake = draw(st.sampled_from(["EIO=4&transport=polling"] * 8 + odd))
    sids = st.sampled_from(["own"] * 8 + ["none", "bogus"])
    post = st.tuples(st.just("POST"), sids, polling_body(messages["safe"]))
    get = st.tuples(st.just("GET"), sids, st.just(b""))
    actions = draw(st.lists(st.one_of(post, post, post, get), min_size=1, max_size=MAX_STEPS))
    invalid = _ends_badly(draw)
    if invalid:
        actions.append(("POST", "own", draw(polling_body(messages["safe"], messages["bad"]))))
    return PollScript(handshake, tuple(actions), draw(st.booleans()), invalid)


SCRIPTS: dict[str, Callable[[Messages], st.SearchStrategy[Any]]] = {
    "ws": lambda messages: ws_script(messages, "/ws"),
    "ws_tts": lambda messages: ws_script(messages, "/ws/tts"),
    "ws_tts_session": lambda messages: ws_script(messages, _scene_path()),
    "socketio_ws": socketio_ws_script,
    "socketio_polling": polling_script,
}
