"""The soak's Markdown and JSON report: verdicts, figures, and RSS/fds/tasks over time."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.common import command_line, fmt, machine, md_table, summary
from bench.soak.load import FD_SLACK, TASK_SLACK


def figures(fig: dict[str, Any]) -> dict[str, Any]:
    """The headline numbers, flat enough to read in JSON."""
    run, jobs, answers = fig["run"], fig["jobs"], fig["answers"]
    marks = run.marks
    waits = summary(answers["answer_seconds"])
    rss = {k: round(marks[m].rss_kb / 1024, 1) for k, m in (
        ("baseline", "baseline"), ("after_warmup", "warm-up end"), ("load_end", "load end"),
        ("after", "after"))}  # fmt: skip
    rss["growth_after_warmup"] = round(rss["load_end"] - rss["after_warmup"], 1)
    # A leak keeps growing; the warm-up's churn levels off: the second half tells them apart.
    end = marks["load end"]
    half = next(s for s in run.samples if s.t >= end.t / 2)
    rss["growth_second_half"] = round((end.rss_kb - half.rss_kb) / 1024, 1)
    rss["peak"] = round(max(s.rss_kb for s in run.samples) / 1024, 1)
    return {
        "jobs": {k: v for k, v in jobs.items() if k != "problems"}
        | {"problems": jobs["problems"][:50]},
        "answers": {k: v for k, v in answers.items() if k != "answer_seconds"}
        | {"answer_ms": waits},
        "rss_mb": rss,
        "fds": _before_after(run, "fds"),
        "tasks": _before_after(run, "tasks"),
        "threads": _before_after(run, "threads"),
        "settled_after_s": run.settled_after,
        "last_check": run.last_check,
        "pacer": fig["pacer"],
        "generator_cpu_mean": _mean([s.generator_cpu for s in run.samples if s.phase == "load"]),
        "server_cpu_mean": _mean([s.server_cpu for s in run.samples if s.phase == "load"]),
        "server_wait_mean": _mean([s.server_wait for s in run.samples if s.phase == "load"]),
        "others_cpu_mean": _mean([s.others_cpu for s in run.samples if s.phase == "load"]),
        "events": dict(sorted(fig["events"].items())),
        "audio": dict(sorted(fig["audio"].items())),
        "roles": dict(sorted(fig["roles"].items())),
        "metrics_after": fig["metrics_after"],
    }


def _before_after(run: Any, key: str) -> dict[str, int]:
    return {"baseline": getattr(run.marks["baseline"], key),
            "peak": max(getattr(s, key) for s in run.samples),
            "after": getattr(run.marks["after"], key)}  # fmt: skip


def _mean(values: list[float]) -> float:
    return round(sum(values) / len(values), 3) if values else 0.0


def markdown(setup: dict[str, Any], verdicts: list[dict[str, Any]], figs: dict[str, Any],
             samples: list[dict[str, Any]], log: dict[str, Any]) -> list[str]:  # fmt: skip
    info = machine()
    ok = all(v["passed"] for v in verdicts)
    lines = [
        "# Soak: churning clients, steady jobs, leaks and lost answers",
        "",
        f"- Result: **{'PASS' if ok else 'FAIL'}**",
        f"- Command: `{command_line()}`",
        f"- Machine: {info['cpu']}, {info['cores']} cores, Python {info['python']}",
        f"- Load: {setup['clients']} clients (half /ws, half Socket.IO), {setup['rate']:g} "
        f"questions/s, {setup['audio']} audio streams at a time, for {setup['seconds']:g} s; "
        f"warm-up {setup['warmup']:g} s; seed {setup['seed']}",
        f"- Server: `{setup['server_command']}` on core {setup['server_core']}, this load "
        f"generator on core {setup['client_core']}",
        f"- Server settings: {setup['why_settings']}",
        "",
        "## Verdicts",
        "",
    ]
    lines += md_table(["criterion", "result", "figure"],
                      [[v["criterion"], "pass" if v["passed"] else "**FAIL**", v["figure"]]
                       for v in verdicts])  # fmt: skip
    lines += ["", "## Figures", "", *md_table(["figure", "value"], _figure_rows(figs))]
    lines += ["", "## What the clients did", ""]
    lines += md_table(["event", "count"], list(figs["events"].items()))
    lines += ["", "Roles: " + ", ".join(f"{k} {v}" for k, v in figs["roles"].items()), ""]
    lines += ["## Audio streams", "", *md_table(["event", "count"], list(figs["audio"].items()))]
    lines += ["", "## Answers not owed (the asker's own doing)", ""]
    lines += md_table(["why", "questions"], list(figs["answers"]["not_owed"].items()))
    lines += ["", "## Server over time", "", *_sample_table(samples)]
    lines += ["", "## Server log", "", *_log_lines(log)]
    lines += ["", "## Notes", "", *setup["notes"]]
    return lines


def _figure_rows(f: dict[str, Any]) -> list[list[Any]]:
    j, a, r, w = f["jobs"], f["answers"], f["rss_mb"], f["answers"]["answer_ms"]
    return [
        ["questions asked", j["asked"]],
        ["accepted, id heard / unheard (asker dropped first)",
         f"{j['accepted_id_seen']} / {j['accepted_id_unseen']}"],
        ["sent as the socket dropped, never received", j["not_received"]],
        ["refused", dict(j["refused"]) or 0],
        ["terminal: done / dead; left queued or running", f"{j['terminal']['done']} / "
         f"{j['terminal']['dead']}; {j['left_over']}"],
        ["answers owed / heard / missed", f"{a['owed']} / {a['answered']} / {a['missed']}"],
        ["question -> answer p50 / p99 ms", f"{fmt(w['p50'], 1)} / {fmt(w['p99'], 1)}"],
        ["RSS MB: baseline / after warm-up / load end / after / peak",
         f"{r['baseline']} / {r['after_warmup']} / {r['load_end']} / {r['after']} / {r['peak']}"],
        ["RSS growth after warm-up / over the second half of the load (MB)",
         f"{r['growth_after_warmup']:+.1f} / {r['growth_second_half']:+.1f}"],
        [f"open fds: baseline / peak / after (slack +{FD_SLACK})", _bpa(f["fds"])],
        [f"asyncio tasks: baseline / peak / after (slack +{TASK_SLACK})", _bpa(f["tasks"])],
        ["threads: baseline / peak / after", _bpa(f["threads"])],
        ["back to baseline after the clients left (s)", f["settled_after_s"] or "not in time"],
        ["mean CPU during the load: server / generator (share of a core)",
         f"{f['server_cpu_mean']:.0%} / {f['generator_cpu_mean']:.0%}"],
        ["other processes on the machine (cores) / server loop waiting for a core",
         f"{f['others_cpu_mean']:.2f} / {f['server_wait_mean']:.0%}"],
        ["pacer lateness p50 / p99 ms", f"{fmt(f['pacer']['late_ms']['p50'], 1)} / "
         f"{fmt(f['pacer']['late_ms']['p99'], 1)}"],
    ]  # fmt: skip


def _bpa(d: dict[str, int]) -> str:
    return f"{d['baseline']} / {d['peak']} / {d['after']}"


def _sample_table(samples: list[dict[str, Any]]) -> list[str]:
    return md_table(
        ["t s", "phase", "RSS MB", "fds", "tasks", "threads", "ws", "sio", "todo", "done",
         "dead", "server CPU", "generator CPU", "others (cores)", "server waited"],
        [[s["t"], s["phase"], f"{s['rss_kb'] / 1024:.1f}", s["fds"], s["tasks"], s["threads"],
          s["ws"], s["socketio"], s["todo"], s["done"], s["dead"], f"{s['server_cpu']:.0%}",
          f"{s['generator_cpu']:.0%}", f"{s['others_cpu']:.2f}", f"{s['server_wait']:.0%}"]
         for s in samples],
    )  # fmt: skip


def _log_lines(log: dict[str, Any]) -> list[str]:
    lines = [f"{len(log['errors'])} error record(s) nobody caused, "
             f"{len(log['user_caused'])} caused by a user."]  # fmt: skip
    for record in log["errors"][:5]:
        lines += ["", "```", record[:2000], "```"]
    if log["warnings"]:
        lines += ["", "Warnings (numbers and ids folded):", ""]
        lines += md_table(["warning", "count"], list(log["warnings"].items()))
    return lines


def write(out: Path, lines: list[str], data: dict[str, Any]) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out.with_suffix(".json").write_text(json.dumps(data, indent=2, default=str), "utf-8")
    return out
