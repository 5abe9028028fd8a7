"""``/`` and ``/metrics`` on both servers (real processes on loopback): ``/`` sends a
browser to the Genie page, and ``/metrics`` names the same things the same way
(``queues.metrics``), on the in-process queues and on a Redis fleet.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from config import Settings
from tests.flask_app.launch import ServerProcess, server_of
from tests.redis_server import running_redis

SERVERS = ("flask-threading", "flask-gevent", "fastapi")
# Series both servers export (queues.metrics), and process-wide ones of the default registry.
SHARED = {"genie_connections", "genie_jobs", "genie_queue_depth", "genie_jobs_running_here"}
FLEET = {"genie_fleet_up", "genie_fleet_messages_received", "genie_fleet_takeovers"}
PROCESS = {"process_cpu_seconds", "process_resident_memory_bytes", "genie_tts_cache_hits"}
DEADLINE = 30.0

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def start(kind: str, settings: dict[str, str] | None = None) -> ServerProcess:
    return server_of(kind, settings=settings)


def scrape(url: str) -> tuple[set[str], Samples]:
    """(family names, {(sample name, sorted labels): value}) of ``GET /metrics``."""
    response = httpx.get(f"{url}/metrics", timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    families = list(text_string_to_metric_families(response.text))
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value for f in families for s in f.samples
    }
    return {f.name for f in families}, samples


def wait_for(url: str, key: tuple[str, tuple[tuple[str, str], ...]], value: float) -> Samples:
    deadline = time.monotonic() + DEADLINE
    while True:
        samples = scrape(url)[1]
        if samples.get(key) == value or time.monotonic() > deadline:
            assert samples.get(key) == value, (key, samples.get(key))
            return samples
        time.sleep(0.1)


DONE = ("genie_jobs", (("state", "done"),))


@pytest.fixture(scope="module", params=SERVERS)
def server(request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    with start(request.param) as running:
        yield running


@pytest.mark.parametrize("query", ["", "?transport=ws&q=a%20b"])
def test_root_sends_a_browser_to_the_genie_page(server: ServerProcess, query: str) -> None:
    response = httpx.get(f"{server.url}/{query}", timeout=10)
    assert response.status_code == 302
    assert response.headers["location"] == f"/genie{query}"
    page = httpx.get(f"{server.url}/{query}", follow_redirects=True, timeout=10)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "genie-page.js" in page.text


def test_metrics_count_jobs_and_connections(server: ServerProcess) -> None:
    names, samples = scrape(server.url)
    assert names >= SHARED | PROCESS, sorted(names)
    assert not names & FLEET  # in-process queues: no fleet
    assert ("genie_connections", (("transport", "socketio"),)) in samples
    assert samples[DONE] == 0
    push = httpx.get(f"{server.url}/push", params={"question": "what is 2 plus 2"}, timeout=10)
    assert push.status_code == 200, push.text
    samples = wait_for(server.url, DONE, 1)
    assert samples[("genie_queue_depth", ())] == 0
    assert samples[("genie_jobs_running_here", ())] == 0
    assert samples[("genie_jobs", (("state", "dead"),))] == 0


def test_flask_series_are_named_as_fastapi_names_them() -> None:
    with start("flask-threading") as flask, start("fastapi") as fastapi:
        flask_names, _ = scrape(flask.url)
        fastapi_names, _ = scrape(fastapi.url)
    assert flask_names <= fastapi_names, flask_names - fastapi_names


def test_fleet_series_on_redis() -> None:
    with running_redis() as redis, contextlib.ExitStack() as stack:
        settings = {"redis_url": redis.url, "redis_channel": "metrics-test"}
        servers = [stack.enter_context(start(kind, settings)) for kind in SERVERS]
        push = httpx.get(f"{servers[0].url}/push", params={"question": "what is 3 plus 3"})
        assert push.status_code == 200, push.text
        for srv in servers:
            # The fleet's counts: one job done, whichever process answered it.
            samples = wait_for(srv.url, DONE, 1)
            names = scrape(srv.url)[0]
            assert names >= SHARED | FLEET, (srv.name, sorted(names))
            assert samples[("genie_fleet_up", ())] == 1, srv.name
            assert samples[("genie_fleet_takeovers_total", ())] == 0, srv.name
            received = ("genie_fleet_messages_received_total", (("kind", "events"),))
            assert samples[received] >= 1, (srv.name, samples)


def test_flask_apps_in_one_process_each_have_their_own_metrics() -> None:
    """Many apps per process (as in tests): no name is registered twice."""
    from flask_app.app import create_app, runtime

    apps = [create_app(Settings(_env_file=None, log_level="warning")) for _ in range(2)]
    for app in apps:
        runtime(app).start()
    try:
        for app in apps:
            response = app.test_client().get("/metrics")
            assert response.status_code == 200
            names = {f.name for f in text_string_to_metric_families(response.text)}
            assert names >= SHARED
    finally:
        for app in apps:
            runtime(app).stop()
    disabled = create_app(Settings(_env_file=None, metrics_enabled=False))
    assert disabled.test_client().get("/metrics").status_code == 404
