"""The asker hears first: how soon the client that asked gets its answer's
``audio_update`` while every client is being sent the queue counts.

    python -m bench.asker                         # 200 and 1,000 clients, 2 runs each
    python -m bench.asker --clients 1000 --runs 3 --targets flask-gevent,fastapi-ws
    python -m bench.asker --quick                 # 50 clients, 1 run, 8 pushes (< 1 min)

The workload is the comparison's latency workload (``bench.compare.traffic.broadcast_run``,
5 pushes/s, 40 pushes): N clients listen, jobs are pushed on schedule (``GET /push`` on
the Socket.IO targets, a ``query`` frame from the first client on ``/ws``) and:

- job->audio_update = scheduled push -> the answer's ``audio_update`` at the asker;
- broadcast = scheduled push -> the k-th ``done_update`` at every client;
- CPU = the server's process-group CPU over the window, per frame the clients received
  and per event the server was asked to send.

Events emitted come from the workload, not from the server: each job moves
todo -> running -> done, and the queues announce every move to every client
(``queues/fifo.py`` ``push_job``: ``todo_update``; ``queues/running.py`` ``run_job``:
``todo_update`` + ``run_update``; ``_finish``: ``done_update`` + ``run_update``), so 5 count
events x clients per job. The asker's own frames: on ``/ws`` ``queued`` and two
``audio_update`` (the waiting message, then the answer) to the asker only; on the
Socket.IO targets the job has no client, so both ``audio_update`` go to every client, as
the original Genie did. A server that conflates count events delivers fewer frames than
this; both figures are reported, and CPU per each.

Each run of each (clients, target) gets a fresh server on ``--server-core``; this load
generator runs on ``--client-core``. Runs are interleaved (run 1 of every target, then
run 2, in alternating target order) so the machine's noise hits all targets alike, and
ratios are taken against ``flask-gevent`` of the same run and client count. Writes
Markdown and JSON (``--out``, default ``bench/reports/asker.md`` and ``.json``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from bench import rawws
from bench.common import (
    CLK_TCK,
    REPORTS,
    ROOT,
    command_line,
    fmt,
    free_port,
    machine,
    md_table,
    pin_self,
    raise_nofile,
)
from bench.compare import servers, traffic
from bench.compare.procstat import group_cpu
from bench.compare.run import GUARDED

BASELINE = "flask-gevent"
SIO = "fastapi-sio"
WS = "fastapi-ws"
DEFAULT_TARGETS = (BASELINE, SIO, WS)
DEFAULT_OUT = REPORTS / "asker.md"

# Per job, to every client (see the module docstring for where each comes from).
COUNT_EVENTS = {"todo_update": 2, "run_update": 2, "done_update": 1}
# Per job, the asker's own frames: to the asker only on /ws, to everyone on Socket.IO.
ASKER_EVENTS_NATIVE = {"queued": 1, "audio_update": 2}
AUDIO_BROADCASTS_SOCKETIO = {"audio_update": 2}


@dataclass(frozen=True)
class Goal:
    """One target: ``figure(clients) <= limit``, judged on the median over runs."""

    clients: int
    label: str
    figure: str  # key into the per-(clients) figures of `figures()`
    limit: float
    unit: str  # "ms" or "x"


GOALS = (
    Goal(1000, "/ws job->audio_update p50 <= 5 ms", "ws_job_p50", 5.0, "ms"),
    Goal(1000, "/ws job->audio_update p99 <= 25 ms", "ws_job_p99", 25.0, "ms"),
    Goal(1000, "Socket.IO job->audio_update p50 <= gevent's", "sio_job_ratio", 1.0, "x"),
    Goal(1000, "/ws broadcast p50 <= 0.5x gevent's", "ws_broadcast_ratio", 0.5, "x"),
    Goal(1000, "/ws CPU per delivered frame <= 0.6x gevent's", "ws_cpu_ratio", 0.6, "x"),
    Goal(1000, "Socket.IO CPU per delivered frame <= 0.7x gevent's", "sio_cpu_ratio", 0.7, "x"),
    Goal(200, "/ws job->audio_update p50 <= 3 ms", "ws_job_p50", 3.0, "ms"),
)


# --- the workload's event model ------------------------------------------------------


# The figures of a cell, as the report's latency tables name them.
FIGURES = ("job p50 ms", "job p99 ms", "broadcast p50 ms", "broadcast p99 ms",
           "CPU us / delivered frame", "CPU us / emitted event", "frames delivered",
           "events emitted")  # fmt: skip


def emitted_events(target: servers.Target, clients: int, pushes: int) -> dict[str, int]:
    """What the server is asked to send for ``pushes`` jobs to ``clients`` listeners."""
    out = {name: per_job * clients * pushes for name, per_job in COUNT_EVENTS.items()}
    if target.dialect == "native":
        for name, per_job in ASKER_EVENTS_NATIVE.items():
            out[name] = out.get(name, 0) + per_job * pushes
    else:
        for name, per_job in AUDIO_BROADCASTS_SOCKETIO.items():
            out[name] = out.get(name, 0) + per_job * clients * pushes
    return out


@contextlib.contextmanager
def tallied() -> Iterator[Counter[str]]:
    """Count every event the clients of one ``broadcast_run`` receive, by name.

    ``traffic.Listen`` counts frames but not which; a subclass with a counting
    ``on_event`` stands in for it while the run makes its listener."""
    names: Counter[str] = Counter()
    original = traffic.Listen

    class Tally(original):  # type: ignore[valid-type,misc]
        def on_event(
            self, client: rawws.WsClient, name: str, data: dict[str, Any], now: float
        ) -> None:
            names[name] += 1
            super().on_event(client, name, data, now)

    traffic.Listen = Tally  # type: ignore[misc]
    try:
        yield names
    finally:
        traffic.Listen = original  # type: ignore[misc]


# --- running -------------------------------------------------------------------------


async def one_cell(
    target: servers.Target, clients: int, rate: float, pushes: int, core: int | None
) -> dict[str, Any]:
    """One run: a fresh server, ``clients`` listeners, ``pushes`` jobs at ``rate``/s."""
    try:
        with tallied() as names, servers.start(target, free_port(), core) as server:
            before = _usage(server.pid)
            result = await traffic.broadcast_run(target, server, clients, rate, pushes)
            result.update(_others(before, _usage(server.pid)))
    except GUARDED as exc:
        return {"error": f"{type(exc).__name__}: {exc}"[:300]}
    result.pop("broadcast_samples_ms", None)  # tens of thousands of numbers per cell
    emitted = emitted_events(target, clients, pushes)
    delivered = {name: names.get(name, 0) for name in emitted}
    result["events_emitted_by_name"] = emitted
    result["frames_delivered_by_name"] = delivered
    result["other_frames_by_name"] = {n: c for n, c in names.items() if n not in emitted}
    result["events_emitted"] = sum(emitted.values())
    result["frames_delivered"] = sum(delivered.values())
    cpu = result["server_cpu_s"]
    result["cpu_us_per_frame"] = cpu / max(result["frames_delivered"], 1) * 1e6
    result["cpu_us_per_event"] = cpu / max(result["events_emitted"], 1) * 1e6
    return result


def _usage(server_pid: int) -> tuple[float, ...]:
    """(wall, machine busy, machine steal, this process, the server's group) in CPU s."""
    with open("/proc/stat", encoding="ascii") as f:
        user, nice, system, _, _, _, _, steal = (int(v) for v in f.readline().split()[1:9])
    own = os.times()
    return (time.monotonic(), (user + nice + system) / CLK_TCK, steal / CLK_TCK,
            own.user + own.system, group_cpu(server_pid))  # fmt: skip


def _others(before: tuple[float, ...], after: tuple[float, ...]) -> dict[str, float]:
    """How busy the machine was with work that is neither the server nor this process
    (another job, a test run) while a cell ran, and how much the hypervisor stole, as
    shares of all cores: the noise behind that cell's figures."""
    wall, busy, steal, own, server = (b - a for a, b in zip(before, after, strict=True))
    capacity = max(wall * (os.cpu_count() or 1), 1e-9)
    return {
        "other_cpu_share": max(busy - own - server, 0.0) / capacity,
        "steal_share": steal / capacity,
    }


async def run_all(args: argparse.Namespace) -> list[dict[str, Any]]:
    by_name = {t.name: t for t in servers.TARGETS}
    order = [by_name[name] for name in args.targets]
    total = args.runs * len(args.clients) * len(order)
    cells: list[dict[str, Any]] = []
    for run in range(1, args.runs + 1):
        for clients in args.clients:
            # Alternate the order so no target always goes first after a fresh machine.
            for target in order if run % 2 else order[::-1]:
                started = time.monotonic()
                result = await one_cell(target, clients, args.rate, args.pushes, args.server_core)
                cells.append({"run": run, "clients": clients, "target": target.name, **result})
                print(
                    f"[{len(cells)}/{total}] run {run} {clients} clients {target.name}: "
                    f"{_one_line(result)} ({time.monotonic() - started:.0f} s)",
                    flush=True,
                )
                await asyncio.sleep(0.2)  # the previous server's sockets drain
    return cells


def _one_line(result: dict[str, Any]) -> str:
    if "error" in result:
        return f"error {result['error']}"
    job, bc = result["job_audio_ms"], result["broadcast_ms"]
    return (
        f"job p50 {fmt(job['p50'])} p99 {fmt(job['p99'])} ms, broadcast p50 "
        f"{fmt(bc['p50'])} p99 {fmt(bc['p99'])} ms, {fmt(result['cpu_us_per_frame'])} us/frame, "
        f"other CPU {result['other_cpu_share']:.0%}"
    )


# --- figures, ratios, targets ----------------------------------------------------------


def _pick(cell: dict[str, Any] | None, *path: str) -> float:
    value: Any = cell
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return math.nan
        value = value[key]
    return float(value) if isinstance(value, int | float) else math.nan


def _div(a: float, b: float) -> float:
    return a / b if b and not (math.isnan(a) or math.isnan(b)) else math.nan


def _median(values: list[float]) -> float:
    kept = [v for v in values if not math.isnan(v)]
    return statistics.median(kept) if kept else math.nan


def _cell(cells: list[dict[str, Any]], run: int, clients: int, target: str) -> dict[str, Any]:
    for cell in cells:
        if (cell["run"], cell["clients"], cell["target"]) == (run, clients, target):
            return cell
    return {}


RATIO_COLUMNS: tuple[tuple[str, str, Callable[[dict[str, Any]], float]], ...] = (
    ("sio_job_ratio", "Socket.IO job p50 / gevent's", lambda c: _pick(c, "job_audio_ms", "p50")),
    ("ws_job_ratio", "/ws job p50 / gevent's", lambda c: _pick(c, "job_audio_ms", "p50")),
    (
        "ws_broadcast_ratio",
        "/ws broadcast p50 / gevent's",
        lambda c: _pick(c, "broadcast_ms", "p50"),
    ),
    (
        "sio_broadcast_ratio",
        "Socket.IO broadcast p50 / gevent's",
        lambda c: _pick(c, "broadcast_ms", "p50"),
    ),
    (
        "ws_cpu_ratio",
        "/ws CPU per delivered frame / gevent's",
        lambda c: _pick(c, "cpu_us_per_frame"),
    ),
    (
        "sio_cpu_ratio",
        "Socket.IO CPU per delivered frame / gevent's",
        lambda c: _pick(c, "cpu_us_per_frame"),
    ),
    (
        "ws_cpu_event_ratio",
        "/ws CPU per emitted event / gevent's",
        lambda c: _pick(c, "cpu_us_per_event"),
    ),
    (
        "sio_cpu_event_ratio",
        "Socket.IO CPU per emitted event / gevent's",
        lambda c: _pick(c, "cpu_us_per_event"),
    ),
)


def ratios(cells: list[dict[str, Any]], run: int, clients: int) -> dict[str, float]:
    """FastAPI / gevent of the same run and client count, for each ratio column."""
    base = _cell(cells, run, clients, BASELINE)
    out = {}
    for key, _, pick in RATIO_COLUMNS:
        other = _cell(cells, run, clients, WS if key.startswith("ws_") else SIO)
        out[key] = _div(pick(other), pick(base))
    return out


def figures(cells: list[dict[str, Any]], runs: int, clients: int) -> dict[str, list[float]]:
    """Per-run values of every figure a goal can name, at one client count."""
    out: dict[str, list[float]] = {"ws_job_p50": [], "ws_job_p99": []}
    for run in range(1, runs + 1):
        ws = _cell(cells, run, clients, WS)
        out["ws_job_p50"].append(_pick(ws, "job_audio_ms", "p50"))
        out["ws_job_p99"].append(_pick(ws, "job_audio_ms", "p99"))
        for key, value in ratios(cells, run, clients).items():
            out.setdefault(key, []).append(value)
    return out


def judge(cells: list[dict[str, Any]], runs: int, measured: list[int]) -> list[dict[str, Any]]:
    verdicts = []
    for goal in GOALS:
        if goal.clients not in measured:
            per_run, value = [], math.nan
            status, note = "n/a", f"{goal.clients} clients not measured"
        else:
            per_run = figures(cells, runs, goal.clients).get(goal.figure, [])
            value = _median(per_run)
            if math.isnan(value):
                status, note = "n/a", "no figure (a run failed)"
            else:
                status, note = ("met" if value <= goal.limit else "missed"), ""
        verdicts.append(
            {
                "clients": goal.clients,
                "target": goal.label,
                "limit": goal.limit,
                "unit": goal.unit,
                "median": value,
                "per_run": per_run,
                "status": status,
                "note": note,
            }
        )
    return verdicts


# --- the report ------------------------------------------------------------------------


def _value(v: float, unit: str) -> str:
    return "n/a" if math.isnan(v) else (f"{v:.2f}x" if unit == "x" else f"{v:.2f} ms")


def _int(n: float) -> str:
    return "n/a" if math.isnan(n) else f"{int(n):,}"


def markdown(
    cells: list[dict[str, Any]], verdicts: list[dict[str, Any]], args: argparse.Namespace
) -> list[str]:
    info = machine()
    lines = [
        "# The asker hears first: job -> its audio_update while counts fan out",
        "",
        f"- Date: {args.stamp} ({'quick' if args.quick else 'full'} run, {args.seconds:.0f} s)",
        f"- Command: `{command_line()}`",
        f"- Code: {args.code}",
        f"- Machine: {info['cpu']}, {info['cores']} cores, Python {info['python']}",
        f"- Server on core {args.server_core} (taskset), this load generator on core "
        f"{args.client_core}: they share the machine, so figures are noisy; compare "
        "ratios from one run.",
        f"- Workload: {', '.join(str(c) for c in args.clients)} clients, {args.pushes} pushes "
        f"at {args.rate:g}/s, {args.runs} run(s) per (clients, target), a fresh server per "
        "run, targets interleaved.",
        f"- Targets: {', '.join(f'`{t}`' for t in args.targets)}; ratios are against "
        f"`{BASELINE}` of the same run and client count.",
        "- job->audio_update = scheduled push -> the answer's `audio_update` at the asker; "
        "broadcast = scheduled push -> the k-th `done_update` at every client. Pushes "
        "leave on schedule to within a loop iteration (the load generator sleeps until "
        "2 ms before, then yields: asyncio alone wakes up to 1 ms late). "
        f"With {args.pushes} pushes, a run's job p99 is its slowest job or close to it.",
        "- Events emitted: from the workload (per job, 2 `todo_update` + 2 `run_update` + "
        "1 `done_update` to every client; plus `queued` and 2 `audio_update` to the asker "
        "on /ws, or 2 `audio_update` to every client on Socket.IO). Frames delivered: "
        "those events as received by the clients (greetings and pings excluded). CPU = "
        "the server's process-group CPU over the window. Other CPU on the machine = "
        "busy time (user + system, all cores) that was neither the server's nor this "
        "process's; steal = time the hypervisor ran something else.",
        "",
        "## Targets",
        "",
        "Judged on the median over runs of each run's figure.",
        "",
    ]
    lines += md_table(
        ["clients", "target", "status", "median", "per run", "note"],
        [
            [
                f"{v['clients']:,}",
                v["target"],
                f"**{v['status']}**",
                _value(v["median"], v["unit"]),
                " / ".join(_value(x, v["unit"]) for x in v["per_run"]) or "n/a",
                v["note"],
            ]
            for v in verdicts
        ],
    )
    shares = [c["other_cpu_share"] for c in cells if "other_cpu_share" in c]
    if shares:
        median, top = statistics.median(shares), max(shares)
        lines += ["", "Other work on the machine while the cells ran (CPU that was neither the "
                  f"server nor this load generator, share of all cores): median {median:.0%}, "
                  f"max {top:.0%}."]  # fmt: skip
    lines += ["", "## Latency and CPU", "", "Median over runs (each run's figures below).", ""]
    headers = ["clients", "target", *FIGURES, "done_update not delivered"]
    summary_rows = []
    for clients in args.clients:
        for name in args.targets:
            group = [c for c in cells if c["clients"] == clients and c["target"] == name]

            def med(*path: str, group: list[dict[str, Any]] = group) -> float:
                return _median([_pick(c, *path) for c in group])

            summary_rows.append(
                [
                    f"{clients:,}",
                    name,
                    fmt(med("job_audio_ms", "p50")),
                    fmt(med("job_audio_ms", "p99")),
                    fmt(med("broadcast_ms", "p50")),
                    fmt(med("broadcast_ms", "p99")),
                    fmt(med("cpu_us_per_frame")),
                    fmt(med("cpu_us_per_event")),
                    _int(med("frames_delivered")),
                    _int(med("events_emitted")),
                    _int(med("lost_done_updates")),
                ]
            )
    lines += md_table(headers, summary_rows)
    lines += [
        "",
        "## Ratios vs flask-gevent",
        "",
        "FastAPI / gevent of the same run and client count: below 1 is better for FastAPI.",
        "",
    ]
    ratio_rows = []
    for clients in args.clients:
        per_run = [ratios(cells, run, clients) for run in range(1, args.runs + 1)]
        for run, values in enumerate(per_run, 1):
            ratio_rows.append(
                [f"{clients:,}", str(run), *(_value(values[k], "x") for k, _, _ in RATIO_COLUMNS)]
            )
        if args.runs > 1:
            ratio_rows.append(
                [
                    f"{clients:,}",
                    "median",
                    *(_value(_median([r[k] for r in per_run]), "x") for k, _, _ in RATIO_COLUMNS),
                ]
            )
    lines += md_table(["clients", "run", *(label for _, label, _ in RATIO_COLUMNS)], ratio_rows)
    lines += ["", "## Per run", ""]
    run_rows = []
    for clients in args.clients:
        for run in range(1, args.runs + 1):
            for name in args.targets:
                c = _cell(cells, run, clients, name)
                if not c or "error" in c:
                    run_rows.append(
                        [f"{clients:,}", str(run), name, c.get("error", "missing"), *[""] * 10]
                    )
                    continue
                run_rows.append(
                    [
                        f"{clients:,}",
                        str(run),
                        name,
                        fmt(c["job_audio_ms"]["p50"]),
                        fmt(c["job_audio_ms"]["p99"]),
                        fmt(c["broadcast_ms"]["p50"]),
                        fmt(c["broadcast_ms"]["p99"]),
                        fmt(c["cpu_us_per_frame"]),
                        fmt(c["cpu_us_per_event"]),
                        f"{c['frames_delivered']:,}",
                        f"{c['events_emitted']:,}",
                        f"{c['server_cpu_s']:.2f}",
                        f"{c['other_cpu_share']:.0%}",
                        f"{c['steal_share']:.0%}",
                    ]
                )
    lines += md_table(
        [
            "clients",
            "run",
            "target",
            *FIGURES,
            "server CPU s",
            "other CPU on the machine",
            "steal",
        ],
        run_rows,
    )
    lines += [
        "",
        "## Frames by event",
        "",
        "Delivered / emitted per event name, summed over runs; other frames are "
        "greetings and heartbeats, outside the workload.",
        "",
    ]
    event_rows = []
    for clients in args.clients:
        for name in args.targets:
            group = [
                c
                for c in cells
                if c["clients"] == clients and c["target"] == name and "error" not in c
            ]
            emitted: Counter[str] = Counter()
            delivered: Counter[str] = Counter()
            other: Counter[str] = Counter()
            for c in group:
                emitted.update(c["events_emitted_by_name"])
                delivered.update(c["frames_delivered_by_name"])
                other.update(c["other_frames_by_name"])
            event_rows.append(
                [
                    f"{clients:,}",
                    name,
                    ", ".join(f"{k} {delivered[k]:,}/{v:,}" for k, v in sorted(emitted.items())),
                    ", ".join(f"{k} {v:,}" for k, v in sorted(other.items())) or "none",
                ]
            )
    lines += md_table(["clients", "target", "delivered / emitted", "other frames"], event_rows)
    return lines


def code_version() -> str:
    """The commit the servers ran, and whether the tree had uncommitted changes."""
    try:
        sha = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            [
                "git",
                "-C",
                str(ROOT),
                "status",
                "--porcelain",
                "--",
                "fastapi_app",
                "flask_app",
                "queues",
                "wire",
                "config.py",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return f"{sha} in {ROOT}" + (", with uncommitted server changes" if dirty else ", clean")


def write(out: Path, lines: list[str], data: dict[str, Any]) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out.with_suffix(".json").write_text(json.dumps(data, indent=2, default=str), "utf-8")
    return out


# --- command line ----------------------------------------------------------------------


def _ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def _names(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [n for n in names if n not in servers.TARGET_NAMES]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown target(s) {', '.join(unknown)}; pick from {', '.join(servers.TARGET_NAMES)}"
        )
    return names


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.asker",
        description="Job pushed -> the asker's audio_update while queue counts fan out to "
        "every client; Flask-SocketIO gevent vs FastAPI Socket.IO and /ws.",
    )
    p.add_argument("--clients", type=_ints, default=[200, 1000], help="e.g. 200,1000")
    p.add_argument("--runs", type=int, default=2, help="runs per (clients, target)")
    p.add_argument(
        "--targets",
        type=_names,
        default=list(DEFAULT_TARGETS),
        help=f"comma-separated, from {', '.join(servers.TARGET_NAMES)}",
    )
    p.add_argument("--pushes", type=int, default=40, help="jobs per run")
    p.add_argument("--rate", type=float, default=5.0, help="jobs pushed per second")
    p.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="Markdown report (the JSON goes next to it)"
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="50 clients, 1 run, 8 pushes: a smoke run well under a minute",
    )
    p.add_argument("--server-core", type=int, default=0, help="core for the servers (taskset)")
    p.add_argument("--client-core", type=int, default=1, help="core for this load generator")
    args = p.parse_args(argv)
    if args.quick:
        args.clients, args.runs, args.pushes = [50], 1, 8
    if BASELINE not in args.targets:
        args.targets.insert(0, BASELINE)  # every ratio is against it
    if args.runs < 1 or args.pushes < 1 or args.rate <= 0 or not args.clients:
        p.error("--runs, --pushes and --rate must be positive, --clients non-empty")
    return args


def _on_signal(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")  # unwind: every `with` stops its server


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    args.code = code_version()
    pin_self(args.client_core)
    raise_nofile(max(args.clients) * 2 + 4096)  # the servers inherit it too
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _on_signal)
    started = time.monotonic()
    try:
        cells = asyncio.run(run_all(args))
    except KeyboardInterrupt:
        print("\ninterrupted: servers stopped, no report", file=sys.stderr)
        return 130
    finally:
        servers.stop_all()
    args.seconds = time.monotonic() - started
    verdicts = judge(cells, args.runs, args.clients)
    lines = markdown(cells, verdicts, args)
    data = {
        "stamp": args.stamp,
        "command": command_line(),
        "machine": machine(),
        "code": args.code,
        "settings": {
            k: getattr(args, k)
            for k in (
                "clients",
                "runs",
                "targets",
                "pushes",
                "rate",
                "quick",
                "server_core",
                "client_core",
                "seconds",
            )
        },
        "server_env": servers.SERVER_ENV,
        "targets": verdicts,
        "ratios": {
            str(c): {str(r): ratios(cells, r, c) for r in range(1, args.runs + 1)}
            for c in args.clients
        },
        "cells": cells,
    }
    out = write(args.out.resolve(), lines, data)
    print()
    print(
        "\n".join(
            md_table(
                ["clients", "target", "status", "median"],
                [
                    [f"{v['clients']:,}", v["target"], v["status"], _value(v["median"], v["unit"])]
                    for v in verdicts
                ],
            )
        )
    )
    print(f"report: {out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
