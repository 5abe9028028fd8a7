"""The login page over the wire: the page redirects to it, a wrong password is refused
in plain words, a right one sets a signed HttpOnly SameSite=Strict cookie that the
legacy routes, /ws, /ws/tts and Socket.IO accept and a tampered one they refuse;
``next`` never leaves the site; logout clears the cookie; attempts are limited per
address. The user entry is made by ``python -m fastapi_app.auth.passwords``, as documented.

Each test talks from its own address (``X-Forwarded-For``: uvicorn trusts it from
127.0.0.1), so the per-address login limit of one test never touches another.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from http.cookies import SimpleCookie
from typing import Any

import httpx
import pytest

from fastapi_app.auth.login import local_path
from fastapi_app.auth.passwords import make_hash
from fastapi_app.auth.security import SESSION_COOKIE, TokenVerifier
from fastapi_app.main import create_app
from tests.security.transports import TRANSPORTS, admitted
from tests.servers import ROOT, ThreadServer, server_settings

pytestmark = pytest.mark.anyio

SECRET = "login-suite-secret-".ljust(64, "k")
PASSWORD = "open sesame, twice"
TTL = 3600


@pytest.fixture(scope="module")
def server() -> Iterator[ThreadServer]:
    entry = subprocess.run(
        [sys.executable, "-m", "fastapi_app.auth.passwords", "alice", "--iterations", "1000"],
        input=f"{PASSWORD}\n", capture_output=True, text=True, check=True, cwd=ROOT,
    ).stdout.strip()  # fmt: skip
    settings = {"jwt_secret": SECRET, "login_users": [entry], "login_session_ttl": TTL}
    with ThreadServer(stage="full", rate_limit_login_burst=3, **settings) as running:
        yield running


def client(server: ThreadServer, address: str, **headers: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=server.url, headers={"X-Forwarded-For": address, **headers}, timeout=15
    )


async def log_in(
    http: httpx.AsyncClient, password: str = PASSWORD, user: str = "alice", **form: str
) -> httpx.Response:
    return await http.post("/login", data={"user": user, "password": password, **form})


def session_cookie(response: httpx.Response) -> Any:
    cookie = SimpleCookie()
    cookie.load(response.headers["set-cookie"])
    return cookie[SESSION_COOKIE]


def tampered(token: str) -> str:
    head, body, sig = token.split(".")
    return f"{head}.{body}.{sig[:10]}{'A' if sig[10] != 'A' else 'B'}{sig[11:]}"


async def test_the_page_sends_a_visitor_without_a_session_to_the_login_form(
    server: ThreadServer,
) -> None:
    expired = TokenVerifier(SECRET).issue("alice", ttl=-120)
    async with client(server, "10.0.0.1") as http:
        for cookie in (None, tampered(TokenVerifier(SECRET).issue("alice")), expired):
            headers = {"Cookie": f"{SESSION_COOKIE}={cookie}"} if cookie else None
            page = await http.get("/genie", params={"transport": "socketio"}, headers=headers)
            assert page.status_code == 303
            assert page.headers["location"] == "/login?next=%2Fgenie%3Ftransport%3Dsocketio"
        form = await http.get(page.headers["location"])
        api = await http.get("/push", params={"question": "hi"})
    assert form.status_code == 200 and form.headers["content-type"].startswith("text/html")
    assert '<form id="login" class="login-form" method="post" action="/login">' in form.text
    assert 'name="next" value="/genie?transport=socketio"' in form.text
    assert "<script" not in form.text and "style=" not in form.text  # CSP script-src 'self'
    assert api.status_code == 401 and api.json()["code"] == "missing_token"


async def test_a_wrong_password_or_user_is_refused_in_plain_words(server: ThreadServer) -> None:
    async with client(server, "10.0.0.2") as http:
        wrong = [await log_in(http, "guess"), await log_in(http, PASSWORD, user="mallory")]
    for response in wrong:
        assert response.status_code == 401
        assert "Wrong user name or password." in response.text
        assert "set-cookie" not in response.headers


async def test_a_login_sets_a_signed_httponly_strict_session_cookie(server: ThreadServer) -> None:
    async with client(server, "10.0.0.3") as http:
        response = await log_in(http, next="/genie?transport=socketio")
        page = await http.get(response.headers["location"])  # the client keeps the cookie
        async with client(server, "10.0.0.3", **{"X-Forwarded-Proto": "https"}) as https:
            secure = session_cookie(await log_in(https))
    assert response.status_code == 303
    assert response.headers["location"] == "/genie?transport=socketio"
    cookie = session_cookie(response)
    assert cookie["httponly"] is True and cookie["samesite"] == "strict"
    assert cookie["path"] == "/" and cookie["max-age"] == str(TTL) and not cookie["secure"]
    assert secure["secure"] is True  # over https (here: behind a proxy that says so)
    claims = TokenVerifier(SECRET).verify(cookie.value)  # signed with the server's secret
    assert claims["sub"] == "alice" and claims["exp"] - claims["iat"] == TTL
    assert page.status_code == 200 and "genie-page.js" in page.text


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_every_way_in_takes_the_cookie_and_refuses_a_tampered_one(
    server: ThreadServer, transport: str
) -> None:
    async with client(server, f"10.0.1.{TRANSPORTS.index(transport)}") as http:
        cookie = session_cookie(await log_in(http)).value
    assert await admitted(transport, server, cookie=cookie)
    assert not await admitted(transport, server, cookie=tampered(cookie))


async def test_logout_clears_the_cookie(server: ThreadServer) -> None:
    async with client(server, "10.0.0.4") as http:
        await log_in(http)
        assert (await http.get("/get_queue/done")).status_code == 200
        response = await http.post("/logout")
        after = await http.get("/get_queue/done")
    assert response.status_code == 303 and response.headers["location"] == "/login"
    cleared = session_cookie(response)
    assert cleared.value == "" and cleared["max-age"] == "0" and cleared["httponly"] is True
    assert after.status_code == 401


async def test_login_attempts_are_limited_per_address(server: ThreadServer) -> None:
    async with client(server, "10.0.0.5") as attacker, client(server, "10.0.0.6") as other:
        guesses = [await log_in(attacker, f"guess {n}") for n in range(3)]
        limited = await log_in(attacker)  # even the right password waits now
        elsewhere = await log_in(other)
    assert [r.status_code for r in guesses] == [401, 401, 401]
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    assert "Too many login attempts; try again in" in limited.text
    assert "set-cookie" not in limited.headers
    assert elsewhere.status_code == 303


@pytest.mark.parametrize(
    ("settings", "error"),
    [
        ({"jwt_secret": SECRET, "login_users": ["bob:hunter2"]}, "user 'bob': not a pbkdf2"),
        ({"login_users": ["bob:" + str(make_hash("x", iterations=1))]}, "auth is off"),
    ],
)
def test_bad_login_settings_stop_the_start(settings: dict[str, Any], error: str) -> None:
    # A plain password where a hash belongs, or users on an open server someone thinks locked.
    with pytest.raises(ValueError, match=error):
        create_app(server_settings(stage="full", **settings))


@pytest.mark.parametrize(
    "target",
    ["https://evil.example/", "//evil.example/x", "/\\evil.example", "/\t/evil.example",
     "javascript:alert(1)", "evil.example", "", None],
)  # fmt: skip
def test_next_never_leaves_the_site(target: str | None) -> None:
    assert local_path(target) == "/genie"
    assert local_path("/genie?transport=socketio") == "/genie?transport=socketio"
