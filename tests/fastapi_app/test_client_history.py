"""The replay buffer of a /ws client: bounded by count and by age."""

from __future__ import annotations

from fastapi_app.sockets.client import Client, FrameHistory


def test_history_keeps_only_the_newest_frames() -> None:
    history = FrameHistory(size=3, window=60)
    for n in range(1, 6):
        history.add(f"frame {n}", now=100.0 + n)
    assert history.since(0, newest_seq=5, now=106) == [
        (3, "frame 3"),
        (4, "frame 4"),
        (5, "frame 5"),
    ]
    assert history.since(4, newest_seq=5, now=106) == [(5, "frame 5")]


def test_history_forgets_frames_older_than_the_window() -> None:
    history = FrameHistory(size=100, window=10)
    history.add("old", now=0.0)
    history.add("older than the window too", now=5.0)
    history.add("fresh", now=20.0)  # adding it drops the two stale ones
    assert list(history.bodies) == ["fresh"]
    assert history.since(0, newest_seq=3, now=20.0) == [(3, "fresh")]
    assert history.since(0, newest_seq=3, now=31.0) == []  # nothing is replayed stale


def test_data_frames_are_numbered_and_control_frames_repeat_the_number() -> None:
    client = Client("c1", None, history=8, window=60)
    for value in range(3):
        client.deliver(f'{{"type":"todo_update","value":{value}}}', now=1.0)
    assert client.seq == 3
    assert client.history is not None and len(client.history.bodies) == 3
    mvp = Client("c2", None)  # no history: no numbers, nothing kept
    mvp.deliver('{"type":"todo_update","value":1}', now=1.0)
    assert mvp.seq == 0 and mvp.history is None
