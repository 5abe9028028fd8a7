"""``GET /api/client-config`` and ``/genie`` over plain HTTP on both apps (no browser), and
the page's own files: vendored client checksum, no CDN, the notification sound.
"""

from __future__ import annotations

import hashlib
import re
from http.cookies import SimpleCookie
from pathlib import Path

import httpx
import pytest

from config import STATIC_DIR, Settings
from tests.audio import duration, rms
from tests.browser import gong
from tests.browser.pagekit import decision_counts, fastapi
from wire import rollout

COOKIE = rollout.DEFAULT_COOKIE
PAGE_FILES = [
    STATIC_DIR / "genie.html",
    STATIC_DIR / "js" / "genie-client.js",
    STATIC_DIR / "js" / "genie-page.js",
    STATIC_DIR / "css" / "genie.css",
]


def cookie_of(response: httpx.Response) -> SimpleCookie:
    jar = SimpleCookie()
    jar.load(response.headers["set-cookie"])
    return jar


def test_fastapi_decides_sets_the_cookie_and_counts() -> None:
    with fastapi(rollout_ws_percent=50) as srv, httpx.Client(base_url=srv.url) as http:
        first = http.get("/api/client-config")
        assert first.status_code == 200 and first.headers["cache-control"] == "no-store"
        body = first.json()
        assert body["server"] == "fastapi" and body["reason"] == "new_bucket"
        assert body["transports"] == ["socketio", "ws"] and body["ws_percent"] == 50
        morsel = cookie_of(first)[COOKIE]
        assert morsel.value == str(body["bucket"])
        assert morsel["httponly"] and morsel["samesite"].lower() == "lax"
        assert int(morsel["max-age"]) == rollout.DEFAULT_COOKIE_MAX_AGE
        # httpx keeps the cookie: the same client stays where it was put.
        again = [http.get("/api/client-config").json() for _ in range(3)]
        assert {(b["transport"], b["reason"], b["bucket"]) for b in again} == {
            (body["transport"], "cookie", body["bucket"])
        }
        forced = http.get("/api/client-config", params={"transport": "ws"}).json()
        assert (forced["transport"], forced["reason"]) == ("ws", "override")
        counts = decision_counts(srv.url)
        assert counts == {
            (body["transport"], "new_bucket"): 1,
            (body["transport"], "cookie"): 3,
            ("ws", "override"): 1,
        }
        page = http.get("/genie")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")


def test_fastapi_kill_switch_and_skeletal_stage() -> None:
    with fastapi(rollout_ws_percent=100, rollout_kill_switch=True) as srv:
        body = httpx.get(f"{srv.url}/api/client-config?transport=ws").json()
        assert (body["transport"], body["reason"], body["kill_switch"]) == (
            "socketio",
            "kill_switch",
            True,
        )
    with fastapi(rollout_ws_percent=100, stage="skeletal") as srv:
        body = httpx.get(f"{srv.url}/api/client-config").json()
        assert (body["transport"], body["reason"]) == ("socketio", "ws_unavailable")
        assert body["transports"] == ["socketio"] and body["ws_path"] is None


def test_flask_always_socketio_and_keeps_the_bucket() -> None:
    from flask_app.app import create_app

    settings = Settings(_env_file=None, rollout_ws_percent=100)
    client = create_app(settings).test_client()
    client.set_cookie(COOKIE, "12")
    response = client.get("/api/client-config?transport=ws")
    body = response.get_json()
    assert (body["server"], body["transport"], body["reason"]) == (
        "flask",
        "socketio",
        "ws_unavailable",
    )
    assert body["bucket"] == 12 and body["transports"] == ["socketio"]
    assert f"{COOKIE}=12" in response.headers["Set-Cookie"]
    page = client.get("/genie")
    assert page.status_code == 200 and page.mimetype == "text/html"


def test_vendored_socketio_matches_versions_md() -> None:
    versions = (STATIC_DIR / "vendor" / "VERSIONS.md").read_text()
    row = re.search(r"`socket.io.min.js` .*?\| (4\.\d+\.\d+) \| `([0-9a-f]{64})`", versions)
    assert row, "VERSIONS.md lists socket.io.min.js with a version and a sha256"
    data = (STATIC_DIR / "vendor" / "socket.io.min.js").read_bytes()
    assert hashlib.sha256(data).hexdigest() == row.group(2)
    assert f"Socket.IO v{row.group(1)}" in data[:200].decode()


@pytest.mark.parametrize("path", PAGE_FILES, ids=lambda p: p.name)
def test_page_loads_nothing_from_elsewhere(path: Path) -> None:
    text = path.read_text()
    assert not re.search(r"https?://|(?<![:\w])//[\w.-]+\.\w", text), f"{path} names a host"


def test_gong_sound() -> None:
    data = gong.OUT.read_bytes()
    assert abs(duration(data) - gong.SECONDS) < 0.15
    assert rms(data) > 500
