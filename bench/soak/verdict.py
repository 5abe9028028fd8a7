"""The soak's pass criteria, each judged from the run's figures."""

from __future__ import annotations

from typing import Any

from bench.soak.load import FD_SLACK, TASK_SLACK

RSS_GROWTH_MB = 10.0


def verdicts(fig: dict[str, Any], log: dict[str, Any]) -> list[dict[str, Any]]:
    run = fig["run"]
    base, warm, end, after = (
        run.marks[k] for k in ("baseline", "warm-up end", "load end", "after")
    )
    jobs, answers, audio = fig["jobs"], fig["answers"], fig["audio"]
    accepted = jobs["accepted_id_seen"] + jobs["accepted_id_unseen"]
    growth = (end.rss_kb - warm.rss_kb) / 1024
    held = {k: v for k, v in run.last_check.items() if "baseline" not in k and v}
    stuck = audio.get("orphan: stream never ended", 0)
    trouble = {k: v for k, v in fig["events"].items() if k.startswith("generator:") and v}
    return [
        _v("every accepted job reaches exactly one terminal state",
           accepted > 0 and not jobs["problems"],
           f"{accepted} accepted: {jobs['terminal']['done']} done, {jobs['terminal']['dead']} "
           f"dead, {jobs['left_over']} left over; problems: {jobs['problems'][:5] or 'none'}"),
        _v("no question of the soak refused", not jobs["refused"],
           f"refused: {dict(jobs['refused']) or 'none'}"),
        _v("every asker still connected gets its answer",
           answers["owed"] > 0 and answers["missed"] == 0,
           f"{answers['answered']} of {answers['owed']} owed answers heard; missed "
           f"{answers['missed']} {answers['missed_tokens'][:5] or ''}".strip()),
        _v(f"RSS after warm-up grows < {RSS_GROWTH_MB:g} MB", growth < RSS_GROWTH_MB,
           f"{warm.rss_kb / 1024:.1f} MB at {warm.t:g} s -> {end.rss_kb / 1024:.1f} MB at "
           f"{end.t:g} s ({growth:+.1f} MB)"),
        _v(f"open fds back to baseline (+{FD_SLACK}) after the clients leave",
           after.fds - base.fds <= FD_SLACK,
           f"{base.fds} before, {max(s.fds for s in run.samples)} peak, {after.fds} after"),
        _v(f"tasks back to baseline (+{TASK_SLACK}) after the clients leave",
           after.tasks - base.tasks <= TASK_SLACK,
           f"{base.tasks} before, {max(s.tasks for s in run.samples)} peak, {after.tasks} after"),
        _v("nothing held after the clients leave (sessions, connections, audio streams)",
           stuck == 0 and not held, f"held after: {held or 'nothing'}; {stuck} orphaned "
           "audio stream(s) never ended"),
        _v("the load generator ran clean", not trouble,
           "; ".join(f"{k}: {v}" for k, v in trouble.items()) or "no client crashed or hung"),
        _v("no error in the server log that a user did not cause", not log["errors"],
           f"{len(log['errors'])} error record(s); {len(log['user_caused'])} user-caused"),
    ]  # fmt: skip


def _v(criterion: str, passed: bool, figure: str) -> dict[str, Any]:
    return {"criterion": criterion, "passed": bool(passed), "figure": figure}
