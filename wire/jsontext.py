"""JSON text from clients, decoded into values the server can act on and send on.

``json.loads`` alone lets two inputs through that fail later, far from the frame: a
lone surrogate escape (``"\\ud800"``) decodes to a string that cannot be encoded as
UTF-8, so echoing or speaking it raises; and deep nesting (``[[[[...``) raises
RecursionError, which is no ValueError and closed the socket. Both are bad JSON here.
"""

from __future__ import annotations

import json
import re
from typing import Any

# A \uD800-\uDFFF escape; only frames holding one pay for the full check.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def loads(text: str) -> Any:
    """``json.loads(text)``; json.JSONDecodeError (a ValueError) for any bad JSON."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise json.JSONDecodeError("nested too deeply", text, 0) from None
    escape = _SURROGATE_ESCAPE.search(text)
    if escape is not None and not _is_unicode(value):
        raise json.JSONDecodeError("lone surrogate escape, not a character", text, escape.start())
    return value


def _is_unicode(value: Any) -> bool:
    """Every string in ``value`` (keys too) encodes as UTF-8; iterative, for any depth."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if not item.isascii():
                try:
                    item.encode("utf-8")
                except UnicodeEncodeError:
                    return False
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return True
