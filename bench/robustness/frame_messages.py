"""Each endpoint's messages, drawn by Hypothesis: valid bodies, then mutations of them.

Drawing: Hypothesis's ``.example()`` is for the REPL (it warns, ignores seeds and
favours trivial values) and ``find`` searches for one minimal case. :func:`draw` runs a
seeded, generate-only ``@given`` function and keeps every example it is given: the
full generator (boundary values, small and large cases mixed) and the same examples
for the same seed. Test functions are synchronous, so everything is drawn first and
sent afterwards.

Cost decides the shape: one mutated message costs Hypothesis about 10-40 ms on these
machines, so a batch draws about one message per four frames it sends (each message
one test case), and the connection scripts (one test case each, see
``frame_scripts``) pick from them and vary the framing.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from bench.robustness.frame_json import ODD_TEXT, mutated
from bench.robustness.frame_socketio import invalid_engineio, valid_engineio
from bench.robustness.frame_steps import MAX_MESSAGE

Messages = dict[str, list[bytes]]  # "safe": the session survives them; "bad": it may not

SPOKEN = st.sampled_from(["Hello.", "Testing one two.", "Bonjour.", "What time is it?"])
QUESTIONS = st.sampled_from(
    ["what time is it", "two plus two", "what day is it", "9 ** 9 ** 9", "one divided by zero"]
) | st.text(min_size=1, max_size=40) | ODD_TEXT  # fmt: skip
VOICES = st.sampled_from(["en-us", "en", "fr", "nope", ""]) | st.text(max_size=8)

WS_BODIES = st.one_of(
    st.fixed_dictionaries(
        {"type": st.just("query"), "text": QUESTIONS},
        optional={"voice": VOICES, "speed": st.floats(0.25, 4.0)},
    ),
    st.sampled_from([{"type": "ping"}, {"type": "pong"}]),
    st.fixed_dictionaries(
        {
            "type": st.just("resume"),
            "client_id": st.uuids().map(str) | st.text(max_size=10),
            "last_seq": st.integers(0, 2**31),
        }
    ),
    st.fixed_dictionaries({"type": st.just("auth"), "token": st.text(max_size=30)}),
)
TTS_BODIES = st.one_of(
    st.fixed_dictionaries(
        {"text": SPOKEN | st.text(min_size=1, max_size=20)},
        optional={"lang": st.sampled_from(["en", "fr", "EN ", "xx", "zh"])},
    ),
    st.sampled_from([{"ping": True}, {"cancel": True}]),
)
# No "stop": the batch's one session must live until its batch ends (stopped at the end).
SCENE_BODIES = st.one_of(
    st.sampled_from([{"type": "ping"}, {"ping": True}, {"type": "auth", "token": "t"}]),
    st.fixed_dictionaries(
        {"type": st.just("resume"), "last_chunk": st.integers(-5, 600)},
        optional={"binary": st.booleans()},
    ),
    st.fixed_dictionaries({"type": st.sampled_from(["pause", "play", "", "STOP"])}),
)


def _encoded(text: st.SearchStrategy[str]) -> st.SearchStrategy[bytes]:
    return text.map(lambda value: value.encode("utf-8", "surrogatepass"))


def _fits(packets: st.SearchStrategy[str]) -> st.SearchStrategy[bytes]:
    """Valid packets that fit one message (cut short, one would no longer be valid)."""
    return _encoded(packets).filter(lambda data: len(data) <= MAX_MESSAGE)


MESSAGES: dict[str, dict[str, st.SearchStrategy[bytes]]] = {
    "ws": {"safe": _encoded(mutated(WS_BODIES))},
    "ws_tts": {"safe": _encoded(mutated(TTS_BODIES))},
    "ws_tts_session": {"safe": _encoded(mutated(SCENE_BODIES))},
    "socketio_ws": {"safe": _fits(valid_engineio()), "bad": _encoded(invalid_engineio())},
    # Packets: the scripts join them into POST bodies (frame_socketio.polling_body).
    "socketio_polling": {
        "safe": _fits(valid_engineio(polling=True)),
        "bad": _encoded(invalid_engineio()),
    },
}


def draw_messages(endpoint: str, count: int, at_seed: int) -> Messages:
    """``count`` safe messages of ``endpoint`` (and a quarter as many bad ones)."""
    kinds = MESSAGES[endpoint]
    sizes = {"safe": count, "bad": max(1, count // 4)}
    return {kind: draw(kinds[kind], sizes[kind], at_seed + i) for i, kind in enumerate(kinds)}


def draw(strategy: st.SearchStrategy[Any], count: int, at_seed: int) -> list[Any]:
    """``count`` examples of ``strategy``, the same ones for the same seed (see module)."""
    drawn: list[Any] = []

    @settings(
        max_examples=count,
        database=None,
        phases=[Phase.generate],
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @seed(at_seed)
    @given(strategy)
    def keep(example: Any) -> None:
        drawn.append(example)

    keep()
    return drawn
