"""The sentence splitter: boundaries, abbreviations, caps; no text is ever lost."""

from __future__ import annotations

import pytest

from tts.sentences import MAX_CHARS, split_sentences


def words(segments: list[str]) -> list[str]:
    return " ".join(segments).split()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("One. Two! Three? Four; five.", ["One.", "Two!", "Three?", "Four;", "five."]),
        ("First line\nsecond line", ["First line", "second line"]),
        ("Wait... what?! Yes.", ["Wait...", "what?!", "Yes."]),
        ('He said "stop." Then left.', ['He said "stop."', "Then left."]),
        ("No end punctuation", ["No end punctuation"]),
        ("Trailing space.   ", ["Trailing space."]),
    ],
)
def test_sentence_boundaries(text: str, expected: list[str]) -> None:
    assert split_sentences(text) == expected


@pytest.mark.parametrize(
    "sentence",
    [
        "Mr. Smith met Dr. Jones at St. Mary's.",
        "It costs 3.5 dollars, e.g. less than 4.25 euros.",
        "J. R. R. Tolkien wrote it, i.e. the book.",
        "The U.S. team won at 5 p.m. today.",
    ],
)
def test_abbreviations_initials_and_decimals_stay_inside(sentence: str) -> None:
    assert split_sentences(sentence) == [sentence]


@pytest.mark.parametrize("text", ["", "   ", "\n\n\t"])
def test_blank_text_has_no_segments(text: str) -> None:
    assert split_sentences(text) == []


def test_whitespace_inside_a_segment_is_collapsed() -> None:
    assert split_sentences("Hello    there,\t friend.") == ["Hello there, friend."]


def test_long_sentence_is_cut_at_clause_marks_first() -> None:
    clause = "this clause is about forty characters long"
    text = ", ".join([clause] * 12) + "."
    segments = split_sentences(text, max_chars=100)
    assert all(len(s) <= 100 for s in segments)
    assert all(s.endswith((",", ".")) for s in segments)
    assert words(segments) == text.split()


def test_long_sentence_without_clauses_is_cut_between_words() -> None:
    text = " ".join(f"word{i}" for i in range(200))
    segments = split_sentences(text, max_chars=50)
    assert len(segments) > 1
    assert all(len(s) <= 50 for s in segments)
    assert words(segments) == text.split()


def test_a_word_longer_than_the_cap_is_cut() -> None:
    segments = split_sentences("x" * 25, max_chars=10)
    assert segments == ["x" * 10, "x" * 10, "x" * 5]


def test_default_cap_keeps_every_segment_short() -> None:
    text = ("A fairly long clause goes on and on without stopping " * 30).strip() + "."
    assert all(len(s) <= MAX_CHARS for s in split_sentences(text))


def test_first_segment_has_its_own_tighter_cap() -> None:
    text = "The quick brown fox jumps over the lazy dog, and then it runs far away. Next."
    segments = split_sentences(text, max_chars=250, first_max_chars=50)
    assert segments == [
        "The quick brown fox jumps over the lazy dog,",
        "and then it runs far away.",
        "Next.",
    ]
    # A short first sentence is left alone.
    assert split_sentences("Hi. There.", first_max_chars=50) == ["Hi.", "There."]


def test_cap_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_chars"):
        split_sentences("text", max_chars=0)


@pytest.mark.timeout(60)  # quadratic before: about 7 minutes for this input
def test_a_long_run_of_marks_without_a_space_is_split_in_linear_time() -> None:
    text = "." * 100_000 + "x and then. More"
    assert split_sentences(text, max_chars=1000)[-1] == "More"
    assert "".join(split_sentences(text, max_chars=1000)).replace(" ", "") == text.replace(" ", "")
