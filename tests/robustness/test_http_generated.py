"""Generated HTTP input: schemathesis against every stage's ``/openapi.json`` (CI size).

``bench.robustness.http.run`` at a small, seeded scale: every operation the stage's
schema lists (a route added later is fuzzed without touching this file) gets positive
and negative cases from a real server, and the scene links are followed. Then the
inputs that found bugs, replayed against the schema one by one, so a regression fails
here whether or not the generator happens to draw them again.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis

from bench.robustness.http import FUZZ_SETTINGS, STATEFUL, run
from fastapi_app.main import create_app
from tests.servers import ThreadServer, server_settings

SEED = 20_260_601
# Cases per operation and mode. Skeletal answers most routes with the sample or a 503
# "no_speech", so fewer cases explore it as well.
SCALE = {"skeletal": 4, "mvp": 8, "full": 8}
JSON = {"Content-Type": "application/json"}
TOO_BIG = 2**64  # past SQLite's 64-bit INTEGER


@contextlib.contextmanager
def in_process(stage: str) -> Iterator[str]:
    # The same real uvicorn server, in a thread: no second ~3 s import of the app.
    with ThreadServer(stage=stage, **FUZZ_SETTINGS) as server:
        yield server.url


def schema_operations(stage: str) -> set[str]:
    paths = create_app(server_settings(stage=stage)).api.openapi()["paths"]
    return {f"{method.upper()} {path}" for path, item in paths.items() for method in item}


@pytest.mark.parametrize("stage", list(SCALE))
def test_generated_input_finds_no_failure(stage: str) -> None:
    section = run(SCALE[stage], (stage,), SEED, progress=lambda _: None, serve=in_process)
    assert not section.failures, "\n\n".join(section.failures)
    cases = {row[1]: int(row[2]) for row in section.rows}
    operations = schema_operations(stage)
    assert operations <= cases.keys(), f"not fuzzed: {operations - cases.keys()}"
    assert all(cases[label] >= 1 for label in operations)
    if stage != "skeletal":  # there a scene is never created (503), so no link to follow
        assert section.figures[stage]["links_followed"] > 0, cases[STATEFUL]


# Inputs the generator found bugs with: (method, path, request, status now answered).
REGRESSIONS: list[tuple[str, str, dict[str, Any], int]] = [
    # 500: UnicodeDecodeError escaped the OpenAI route's JSON parsing.
    ("POST", "/v1/audio/speech", {"content": b'{"input": "\xc3\x28"}', "headers": JSON}, 400),
    # 500: SQLite OverflowError on an id past 64 bits.
    ("GET", f"/api/scenes/{TOO_BIG}", {}, 422),
    ("POST", f"/api/tts/generate/{TOO_BIG}", {}, 422),
    ("POST", f"/api/tts/generate-ws/{TOO_BIG}", {}, 422),
    ("GET", f"/api/tts/audio/{TOO_BIG}/chunk/1", {}, 422),
    # Undocumented: FastAPI's 400 {"detail"} on a body that is not UTF-8.
    ("POST", "/api/scenes", {"content": b"\x1e#\xff\x08kWs", "headers": JSON}, 400),
    ("POST", "/api/v1/tts", {"content": b"\xc3\x28", "headers": JSON}, 400),
    # Accepted, then unspeakable when generated: a chunk of only whitespace.
    ("POST", "/api/scenes", {"json": {"chunks": ["hello", " \t\n"]}}, 422),
    # Undocumented 404s of the scene routes; errors documented as text/plain on text routes.
    ("GET", "/api/scenes/99999", {}, 404),
    ("POST", "/api/tts/generate/99999", {}, 404),
    ("GET", "/push", {}, 422),
    ("GET", "/delete-snapshot/0", {}, 404),
    ("POST", "/v1/audio/speech", {"json": {"model": "m", "voice": "v", "input": ""}}, 400),
]


@pytest.fixture(scope="module")
def mvp() -> Iterator[tuple[httpx.Client, Any]]:
    with ThreadServer(stage="mvp") as server, httpx.Client(base_url=server.url) as http:
        yield http, schemathesis.openapi.from_url(f"{server.url}/openapi.json")


@pytest.mark.parametrize(("method", "path", "request_", "status"), REGRESSIONS)
def test_found_inputs_get_a_documented_answer(
    mvp: tuple[httpx.Client, Any], method: str, path: str, request_: dict[str, Any], status: int
) -> None:
    http, schema = mvp
    response = http.request(method, path, timeout=30, **request_)
    assert response.status_code == status, response.text
    # Status, content type and body as the schema documents them (raises FailureGroup).
    schema.find_operation_by_path(method, path).validate_response(response)
