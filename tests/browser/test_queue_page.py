"""The Genie page in Chromium, against each server and each transport it offers:
ask by typing and Enter, watch the counts, hear the answer (decoded), replay it, delete it.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.audio import duration, rms
from tests.browser import pagekit
from tests.browser.pagekit import SOUND, WAIT_MS

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

CASES = [
    pytest.param("fastapi", "ws", id="fastapi-ws"),
    pytest.param("fastapi", "socketio", id="fastapi-socketio"),
    pytest.param("flask-threading", "socketio", id="flask-threading-socketio"),
    pytest.param("flask-gevent", "socketio", id="flask-gevent-socketio"),
]
QUESTION = "what is 6 times 7"


def assert_decodable(url: str, *, at_least: float = 0.3) -> None:
    response = pagekit.fetch(url)
    assert response.status_code == 200, (url, response.status_code, response.text[:200])
    assert response.headers["content-type"].startswith("audio/mpeg"), url
    assert duration(response.content) >= at_least, url
    assert rms(response.content) > 100, f"{url} is silent"


def open_page(chromium: Any, base: str, transport: str) -> tuple[Any, Any, list[str]]:
    from playwright.sync_api import expect

    context = chromium.new_context(base_url=base)
    context.add_init_script(pagekit.RECORDER)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"/genie?transport={transport}")
    expect(page.locator("#conn-state")).to_have_attribute("data-state", "open", timeout=WAIT_MS)
    return context, page, errors


def ask_and_hear_answer(page: Any, *, counts_conflate: bool) -> str:
    """Type, press Enter, see counts move and the answer play; returns the job id.

    ``counts_conflate``: the server may replace a count still waiting to be written by a
    newer one (FastAPI: ``migration_docs/differences.md``), so the page need not see the
    job's passing todo/run count of 1, only where the counts end."""
    from playwright.sync_api import expect

    page.locator("#question").fill(QUESTION)
    page.locator("#question").press("Enter")
    expect(page.locator("#done-count")).to_have_text("1", timeout=WAIT_MS)
    done = page.locator("#done-list li")
    expect(done).to_have_count(1, timeout=WAIT_MS)
    expect(done.first).to_contain_text(f"Q: {QUESTION}")
    counts = page.evaluate("window.__counts")
    assert "done-count=1" in counts, counts
    if not counts_conflate:
        assert "todo-count=1" in counts or "run-count=1" in counts, counts

    answer = page.wait_for_function(
        """() => window.__media.find((m) => m.kind === "ended" && m.player === "player"
                 && /is 42/.test(decodeURIComponent(new URL(m.url).search)))""",
        timeout=WAIT_MS,
    ).json_value()
    urls = pagekit.played(page, "player")
    texts = [pagekit.spoken_text(url) for url in urls]
    assert texts[0] == "hmm... let me think", texts
    assert "6 times 7 is 42." in texts, texts
    assert len(urls) == len(set(urls)), f"a URL was played twice: {urls}"
    assert_one_after_another(page)
    for url in urls:
        assert_decodable(url)
    assert answer["url"] in urls
    assert page.locator("#now-playing").inner_text() == "nothing"
    return done.first.get_attribute("data-id") or ""


def assert_one_after_another(page: Any) -> None:
    """On the answer player every play waits for the previous one to end (no cut-offs)."""
    events = [(m["kind"], m["url"]) for m in pagekit.media_log(page) if m["player"] == "player"]
    assert not [e for e in events if e[0] == "error"], events
    playing = None
    for kind, url in events:
        if kind == "play":
            assert playing is None, f"{url} started while {playing} played: {events}"
            playing = url
        else:
            assert url == playing, f"{url} ended but {playing} was playing: {events}"
            playing = None


def replay_answer(page: Any, base: str, job_id: str) -> None:
    before = len(pagekit.played(page, "player"))
    # Two clicks: the second finds the same URL playing and must not queue it again.
    page.locator(f"#done-list li[data-id='{job_id}'] button.play").dblclick()
    page.wait_for_function(
        f"() => window.__media.filter((m) => m.player === 'player' && m.kind === 'ended')"
        f".length > {before}",
        timeout=WAIT_MS,
    )
    replayed = pagekit.played(page, "player")[before:]
    assert replayed == [f"{base}/get-answer/{job_id}"], replayed
    assert_decodable(replayed[0])


def delete_job(page: Any, base: str, job_id: str) -> None:
    from playwright.sync_api import expect

    page.locator(f"#done-list li[data-id='{job_id}'] button.delete").click()
    expect(page.locator("#done-count")).to_have_text("0", timeout=WAIT_MS)
    expect(page.locator("#done-list li")).to_have_count(0, timeout=WAIT_MS)
    page.wait_for_function(
        "(sound) => window.__media.some((m) => m.kind === 'ended' && m.url.endsWith(sound))",
        arg=SOUND,
        timeout=WAIT_MS,
    )
    assert_decodable(f"{base}{SOUND}", at_least=1.0)


@pytest.mark.parametrize(("server", "transport"), CASES)
def test_ask_hear_replay_delete(chromium: Any, tmp_path: Path, server: str, transport: str) -> None:
    from playwright.sync_api import expect

    with pagekit.start_server(server) as srv:
        base = srv.url
        context, page, errors = open_page(chromium, base, transport)
        try:
            expect(page.locator("#transport")).to_have_attribute("data-transport", transport)
            expect(page.locator("#rollout-transport")).to_have_attribute(
                "data-transport", transport
            )
            reason = "ws_unavailable" if server.startswith("flask") else "override"
            expect(page.locator("#rollout-reason")).to_have_text(reason)
            expect(page.locator("#clock")).not_to_have_text("--:--:--", timeout=WAIT_MS)
            job_id = ask_and_hear_answer(page, counts_conflate=server == "fastapi")
            replay_answer(page, base, job_id)
            shot = pagekit.screenshot(page, f"{server}-{transport}")
            shutil.copy(shot, tmp_path / shot.name)
            delete_job(page, base, job_id)
            assert errors == []
        finally:
            context.close()


@pytest.mark.parametrize("server", ["fastapi", "flask-threading"])
def test_question_text_is_never_markup(chromium: Any, server: str) -> None:
    """What the user typed comes back in the lists as text, whatever it looks like."""
    from playwright.sync_api import expect

    hostile = '<img src=x onerror="window.__xss=1"> & what is 3 + 4'
    with pagekit.start_server(server) as srv:
        context, page, errors = open_page(chromium, srv.url, "socketio")
        try:
            page.locator("#question").fill(hostile)
            page.locator("#question").press("Enter")
            done = page.locator("#done-list li")
            expect(done).to_have_count(1, timeout=WAIT_MS)
            expect(done.first.locator(".text")).to_contain_text(f"Q: {hostile}")
            assert page.locator("#done-list img").count() == 0
            assert page.evaluate("window.__xss") is None
            assert errors == []
        finally:
            context.close()
