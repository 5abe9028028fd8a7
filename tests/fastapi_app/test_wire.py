"""The wire package: frames, legacy helpers and URLs (no server needed)."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest

from queues import Job
from wire import frames, legacy, urls


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
