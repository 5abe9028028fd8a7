"""Web security of the FastAPI server (full stage), over the wire against real servers:
cross-site requests, security headers, CORS, path traversal, CRLF, tokens in logs.

The server lists one trusted origin, so loopback pages of other ports are *not* trusted
(with an empty list they would be, the dev default of ``OriginPolicy``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from urllib.parse import quote

import anyio
import httpx
import jwt
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from tests.flask_app.launch import flask_server
from tests.servers import ROOT, ThreadServer
from wire.log_redaction import install, redact

pytestmark = pytest.mark.timeout(120)

TRUSTED = "http://trusted.example"
EVIL = "http://evil.example"
QUEUES = ("todo", "run", "done", "dead")
PAGES = ("/genie", "/stream-player", "/static/genie.html", "/static/stream-player.html")
SECRET_CONTENT = b"class Settings"  # in config.py, outside static/


@pytest.fixture(scope="module")
def server() -> Iterator[ThreadServer]:
    # No query rate limit: the tests push more questions than a person would.
    settings = {"allowed_origins": [TRUSTED], "rate_limit_queries": 0, "ws_close_timeout": 1}
    with ThreadServer(**settings) as srv:
        yield srv


@pytest.fixture(scope="module")
def http(server: ThreadServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30.0) as client:
        yield client


def listed(http: httpx.Client, marker: str) -> bool:
    """Whether a question containing ``marker`` is in any queue."""
    return any(
        marker in item
        for name in QUEUES
        for item in http.get(f"/get_queue/{name}").json()[f"{name}_jobs"]
    )


def wait_done(http: httpx.Client, marker: str) -> str:
    """The id of the done job whose question holds ``marker``."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        for item in http.get("/get_queue/done").json()["done_jobs"]:
            if marker in item:
                return item.split("id='", 1)[1].split("'", 1)[0]
        time.sleep(0.05)
    raise AssertionError(f"{marker!r} never reached done")


def raw_request(port: int, target: str, method: str = "GET", head: str = "") -> bytes:
    """The raw response to a request sent byte for byte (no client normalises it)."""

    async def send() -> bytes:
        stream = await anyio.connect_tcp("127.0.0.1", port)
        async with stream:
            request = f"{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{head}"
            await stream.send(f"{request}Content-Length: 0\r\nConnection: close\r\n\r\n".encode())
            data = b""
            with anyio.move_on_after(10):
                while True:
                    try:
                        data += await stream.receive()
                    except (anyio.EndOfStream, anyio.BrokenResourceError):
                        break
            return data

    return anyio.run(send)


def status_of(raw: bytes) -> int:
    return int(raw.split(b" ", 2)[1])


def header_names(raw: bytes) -> list[bytes]:
    head = raw.split(b"\r\n\r\n", 1)[0]
    return [line.split(b":", 1)[0].strip().lower() for line in head.split(b"\r\n")[1:]]


# --- cross-site requests (CSRF) -----------------------------------------------------------

REFUSED = [
    pytest.param({"Sec-Fetch-Site": "cross-site"}, id="img-no-referrer"),
    pytest.param({"Sec-Fetch-Site": "cross-site", "Referer": f"{EVIL}/page"}, id="img"),
    pytest.param({"Sec-Fetch-Site": "cross-site", "Origin": EVIL}, id="fetch"),
    pytest.param({"Sec-Fetch-Site": "same-site", "Origin": "http://localhost:1"}, id="same-site"),
    pytest.param({"Referer": f"{EVIL}/page"}, id="old-browser-referer"),
    pytest.param({"Origin": "null"}, id="sandboxed-frame"),
]
ALLOWED = [
    pytest.param({}, id="script-no-browser-headers"),
    pytest.param({"Sec-Fetch-Site": "same-origin"}, id="same-origin"),
    pytest.param({"Sec-Fetch-Site": "none"}, id="typed-url"),
    pytest.param({"Sec-Fetch-Site": "cross-site", "Origin": TRUSTED}, id="listed-origin"),
    pytest.param({"Referer": "SELF/genie"}, id="old-browser-own-page"),
]


@pytest.mark.parametrize("headers", REFUSED)
def test_cross_site_push_is_refused_and_queues_nothing(
    http: httpx.Client, headers: dict[str, str]
) -> None:
    marker = f"csrf-{time.monotonic_ns()}"
    response = http.get(f"/push?question={marker}", headers=headers)
    assert response.status_code == 403, response.text
    assert response.json()["code"] == "cross_site_request"
    assert "refused" in response.json()["message"]
    assert not listed(http, marker)


@pytest.mark.parametrize("headers", ALLOWED)
def test_same_site_and_scripted_push_work(
    http: httpx.Client, server: ThreadServer, headers: dict[str, str]
) -> None:
    headers = {k: v.replace("SELF", server.url) for k, v in headers.items()}
    marker = f"ok-{time.monotonic_ns()}"
    response = http.get(f"/push?question={marker}", headers=headers)
    assert response.status_code == 200, response.text
    assert listed(http, marker)


def test_cross_site_delete_is_refused_and_keeps_the_job(http: httpx.Client) -> None:
    marker = f"keep-{time.monotonic_ns()}"
    assert http.get(f"/push?question={marker}").status_code == 200
    job_id = wait_done(http, marker)
    evil = {"Sec-Fetch-Site": "cross-site", "Origin": EVIL}
    refused = http.get(f"/delete-snapshot/{job_id}", headers=evil)
    assert refused.status_code == 403 and refused.json()["code"] == "cross_site_request"
    assert listed(http, marker)
    own = http.get(f"/delete-snapshot/{job_id}", headers={"Sec-Fetch-Site": "same-origin"})
    assert own.status_code == 200, own.text
    assert not listed(http, marker)


def test_unsafe_methods_are_guarded_and_reads_are_not(http: httpx.Client) -> None:
    evil = {"Sec-Fetch-Site": "cross-site", "Origin": EVIL}
    # A cross-site HTML form can POST without a preflight: the old scene flow would run.
    form = http.post("/api/tts/generate/1", headers=evil)
    assert form.status_code == 403 and form.json()["code"] == "cross_site_request"
    # Reads change nothing, and without CORS the other site cannot read the answer.
    assert http.get("/get_queue/todo", headers=evil).status_code == 200
    assert http.get("/health", headers=evil).status_code == 200


def test_mvp_stage_has_no_guard() -> None:
    with ThreadServer(stage="mvp") as srv:
        evil = {"Sec-Fetch-Site": "cross-site", "Origin": EVIL}
        response = httpx.get(f"{srv.url}/push?question=hi", headers=evil, timeout=30)
        assert response.status_code == 200, response.text


# --- security headers -------------------------------------------------------------------


class InlineCode(HTMLParser):
    """Collects what a CSP without 'unsafe-inline' would block in a page."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {name for name, _ in attrs}
        if tag == "style" or (tag == "script" and "src" not in names):
            self.found.append(f"<{tag}> inline")
        self.found += [f"{tag} {name}=" for name in names if name.startswith("on")]
        self.found += [f"{tag} style=" for name in names if name == "style"]
        if any(value and value.strip().lower().startswith("javascript:") for _, value in attrs):
            self.found.append(f"{tag} javascript: URL")


@pytest.mark.parametrize("path", PAGES)
def test_pages_have_a_strict_csp_and_no_inline_code(http: httpx.Client, path: str) -> None:
    response = http.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    csp = {
        part.split()[0]: part.split()[1:]
        for part in response.headers["content-security-policy"].split(";")
    }
    assert csp["script-src"] == ["'self'"] and csp["style-src"] == ["'self'"]
    assert csp["frame-ancestors"] == ["'none'"] and csp["object-src"] == ["'none'"]
    assert csp["connect-src"] == ["'self'"]  # covers the page's own ws:// (CSP Level 3)
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "same-origin"
    parser = InlineCode()
    parser.feed(response.text)
    assert parser.found == []


def test_every_response_has_the_baseline_headers(http: httpx.Client) -> None:
    responses = [
        http.get("/health"),
        http.get("/push?question=headers"),  # text/plain echoing user text
        http.get("/get_queue/todo"),
        http.get("/static/js/genie-page.js"),
        http.get("/static/no-such-file"),
        http.get("/push?question=x", headers={"Sec-Fetch-Site": "cross-site"}),  # refused
        http.get("/socket.io/?EIO=4&transport=polling"),
        http.get("/api/get-audio", params={"msg": "hi"}),
    ]
    for response in responses:
        where = f"{response.request.url.path} {response.status_code}"
        assert response.headers.get("x-content-type-options") == "nosniff", where
        assert response.headers.get("referrer-policy") == "same-origin", where
        assert response.headers.get("x-frame-options") == "DENY", where
        assert "frame-ancestors 'none'" in response.headers.get("content-security-policy", "")


def test_docs_page_keeps_working_without_the_page_csp(http: httpx.Client) -> None:
    # Swagger UI needs its CDN and an inline script: only framing is restricted there.
    response = http.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-security-policy"] == "frame-ancestors 'none'"


# --- CORS: none for the HTTP API; Engine.IO follows GENIE_ALLOWED_ORIGINS -------------------


@pytest.mark.parametrize("origin", [TRUSTED, EVIL])
def test_http_api_sends_no_cors_headers(http: httpx.Client, origin: str) -> None:
    # There is no CORS setting for the HTTP API: even a listed origin gets none.
    assert (
        "access-control-allow-origin" not in http.get("/health", headers={"Origin": origin}).headers
    )
    preflight = http.options(
        "/api/v1/tts",
        headers={"Origin": origin, "Access-Control-Request-Method": "POST"},
    )
    assert not [name for name in preflight.headers if name.startswith("access-control-")]


def test_socketio_cors_only_for_allowed_origins(http: httpx.Client) -> None:
    handshake = "/socket.io/?EIO=4&transport=polling"
    listed_origin = http.get(handshake, headers={"Origin": TRUSTED})
    assert listed_origin.status_code == 200
    assert listed_origin.headers["access-control-allow-origin"] == TRUSTED
    other = http.get(handshake, headers={"Origin": EVIL})
    assert other.status_code == 403
    assert "access-control-allow-origin" not in other.headers


def test_an_abandoned_socketio_handshake_does_not_hold_the_shutdown() -> None:
    """Engine.IO waits for a polling client to read its CLOSE packet; one that never polls
    again held every shutdown for its ping timeout (45 s), a stall any page could cause."""
    srv = ThreadServer(ws_close_timeout=1).start()
    try:
        assert httpx.get(f"{srv.url}/socket.io/?EIO=4&transport=polling", timeout=30).is_success
    finally:
        srv.stop()  # joins the server thread for at most 20 s
    assert not srv._thread.is_alive()  # uvicorn's serve() returned: the shutdown ended


# --- path traversal and hostile ids -------------------------------------------------------

STATIC_TRAVERSALS = [
    "/static/../config.py",
    "/static/%2e%2e/config.py",
    "/static/..%2fconfig.py",
    "/static/%2e%2e%2fconfig.py",
    "/static/%252e%252e%252fconfig.py",  # double encoding
    "/static/..%5cconfig.py",  # backslash
    "/static/..\\config.py",
    "/static/%c0%ae%c0%ae/config.py",  # overlong UTF-8 dots
    "/static/vendor/../../config.py",
    f"/static/{ROOT / 'config.py'}",  # an absolute path
    "/static/%2fetc%2fpasswd",
    "/static/%00",  # NUL: was a 500
    "/static/genie.html%00.js",  # was a 500
    "/static/" + "a" * 5000,  # name too long for the file system: was a 500
    "/static/.",
    "/static/css",
]
HOSTILE_IDS = [
    "..%2f..%2fconfig.py",
    "%2e%2e%2f%2e%2e%2fconfig.py",
    "..%5c..%5cconfig.py",
    "%252e%252e%252f",
    "%00",
    "%0d%0aSet-Cookie:%20evil=1",
    "%ff%fe",
    "a" * 4000,
    "99999999999999999999999",  # beyond SQLite's integers (a 500 before the SceneId type)
    "-1",
]
ID_ROUTES = [
    ("GET", "/get-answer/{}"),
    ("GET", "/delete-snapshot/{}"),
    ("GET", "/get_queue/{}"),
    ("GET", "/api/scenes/{}"),
    ("GET", "/api/tts/audio/{}/chunk/1"),
    ("GET", "/api/tts/audio/1/chunk/{}"),
    ("POST", "/api/tts/generate/{}"),
    ("POST", "/api/tts/generate-ws/{}"),
]


@pytest.mark.parametrize("target", STATIC_TRAVERSALS, ids=lambda t: t[:40] + f"..{len(t)}")
def test_static_never_serves_outside_static(server: ThreadServer, target: str) -> None:
    raw = raw_request(server.port, target)
    assert status_of(raw) in (400, 404), raw[:300]
    assert SECRET_CONTENT not in raw


def test_every_id_in_a_path_is_refused_cleanly(server: ThreadServer) -> None:
    failures = []
    for method, route in ID_ROUTES:
        for hostile in HOSTILE_IDS:
            raw = raw_request(server.port, route.format(hostile), method)
            if not 400 <= status_of(raw) < 500 or b"set-cookie" in header_names(raw):
                failures.append((method, route, hostile, raw[:200]))
            assert SECRET_CONTENT not in raw
    assert failures == []


@pytest.mark.parametrize(
    "session",
    ["..%2f..%2fconfig.py", "%2e%2e", "%00", "%0d%0aX:%201", "a" * 2000],
    ids=lambda t: t[:20] + f"..{len(t)}",
)
def test_scene_socket_ids_are_refused_cleanly(server: ThreadServer, session: str) -> None:
    if "%2f" in session:  # decoded, it splits the path: no such route, handshake refused
        with pytest.raises(InvalidStatus) as refused:
            connect(f"{server.ws_url}/ws/tts/{session}", open_timeout=10)
        assert refused.value.response.status_code == 403
        return
    with connect(f"{server.ws_url}/ws/tts/{session}", open_timeout=10) as ws:
        frame = json.loads(ws.recv(timeout=10))
        assert frame["code"] == "session_not_found", frame
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=10)
    assert ws.close_code == 4404


# --- CRLF: text that ends up in URLs and headers --------------------------------------------


def test_root_redirect_keeps_crlf_encoded(server: ThreadServer) -> None:
    raw = raw_request(server.port, "/?transport=ws%0d%0aSet-Cookie:%20evil=1")
    assert status_of(raw) == 302
    assert b"set-cookie" not in header_names(raw)
    assert b"location: /genie?transport=ws%0d%0aset-cookie:%20evil=1\r\n" in raw.lower()


def test_raw_crlf_in_the_request_line_injects_nothing(server: ThreadServer) -> None:
    raw = raw_request(server.port, "/?a\r\nSet-Cookie: evil=1")
    assert raw == b"" or status_of(raw) < 500
    assert b"set-cookie" not in header_names(raw)


def test_crlf_in_a_question_stays_encoded_in_its_audio_urls(server: ThreadServer) -> None:
    # The offline handler echoes a question it cannot answer, so the answer's audio URL
    # is built from the hostile text.
    hostile = "zork\r\nSet-Cookie: evil=1\r\n\r\n<b>x</b>"
    with connect(f"{server.ws_url}/ws", open_timeout=10) as ws:
        ws.send(json.dumps({"type": "query", "text": hostile}))
        urls: list[str] = []
        deadline = time.monotonic() + 20
        while not any("zork" in url.lower() for url in urls) and time.monotonic() < deadline:
            frame = json.loads(ws.recv(timeout=20))
            if frame.get("type") == "audio_update":
                urls.append(frame["audioURL"])
    answer = next(url for url in urls if "zork" in url.lower())
    assert not any(c in answer for c in "\r\n<> "), answer
    assert quote("\r\n", safe="") in answer
    response = httpx.get(f"{server.url}{answer}", timeout=30)
    assert response.status_code == 200 and response.headers["content-type"] == "audio/mpeg"
    assert "set-cookie" not in response.headers


def test_hostile_rollout_cookie_is_not_echoed(http: httpx.Client) -> None:
    cookie = "genie_rollout_bucket=7%0d%0aSet-Cookie:%20evil=1"
    response = http.get("/api/client-config", headers={"Cookie": cookie})
    assert response.status_code == 200
    assert [c for c in response.headers.get_list("set-cookie") if "evil" in c] == []


# --- tokens never reach the logs -----------------------------------------------------------


def secrets(count: int) -> list[str]:
    """JWT-shaped values, each unique: a leak of any part of one is visible."""
    return [jwt.encode({"sub": f"user-{i}", "n": time.time_ns()}, "k" * 32) for i in range(count)]


@contextlib.contextmanager
def uvicorn_records(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """uvicorn's loggers at info, as ``python -m fastapi_app`` runs them, straight into
    caplog: an in-process uvicorn started with its default log config (another test's)
    turns their propagation off, which would hide them from caplog's root handler."""
    loggers = [logging.getLogger(name) for name in ("uvicorn.access", "uvicorn.error")]
    saved = [(logger.level, logger.propagate) for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.INFO)
        logger.propagate = False  # each record once, through the handler below
        logger.addHandler(caplog.handler)
    try:
        yield
    finally:
        for logger, (level, propagate) in zip(loggers, saved, strict=True):
            logger.removeHandler(caplog.handler)
            logger.setLevel(level)
            logger.propagate = propagate


def test_fastapi_logs_redact_tokens(
    server: ThreadServer, http: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    s = secrets(7)
    with uvicorn_records(caplog):
        http.get(f"/health?token={s[0]}")
        http.get(f"/genie?transport=ws&token={s[1]}", headers={"Authorization": f"Bearer {s[2]}"})
        http.get(f"/push?question=hi&token={s[3]}")
        http.get(f"/socket.io/?EIO=4&transport=polling&token={s[4]}")
        http.get(f"/health?%74oken={s[5]}")  # the server decodes the name: so do we
        with connect(f"{server.ws_url}/ws?token={s[6]}", open_timeout=10) as ws:
            ws.recv(timeout=10)  # connection_established: the handshake was logged
        deadline = time.monotonic() + 5
        while caplog.text.count("oken=[redacted]") < 6 and time.monotonic() < deadline:
            time.sleep(0.05)  # the access line of the last request is written after it
        log = caplog.text
    assert log.count("oken=[redacted]") == 6, log  # one per request above
    assert '"WebSocket /ws?token=[redacted]"' in log, log
    leaked = [i for i, secret in enumerate(s) for part in secret.split(".") if part in log]
    assert leaked == [], log


def test_flask_request_lines_redact_tokens() -> None:
    secret = secrets(1)[0]
    with flask_server("threading", settings={"log_level": "info"}) as srv:
        httpx.get(f"{srv.url}/health?token={secret}", timeout=30)
        deadline = time.monotonic() + 5
        while "token=[redacted]" not in srv.log_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        log = srv.log_text()
    assert "GET /health?token=[redacted]" in log, log[-3000:]
    assert all(part not in log for part in secret.split("."))


def test_authorization_values_are_redacted_in_any_log_format(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A deployment's access format may log headers; the filter the servers install sees
    every uvicorn record, whatever it holds."""
    install()
    secret = secrets(1)[0]
    log = logging.getLogger("uvicorn.access")
    with uvicorn_records(caplog):
        log.info('%s "%s" Authorization: %s', "127.0.0.1", "GET / HTTP/1.1", f"Bearer {secret}")
        log.info("headers=%s", {"authorization": f"Basic {secret[:20]}", "host": "x"})
        log.info("scope %s", {"query_string": f"a=1&token={secret}".encode()})
    text = caplog.text
    assert text.count("[redacted]") == 3, text
    assert "Authorization: Bearer [redacted]" in text and "host" in text
    assert all(part not in text for part in secret.split(".")), text


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('"GET /a?x=1&token=abc.def HTTP/1.1" 200', '"GET /a?x=1&token=[redacted] HTTP/1.1" 200'),
        ('"WebSocket /ws?access_token=abc"', '"WebSocket /ws?access_token=[redacted]"'),
        ("GET /a?%74oken=abc&b=2", "GET /a?%74oken=[redacted]&b=2"),
        ("GET /a?tokens=1&mytoken=2&token=", "GET /a?tokens=1&mytoken=2&token="),
        ("Authorization: Bearer abc", "Authorization: Bearer [redacted]"),
        ("(b'authorization', b'Basic eHl6')", "(b'authorization', b'Basic [redacted]')"),
        (
            '{"type": "auth", "token": "eyJhbGci.eyJzdWIi.c2ln"}',
            '{"type": "auth", "token": "[redacted]"}',
        ),
        ("no secret here: a=b", "no secret here: a=b"),
    ],
)
def test_redact_hides_values_and_keeps_the_line(line: str, expected: str) -> None:
    assert redact(line) == expected
