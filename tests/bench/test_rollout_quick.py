"""``python -m bench.rollout`` at a tiny size: the proxy really splits the pages as each
step says and every page's every answer is counted. Never the speed (that is the
bench's job)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.bench.runs import run_bench
from tests.haproxy import require_haproxy

CLIENTS, PUSHES = 6, 3


@pytest.mark.timeout(300)
def test_each_step_puts_the_pages_where_it_says() -> None:
    require_haproxy()
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    result = run_bench("bench.rollout", "--clients", str(CLIENTS), "--pushes", str(PUSHES),
                       "--health", "20", "--overhead-runs", "1", timeout=280)  # fmt: skip
    report = Path(result.stdout.rsplit("wrote ", 1)[1].strip())
    try:
        data = json.loads(report.with_suffix(".json").read_text())
        steps = {step["label"]: step for step in data["steps"]}
        assert steps["100 % Flask"]["clients"] == {"flask": CLIENTS}
        assert steps["100 % FastAPI"]["clients"] == {"fastapi": CLIENTS}
        assert set(steps["50 / 50"]["clients"]) == {"flask", "fastapi"}
        for step in steps.values():
            assert step["lost_done_updates"] == 0, step
            assert step["broadcast_ms"]["all"]["n"] == CLIENTS * PUSHES
            # Every legacy page hears every answer; on /ws only the asker does.
            heard = PUSHES if step["dialect"] == "native" else CLIENTS * PUSHES
            assert step["job_audio_ms"]["all"]["n"] == heard, step["label"]
        assert len(data["overhead"]["proxy"]) == len(data["overhead"]["direct"]) == 1
        assert "## What the proxy adds" in report.read_text()
    finally:
        report.unlink(missing_ok=True)
        report.with_suffix(".json").unlink(missing_ok=True)
