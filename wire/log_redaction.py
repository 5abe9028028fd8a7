"""Keep access tokens out of logs. A logging filter, no framework imports.

Tokens reach log lines three ways: a query string (``?token=``, the least safe token
source, in uvicorn's access log, its WebSocket ``[accepted]`` lines and Werkzeug's
request lines), an ``Authorization`` header (in any format that logs headers) and a bare
JWT (a first ``{"type": "auth"}`` frame logged while debugging). :class:`RedactTokens`
replaces each value with ``[redacted]`` and leaves the rest of the line as it was.

The filter edits a record's string arguments in place rather than formatting it: uvicorn's
access formatter unpacks ``record.args`` as a tuple. Only when a secret hides in a
non-string argument (a dict, a scope) is the record collapsed to its redacted message.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import unquote_plus

REDACTED = "[redacted]"
# Query parameter names whose value is a secret (compared after percent-decoding, as
# the server itself decodes them: "%74oken=" is "token=").
SECRET_PARAMS = frozenset({"token", "access_token", "id_token", "refresh_token", "jwt"})
# A name=value pair starts after a separator of a query, a repr or a header line; the
# lookbehind keeps the scan from trying every position inside words.
_PARAM = re.compile(r"(?:^|(?<=[?&;\s'\"(,]))(?P<key>[\w.%-]+)=(?P<value>[^&\s'\"#;]+)")
_AUTHORIZATION = re.compile(
    r"(?P<key>authorization['\"]?\s*[:=,]\s*(?:b?['\"])?)"
    r"(?P<scheme>(?:bearer|basic|token)\s+)?"
    r"(?P<value>[^\s'\",;)\]}]+)",
    re.IGNORECASE,
)
_JWT = re.compile(r"\beyJ[\w-]{4,}\.[\w-]{4,}\.[\w-]*")
# Loggers whose lines carry request targets: uvicorn's (access, error: WebSocket
# handshakes, asgi: trace) and Werkzeug's (the Flask server's request lines).
LOGGERS = ("uvicorn", "uvicorn.access", "uvicorn.error", "uvicorn.asgi", "werkzeug")


def _param(match: re.Match[str]) -> str:
    if unquote_plus(match["key"]).lower() not in SECRET_PARAMS:
        return match[0]
    return f"{match['key']}={REDACTED}"


def redact(text: str) -> str:
    """``text`` with every token value replaced by ``[redacted]``."""
    if "=" in text:
        text = _PARAM.sub(_param, text)
    if "authorization" in text.lower():
        text = _AUTHORIZATION.sub(lambda m: f"{m['key']}{m['scheme'] or ''}{REDACTED}", text)
    if "eyJ" in text:
        text = _JWT.sub(REDACTED, text)
    return text


class RedactTokens(logging.Filter):
    """Redacts tokens in every record it sees; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if not args:
            if isinstance(record.msg, str):
                record.msg = redact(record.msg)
            return True
        # With arguments, msg is the code's format string: the data is in the args.
        if isinstance(args, tuple):
            args = record.args = tuple(redact(a) if isinstance(a, str) else a for a in args)
            if all(isinstance(a, str | int | float) for a in args):
                return True
        self._collapse(record)  # a mapping, or objects whose text may hold a secret
        return True

    @staticmethod
    def _collapse(record: logging.LogRecord) -> None:
        # A secret inside a dict or object argument: format once, redact the text.
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return  # logging itself reports the broken format later
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, ()


def install(names: tuple[str, ...] = LOGGERS, *, root_handlers: bool = True) -> RedactTokens:
    """Put one :class:`RedactTokens` on the named loggers and their handlers (and the
    root logger's handlers, where other loggers' lines end). Idempotent."""
    token_filter = RedactTokens()
    loggers = [logging.getLogger(name) for name in names]
    targets: list[logging.Filterer] = [*loggers]
    for logger in [*loggers, *([logging.getLogger()] if root_handlers else [])]:
        targets += logger.handlers
    for target in targets:
        if not any(isinstance(f, RedactTokens) for f in target.filters):
            target.addFilter(token_filter)
    return token_filter
