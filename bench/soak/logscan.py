"""The server's log after the soak: every ERROR or CRITICAL record and every traceback,
split into what a user caused (known patterns, each with its reason) and the rest."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

LEVEL = re.compile(r"^(DEBUG|INFO|WARNING|ERROR|CRITICAL)\b:?")
# (pattern, why a user caused it). Empty until a soak shows one that deserves a place.
USER_CAUSED: tuple[tuple[re.Pattern[str], str], ...] = ()


def records(text: str) -> list[tuple[str, str]]:
    """(level, text) per record; lines without a level belong to the record above."""
    out: list[tuple[str, str]] = []
    for line in text.splitlines():
        match = LEVEL.match(line)
        if match or not out:
            out.append((match.group(1) if match else "?", line))
        else:
            level, body = out[-1]
            out[-1] = (level, f"{body}\n{line}")
    return out


def scan(text: str) -> dict[str, Any]:
    errors: list[str] = []
    user: list[dict[str, str]] = []
    warnings: Counter[str] = Counter()
    for level, body in records(text):
        if level == "WARNING":
            warnings[_shape(body)] += 1
        if level not in ("ERROR", "CRITICAL") and "Traceback" not in body:
            continue
        why = next((reason for pattern, reason in USER_CAUSED if pattern.search(body)), None)
        if why is None:
            errors.append(body[:4000])
        else:
            user.append({"record": body[:400], "why": why})
    return {"errors": errors, "user_caused": user, "warnings": dict(warnings)}


def _shape(line: str) -> str:
    """A warning without its numbers and ids, so repeats count as one kind."""
    first = line.splitlines()[0]
    return re.sub(r"[0-9a-f]{8,}(-[0-9a-f]{4,})*|\d+(\.\d+)?", "#", first)[:200]
