"""One endpoint's figures from generated frames, how each connection is judged, and the
report section they make (see ``bench.robustness.frames``)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from bench.robustness.frame_play import Outcome
from bench.robustness.frame_scripts import PollScript
from bench.robustness.frame_server import LogScan
from bench.robustness.frame_steps import MAY_RESET
from bench.robustness.frame_wire import NO_CLOSE_FRAME
from bench.robustness.report import Section

RSS_BOUND_MB = 10.0  # growth allowed per 20,000 frames (and at least this much)
CLEAR_HTTP = {400, 403, 404}
COLUMNS = ["endpoint", "frames", "connections", "outcomes", "server closes by code",
           "checks passed", "RSS MB start -> end", "log errors", "seconds"]  # fmt: skip


@dataclass
class Tally:
    """One endpoint's figures, summed over its batches."""

    frames: int = 0
    connections: int = 0
    results: Counter[str] = field(default_factory=Counter)
    codes: Counter[str] = field(default_factory=Counter)
    checks: int = 0
    passed: int = 0
    failures: list[str] = field(default_factory=list)
    log: LogScan = field(default_factory=LogScan)
    rss: list[float] = field(default_factory=list)
    seconds: float = 0.0
    generated_seconds: float = 0.0
    kinds: Counter[str] = field(default_factory=Counter)  # frames sent, by how drawn

    def count_kinds(self, scripts: list[Any]) -> None:
        for script in scripts:
            if isinstance(script, PollScript):
                self.kinds.update(method for method, _, _ in script.actions)
                self.kinds["POST (invalid payload)"] += script.invalid  # its last POST
                self.kinds["POST"] -= script.invalid
            for step in getattr(script, "steps", ()):
                self.kinds[step.kind] += len(step.frames)

    def add(self, endpoint: str, outcome: Outcome) -> None:
        self.frames += outcome.frames
        self.connections += outcome.connections
        self.results[outcome.result] += 1
        if outcome.code is not None:
            self.codes[f"{outcome.result} {outcome.code}"] += 1
        for status, count in outcome.statuses.items():
            self.codes[f"HTTP {status}" if status > 0 else "long-poll waited"] += count
        if problem := judge(endpoint, outcome):
            self.failures.append(problem)


def judge(endpoint: str, outcome: Outcome) -> str | None:
    """What is wrong with how the server ended this connection, if anything."""
    result, code = outcome.result, outcome.code
    if result == "error":
        return f"{endpoint}: the client failed: {outcome.script}"
    if result == "hung":
        return f"{endpoint}: neither answered nor closed: {outcome.script}"
    if result == "refused" and code not in CLEAR_HTTP:
        return f"{endpoint}: handshake answered {code}"
    bad = [s for s in outcome.statuses if s not in (200, 400, -1)]
    if bad:  # 0: no answer at all
        return f"{endpoint}: polling requests answered {bad}: {outcome.script}"
    if result in ("closed", "dropped") and code not in allowed_closes(endpoint, outcome):
        after = outcome.fatal or "only safe frames"
        return f"{endpoint}: {result} with {code} after {after}: {outcome.script}"
    return None


def allowed_closes(endpoint: str, outcome: Outcome) -> set[int]:
    """How the server may end a connection, given how its script ended. A script of
    safe frames only must be answered (a scene session may end, or not exist)."""
    allowed: set[int] = set()
    if outcome.fatal is not None:
        # 1005: the client's close frame had no code, and the server echoed it.
        allowed |= {1000, 1001, 1002, 1005, 1007, 1008, 1009, 3000, 4999, 400}
        if outcome.fatal in MAY_RESET:  # closed with our unread bytes in its buffer: RST
            allowed.add(NO_CLOSE_FRAME)
    if endpoint == "ws_tts_session":
        allowed |= {1000, 4404}  # the session ended / there is no such session
    if outcome.statuses[-1]:  # a long-poll we left waiting: the server drops the session
        allowed.add(400)
    return allowed


def section(tallies: dict[str, Tally], note: str, extra: list[str]) -> Section:
    result = Section("Generated WebSocket and Socket.IO frames", COLUMNS)
    result.notes.append(note)
    result.failures.extend(extra)
    for endpoint, tally in tallies.items():
        result.rows.append(_row(endpoint, tally))
        result.failures.extend(_failures(endpoint, tally))
        result.figures[endpoint] = _figures(tally)
    return result


def rss_bound(frames: int) -> float:
    return RSS_BOUND_MB * max(1.0, frames / 20_000)


def _failures(endpoint: str, tally: Tally) -> list[str]:
    found = [f"{n} x {text}" for text, n in Counter(tally.failures).most_common(10)]
    found += [f"{endpoint}: server log: {n} x {line}" for line, n in tally.log.errors.items()]
    growth = tally.rss[-1] - tally.rss[0]
    if growth > rss_bound(tally.frames):
        found.append(f"{endpoint}: RSS grew {growth:.1f} MB (bound {rss_bound(tally.frames):g})")
    return found


def _row(endpoint: str, tally: Tally) -> list[str]:
    closes = ", ".join(f"{k}: {v}" for k, v in sorted(tally.codes.items()))
    outcomes = ", ".join(f"{k} {v}" for k, v in tally.results.most_common())
    return [endpoint, f"{tally.frames:,}", f"{tally.connections:,}", outcomes, closes or "-",
            f"{tally.passed}/{tally.checks}", f"{tally.rss[0]:.1f} -> {tally.rss[-1]:.1f}",
            str(sum(tally.log.errors.values())), f"{tally.seconds:.0f}"]  # fmt: skip


def _figures(tally: Tally) -> dict[str, Any]:
    return {
        "frames": tally.frames,
        "connections": tally.connections,
        "outcomes": dict(tally.results),
        "closes": dict(tally.codes),
        "checks": tally.checks,
        "checks_passed": tally.passed,
        "rss_mb": tally.rss,
        "log_errors": dict(tally.log.errors),
        "log_client_caused": dict(tally.log.client_caused),
        "log_warnings": dict(tally.log.warnings.most_common(20)),
        "frames_drawn_by_kind": dict(tally.kinds.most_common()),
        "seconds": round(tally.seconds, 1),
        "seconds_waiting_for_generation": round(tally.generated_seconds, 1),
    }
