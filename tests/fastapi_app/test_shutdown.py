"""``python -m fastapi_app`` as a real process: CLI flags, SIGTERM, restart with SQLite."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import anyio
import httpx
import pytest
import socketio
import websockets

from tests.fastapi_app.helpers import WsClient
from tests.flask_app.launch import fastapi_server

pytestmark = pytest.mark.anyio

SLEEPY = "tests.fastapi_app.handlers:sleepy"


def _states(db: Path) -> dict[str, str]:
    with sqlite3.connect(db) as conn:
        return dict(conn.execute("SELECT question, state FROM jobs"))


async def _until(http: httpx.AsyncClient, queue: str, count: int, wait: float = 20) -> list[str]:
    with anyio.fail_after(wait):
        while True:
            jobs = (await http.get(f"/get_queue/{queue}")).json()[f"{queue}_jobs"]
            if len(jobs) >= count:
                return jobs
            await anyio.sleep(0.05)


async def test_sigterm_closes_sockets_keeps_jobs_and_the_next_start_resumes_them(
    tmp_path: Path,
) -> None:
    db = tmp_path / "jobs.db"
    settings = {"stage": "full", "store": f"sqlite:///{db}", "job_handler": SLEEPY}
    server = fastapi_server(settings={**settings, "log_level": "info"}).start()
    try:
        http = httpx.AsyncClient(base_url=server.url, timeout=10)
        page = socketio.AsyncClient(reconnection=False)
        await page.connect(server.url, transports=["websocket"])
        native = await WsClient.connect(server.ws_url + "/ws")
        await native.send(type="query", text="sleep 1.5")
        await native.next("queued")
        await http.get("/push", params={"question": "what is 2 plus 2"})
        await _until(http, "run", 1)

        # uvicorn re-raises the signal once its graceful shutdown is over.
        assert await anyio.to_thread.run_sync(server.signal) in (0, -15)
        with pytest.raises(websockets.ConnectionClosed) as closed:
            while True:
                await native.next()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1012
        with anyio.fail_after(5):
            while page.connected:  # noqa: ASYNC110 - the client offers no event for this
                await anyio.sleep(0.05)
        log = server.log_text()
        assert "Application shutdown complete" in log and "Traceback" not in log
        assert _states(db) == {"sleep 1.5": "running", "what is 2 plus 2": "todo"}
    finally:
        server.close()

    restarted = fastapi_server(settings=settings).start()
    try:
        async with httpx.AsyncClient(base_url=restarted.url, timeout=10) as http:
            done = await _until(http, "done", 2)
            assert any("sleep 1.5" in item for item in done)
            assert any("what is 2 plus 2" in item for item in done)
            assert (await http.get("/get_queue/dead")).json() == {"dead_jobs": []}
        assert restarted.signal() in (0, -15)
    finally:
        restarted.close()
    assert set(_states(db).values()) == {"done"}


async def test_command_line_flags_choose_stage_and_workers() -> None:
    with fastapi_server(args=("--stage", "mvp", "--workers", "2")) as server:
        async with httpx.AsyncClient(base_url=server.url) as http:
            assert (await http.get("/health")).json()["stage"] == "mvp"
            async with await WsClient.connect(server.ws_url + "/ws") as ws:
                assert "seq" not in ws.seen[0]  # an MVP greeting
        assert server.signal() in (0, -15)
