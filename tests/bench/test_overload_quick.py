"""``python -m bench.overload`` at a tiny size: every question is either accepted or
refused, every accepted one is answered, the report has its plot. Never the speed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.bench.runs import run_bench


@pytest.mark.timeout(180)
def test_every_accepted_question_is_answered() -> None:
    result = run_bench("bench.overload", "--clients", "8", "--seconds", "4",
                       "--capacity-seconds", "2", timeout=170)  # fmt: skip
    report = Path(result.stdout.rsplit("wrote ", 1)[1].strip())
    data = json.loads(report.with_suffix(".json").read_text())
    png = report.parent / report.read_text().split("![todo depth](", 1)[1].split(")", 1)[0]
    try:
        assert data["capacity_per_s"] > 0
        assert data["offered"] == data["accepted"] + sum(data["errors"].values())
        assert data["answered"] == data["accepted"] > 0
        assert data["depth"] and png.read_bytes().startswith(b"\x89PNG")
    finally:
        for path in (report, report.with_suffix(".json"), png):
            path.unlink(missing_ok=True)
