"""``python -m bench.soak`` at a tiny size (40 clients for 15 s, short server timers so
the end need not wait long): every pass criterion holds, and the report carries its
figures, its samples and the clients' churn. Never how fast anything was."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.bench.runs import run_bench

TINY = ("--minutes", "0.25", "--clients", "40", "--resume-window", "3",
        "--sio-ping-interval", "5")  # fmt: skip
CRITERIA = 9


@pytest.fixture(scope="module")
def soak(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, Any]]:
    out: Path = tmp_path_factory.mktemp("soak") / "soak.md"
    run_bench("bench.soak", *TINY, "--out", str(out), timeout=150)  # exit 1 if one fails
    return out.read_text(encoding="utf-8"), json.loads(out.with_suffix(".json").read_text())


@pytest.mark.timeout(180)
def test_every_criterion_passes(soak: tuple[str, dict[str, Any]]) -> None:
    _, data = soak
    assert len(data["verdicts"]) == CRITERIA
    assert [v for v in data["verdicts"] if not v["passed"]] == []
    assert data["passed"] is True


@pytest.mark.timeout(180)
def test_the_figures_are_there(soak: tuple[str, dict[str, Any]]) -> None:
    markdown, data = soak
    fig = data["figures"]
    jobs, answers = fig["jobs"], fig["answers"]
    assert jobs["asked"] > 0 and jobs["accepted_id_seen"] > 0
    assert sum(jobs["terminal"].values()) >= jobs["accepted_id_seen"] + jobs["accepted_id_unseen"]
    assert answers["owed"] > 0 and answers["answered"] == answers["owed"]
    assert set(fig["rss_mb"]) >= {"baseline", "after_warmup", "load_end", "after"}
    for name in ("fds", "tasks"):
        assert fig[name]["peak"] > fig[name]["baseline"] > 0  # the clients showed up
    phases = [s["phase"] for s in data["samples"]]
    assert phases[0] == "baseline" and phases[-1] == "after"
    assert {"warm-up end", "load end", "clients left"} <= set(phases)
    for heading in ("Verdicts", "Figures", "What the clients did", "Server over time"):
        assert f"## {heading}\n" in markdown


@pytest.mark.timeout(180)
def test_the_clients_churned(soak: tuple[str, dict[str, Any]]) -> None:
    """Both transports came and went, dropped mid-answer; /ws resumed; audio was cut."""
    events, audio = soak[1]["figures"]["events"], soak[1]["figures"]["audio"]
    for transport in ("ws", "socketio"):
        assert events.get(f"{transport}: sessions", 0) > 20
        assert events.get(f"{transport}: dropped mid-answer", 0) > 0
    assert events.get("ws: resumed", 0) + events.get("ws: resumed, replay incomplete", 0) > 0
    assert audio.get("cut: cut mid-way", 0) > 0
