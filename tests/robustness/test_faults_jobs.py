"""A handler that hangs, over the wire: past ``job_timeout`` the job is cut and goes to
dead with a reason that says so, its asker hears the apology (decoded audio), and the
next job runs as usual."""

from __future__ import annotations

import httpx
import pytest

from queues.running import TIMEOUT_APOLOGY
from tests import audio
from tests.fastapi_app.helpers import WsClient
from tests.fleet.nodes import SLEEPY, answer_to
from tests.servers import ThreadServer

pytestmark = pytest.mark.anyio

JOB_TIMEOUT = 0.5


async def test_a_hanging_handler_is_cut_its_asker_hears_why_and_the_next_job_runs() -> None:
    settings = {"job_handler": SLEEPY, "job_timeout": JOB_TIMEOUT, "rate_limit_audio": 0}
    async with (
        ThreadServer(**settings) as server,
        httpx.AsyncClient(base_url=server.url, timeout=20) as http,
        await WsClient.connect(server.ws_url + "/ws") as ws,
    ):
        await ws.send(type="query", text="sleep 600")  # far past any wait here
        await ws.send(type="query", text="what is 3 plus 4")
        hung, after = [frame["id_hash"] for frame in await ws.count("queued", 2)]
        apology = await answer_to(ws, TIMEOUT_APOLOGY)
        await answer_to(ws, "3 plus 4 is 7.")

        spoken = await http.get(apology["audioURL"])
        assert spoken.status_code == 200 and audio.duration(spoken.content) > 1.0
        dead = (await http.get("/get_queue/dead")).json()["dead_jobs"]
        done = (await http.get("/get_queue/done")).json()["done_jobs"]
        assert [hung in item for item in dead] == [True]
        assert [after in item for item in done] == [True]
        job = server.call(server.runtime.queues.get, hung)
        assert job.state == "dead" and job.error == f"timed out after {JOB_TIMEOUT:g} s"
        assert (await http.get("/health")).json()["jobs"]["running"] == 0
