"""A fuzz target whose parser has a bug the harness must catch (see test_parsers.py).

``careless_parse`` is ``wire.frames.parse_client_frame`` with a shortcut for ``ping``
that forgets a frame may be valid JSON but no object: ``1`` or ``[]`` raise
AttributeError, which is not the parser's documented FrameError.
"""

from __future__ import annotations

import json

from bench.robustness import parser_contracts as contracts
from bench.robustness.parsers import OneInput
from wire import frames


def careless_parse(text: str) -> frames.ClientFrame:
    try:
        data = json.loads(text)
    except ValueError:
        raise frames.FrameError("bad_json", "frame is not valid JSON") from None
    if data.get("type") == "ping":
        return frames.Ping()
    return frames.parse_client_frame(text)


def ws_frames() -> OneInput:
    """The ``ws_frames`` target's contract, fed the careless parser."""

    def one_input(data: bytes) -> None:
        contracts.check_ws_frame(frames, careless_parse, contracts.as_text(data))

    return one_input
