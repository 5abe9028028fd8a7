"""The wire package: frames, legacy helpers and URLs (no server needed)."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest

from queues import Job
from wire import frames, legacy, tts_frames, urls


def test_with_seq_splices_a_sequence_number_into_an_encoded_frame() -> None:
    body = frames.encode(frames.queue_event("todo_update", {"value": 3}))
    assert json.loads(frames.with_seq(body, 42)) == {"seq": 42, "type": "todo_update", "value": 3}


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("{not json", "bad_json"),
        ("[1, 2]", "bad_frame"),
        ('{"text": "no type"}', "bad_frame"),
        ('{"type": "dance"}', "unknown_type"),
        ('{"type": "query", "text": 5}', "bad_field"),
        ('{"type": "query", "text": "hi", "speed": 9}', "bad_field"),
        ('{"type": "resume", "client_id": "x", "last_seq": -1}', "bad_field"),
        ('{"type": "auth"}', "bad_field"),
    ],
)
def test_bad_client_frames_say_what_is_wrong(text: str, code: str) -> None:
    with pytest.raises(frames.FrameError) as caught:
        frames.parse_client_frame(text)
    assert caught.value.code == code
    assert caught.value.frame()["type"] == "error"


def test_good_client_frames_parse() -> None:
    query = frames.parse_client_frame('{"type":"query","text":"hi","voice":"en","speed":1.5}')
    assert query == frames.Query("hi", "en", 1.5)
    resume = frames.parse_client_frame('{"type":"resume","client_id":"abc","last_seq":7}')
    assert resume == frames.Resume("abc", 7)
    assert isinstance(frames.parse_client_frame('{"type":"ping"}'), frames.Ping)


def test_audio_url_quotes_everything_and_round_trips() -> None:
    text = "5 & 6 = 11? #yes / 100% é"
    url = urls.audio_url(text, voice="en-us", speed=1.25, client_id="c1")
    parts = urlsplit(url)
    assert parts.path == "/api/get-audio"
    query = parse_qs(parts.query)
    assert query == {"msg": [text], "voice": ["en-us"], "speed": ["1.25"], "client_id": ["c1"]}
    assert urls.audio_url("hi") == "/api/get-audio?msg=hi"
    assert parse_qs(urlsplit(urls.legacy_audio_url(text)).query)["tts_text"] == [text]


def test_job_li_escapes_user_text() -> None:
    job = Job(question="<script>alert('x')</script> & co", id_hash="abc123")
    item = legacy.job_li(job)
    assert item.startswith("<li id='abc123'>") and item.endswith("</li>")
    assert "<script>" not in item and "&lt;script&gt;" in item and "&#x27;x&#x27;" in item


def test_done_listing_has_the_play_and_delete_hooks_of_the_original_page() -> None:
    jobs = [Job(question="second", id_hash="b"), Job(question="first", id_hash="a")]
    listing = legacy.queue_listing("done", jobs)
    assert list(listing) == ["done_jobs"]
    first = listing["done_jobs"][0]
    assert "<span class='play'>" in first and "<span class='delete'></span>" in first
    assert legacy.queue_listing("run", [])["run_jobs"] == []


@pytest.mark.parametrize(
    ("raw", "question"),
    [
        ("question=what%20is%202+2%20&%20more?", "what is 2+2 & more?"),  # browser, unencoded
        ("question=what+is+2%2B2", "what is 2+2"),  # form-encoded client
        ("question=caf%C3%A9%20au%20lait", "café au lait"),
        ("x=1&question=a=b", "a=b"),
        ("question=", ""),
        ("nothing=here", None),
    ],
)
def test_push_question_is_read_from_the_raw_query(raw: str, question: str | None) -> None:
    assert legacy.parse_push_question(raw.encode()) == question


# Found by the parser fuzzer (bench/robustness/parsers.py): JSON that decodes but
# cannot be acted on must be bad JSON at once, not an error later, far from the frame.
LONE_SURROGATE = '{"type":"query","text":"hi \\ud800 there"}'
DEEP = "[" * 5000 + "]" * 5000


@pytest.mark.parametrize(
    "text",
    [LONE_SURROGATE, '{"type":"auth","token":"\\udc00"}', DEEP],
    ids=["lone-high-surrogate", "lone-low-surrogate", "deep-nesting"],
)
def test_lone_surrogates_and_deep_nesting_are_bad_json(text: str) -> None:
    # Before: the surrogate reached the queue and its answer could not be spoken
    # (UnicodeEncodeError in the audio URL); the nesting raised RecursionError.
    with pytest.raises(frames.FrameError) as caught:
        frames.parse_client_frame(text)
    assert caught.value.code == "bad_json"
    with pytest.raises(ValueError, match="invalid JSON"):
        tts_frames.parse(text.replace('"type":"query",', ""))


def test_an_escaped_surrogate_pair_is_one_character() -> None:
    query = frames.parse_client_frame('{"type":"query","text":"smile \\ud83d\\ude00"}')
    assert query == frames.Query("smile \U0001f600")
    assert tts_frames.parse('{"text":"\\\\ud800 is not an escape"}')["text"].startswith("\\ud800")


def test_an_unknown_type_is_not_echoed_back_whole() -> None:
    with pytest.raises(frames.FrameError) as caught:
        frames.parse_client_frame(json.dumps({"type": "x" * 100_000}))
    assert caught.value.code == "unknown_type" and len(caught.value.message) < 200
