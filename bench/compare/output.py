"""Everything in the output folder: report.md, results.json, machine.json, *.png."""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.common import machine
from bench.compare import charts, report, targets
from bench.compare.plan import Plan
from bench.compare.servers import SERVER_ENV, TARGETS

PACKAGES = (
    "flask",
    "flask-socketio",
    "python-socketio",
    "python-engineio",
    "simple-websocket",
    "werkzeug",
    "gevent",
    "gevent-websocket",
    "fastapi",
    "starlette",
    "uvicorn",
    "websockets",
    "httptools",
    "uvloop",
    "espeakng-loader",
    "lameenc",
    "aiohttp",
    "matplotlib",
)


def machine_info() -> dict[str, Any]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    load = os.getloadavg()
    return {
        **machine(),
        "loadavg_at_end": load,
        "packages": versions,
        "shared": "the load generator (core 1) and each server (core 0) share this machine; "
        "other jobs may be running on it too, so figures are noisy",
    }


def _header(meta: dict[str, Any], info: dict[str, Any], plan: Plan) -> list[str]:
    pkgs = ", ".join(f"{k} {v}" for k, v in info["packages"].items() if v != "not installed")
    return [
        "# Flask vs FastAPI: side-by-side comparison",
        "",
        f"- Date: {meta['stamp']} ({meta['mode']} run, {meta['seconds']:.0f} s)",
        f"- Command: `{shlex.join(meta['argv'])}`",
        f"- Machine: {info['cpu']}, {info['cores']} cores, Python {info['python']}, "
        f"{info['platform']}",
        f"- Load average at the end: {', '.join(f'{x:.2f}' for x in info['loadavg_at_end'])}",
        f"- {info['shared']}.",
        f"- Servers on core {meta['server_core']} (taskset), load generator on core "
        f"{meta['client_core']}.",
        f"- Packages: {pkgs}",
        f"- Server settings (all targets): `{' '.join(f'{k}={v}' for k, v in SERVER_ENV.items())}`",
        "- Targets: "
        + "; ".join(
            f"`{t.name}` = `python -m {t.module} {' '.join(t.args)}` ({t.dialect} clients)"
            for t in TARGETS
        ),
        "- Ratios are FastAPI / Flask of the figure in that row: for times and CPU below 1 is "
        "better for FastAPI, for deliveries/s and clients held above 1 is.",
        f"- Plan: `{json.dumps(dataclasses.asdict(plan))}`",
        "",
    ]


def _section(title: str, intro: str, table: list[str], results: dict[str, Any]) -> list[str]:
    errs = report.errors(results)
    return [f"## {title}", "", intro, "", *table, "", *(["Errors:", *errs, ""] if errs else [])]


def write_all(out: Path, plan: Plan, results: dict[str, Any], meta: dict[str, Any]) -> Path:
    info = machine_info()
    latency = results["latency"]
    at, judged = targets.judge(latency, results["connections"])
    pngs = [
        charts.latency_cdf(latency, at, out / "latency_cdf.png"),
        charts.throughput(latency, results["capacity"], out / "throughput_vs_clients.png"),
        charts.memory(results["connections"], out / "memory_vs_clients.png"),
    ]
    lat_errors = {f"{n} clients {t}": r for n, res in latency.items() for t, r in res.items()}
    md = _header(meta, info, plan)
    md += ["## Targets", "", *targets.targets_lines(at, judged), ""]
    md += _section(
        "Latency",
        f"{plan.latency_rate:g} pushes/s, {plan.latency_pushes} pushes per "
        "size; broadcast = scheduled push -> k-th `done_update` at every client; "
        "job->audio_update = scheduled push -> the answer's `audio_update` at the "
        "asking client; not delivered = `done_update` frames still missing 15 s after the "
        "last scheduled push (backlog or loss).",
        report.latency_table(latency),
        lat_errors,
    )
    md += _section(
        "Capacity",
        f"{plan.capacity_clients} clients, pushes offered at "
        f"{plan.capacity_rate:g}/s (saturation); every frame delivered counts.",
        report.capacity_table(results["capacity"]),
        results["capacity"],
    )
    md += _section(
        "Connections",
        f"Idle clients added {plan.ceiling_step} at a time up to "
        f"{plan.ceiling_cap} (or {plan.ceiling_budget_s:g} s); ceiling = last step with "
        f"every handshake done and `/health` under {plan.ceiling_ms:g} ms.",
        report.ceiling_table(results["connections"]),
        results["connections"],
    )
    md += _section(
        "Audio endpoint",
        f"{plan.audio_chars}-character texts, {plan.audio_rounds} "
        "round(s) per level, cache off; the endpoint each target's clients use.",
        report.audio_table(results["audio"], plan.audio_levels),
        results["audio"],
    )
    md += _section(
        "Realistic mix",
        f"{plan.mix_users} users, {plan.mix_seconds:g} s, a question "
        f"every {plan.mix_gap[0]:g}-{plan.mix_gap[1]:g} s each, answer audio fetched.",
        report.mix_table(results["mix"]),
        results["mix"],
    )
    md += ["## Charts", "", *(f"![{p.stem}]({p.name})" for p in pngs), ""]
    md += [
        "## Raw data",
        "",
        "`results.json` (every figure and latency sample), "
        "`machine.json`, `server-<port>.log` (each server's output).",
        "",
    ]
    (out / "machine.json").write_text(json.dumps(info, indent=2), encoding="utf-8")
    payload = {
        "meta": meta,
        "machine": info,
        "plan": dataclasses.asdict(plan),
        "targets": {"judged_at_clients": at, "results": judged},
        "results": results,
    }
    (out / "results.json").write_text(json.dumps(payload, indent=2, default=str), encoding="utf-8")
    path = out / "report.md"
    path.write_text("\n".join(md) + "\n", encoding="utf-8")
    return path
