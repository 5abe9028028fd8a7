"""Split text into short segments that are synthesized one at a time.

Sentence-first streaming needs small units: the first segment is spoken (and its bytes
sent) before the rest of the text is touched, and a stream holds the synth thread for
one segment at a time, so no segment may be long. Segments end at sentence punctuation
(``. ! ? ;``, an ellipsis) or a newline; a segment over the cap is cut at the last
clause mark (``, : -``) or space before it. Cheap heuristics keep ``Mr.``, ``e.g.``,
initials and decimals such as ``3.5`` inside their sentence.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

MAX_CHARS = 250

# Lower-cased words that end in "." without ending a sentence.
_ABBREVIATION_WORDS = """
    mr mrs ms dr prof sr jr st mt vs etc e.g i.e cf no nos fig figs approx ca inc ltd co
    corp dept est gen col lt sgt capt rev hon jan feb mar apr jun jul aug sep sept oct nov
    dec a.m p.m u.s u.k u.n ph.d vol ed eds al
"""
ABBREVIATIONS = frozenset(_ABBREVIATION_WORDS.split())

# Sentence punctuation followed by optional closing quotes/brackets, then space or end.
# A run of marks is matched from its start only and never given back (possessive), so
# a long run not followed by a space costs linear time, not quadratic ("." * 20,000 + "x"
# took 18 s before).
_END = re.compile(r"(?:(?<![.!?;])[.!?;]++|…)[\"'”’)\]]*+(?=\s|$)")
# Where a too-long sentence may be cut: after a clause mark followed by a space.
_CLAUSE = re.compile(r"[,:;)\]—–]\s|\s[-—–]\s")


def split_sentences(
    text: str, max_chars: int = MAX_CHARS, first_max_chars: int | None = None
) -> list[str]:
    """Return the non-empty segments of ``text`` in order, each at most ``max_chars``."""
    return list(iter_segments(text, max_chars, first_max_chars))


def iter_segments(
    text: str, max_chars: int = MAX_CHARS, first_max_chars: int | None = None
) -> Iterator[str]:
    """Yield the segments lazily: the first one costs the same for any text length.

    ``first_max_chars`` caps the very first segment more tightly, so the first audio of
    a stream costs little synthesis even when the first sentence is long.
    """
    if max_chars < 1:
        raise ValueError("max_chars must be at least 1")
    limit = max_chars if first_max_chars is None else max(1, min(max_chars, first_max_chars))
    for sentence in _sentences(text):
        head, rest = _cut(sentence, limit)
        limit = max_chars
        yield head
        if rest:
            yield from _cap(rest, max_chars)


def _sentences(text: str) -> Iterator[str]:
    for line in text.splitlines():
        start = 0
        for match in _END.finditer(line):
            if _is_abbreviation(line, match):
                continue
            if piece := _tidy(line[start : match.end()]):
                yield piece
            start = match.end()
        if piece := _tidy(line[start:]):
            yield piece


def _is_abbreviation(line: str, match: re.Match[str]) -> bool:
    if match.group() != ".":
        return False
    # Only the word right before the dot matters; abbreviations are short.
    words = line[max(0, match.start() - 16) : match.start()].split()
    if not words:
        return False
    token = words[-1].lstrip("\"'“‘([").lower()
    # Single letters are initials ("J. R. R. Tolkien"); a dotted token is "e.g" or "U.S".
    return token in ABBREVIATIONS or (len(token) == 1 and token.isalpha())


def _tidy(piece: str) -> str:
    return " ".join(piece.split())


def _cap(sentence: str, limit: int) -> Iterator[str]:
    rest = sentence
    while rest:
        head, rest = _cut(rest, limit)
        yield head


def _cut(sentence: str, limit: int) -> tuple[str, str]:
    """Split off a head of at most ``limit`` characters at the most natural place."""
    if len(sentence) <= limit:
        return sentence, ""
    window = sentence[: limit + 1]
    cut = 0
    for match in _CLAUSE.finditer(window):
        cut = match.end() - 1  # just after the mark, before the space
    if cut < limit // 3:  # a clause mark right at the start would leave a tiny head
        cut = window.rfind(" ")
    if cut <= 0:
        cut = limit  # one very long word: cut it
    return sentence[:cut].strip(), sentence[cut:].strip()
