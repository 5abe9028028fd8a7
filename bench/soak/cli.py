"""``python -m bench.soak``: command line, the server process, and the report."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import uvloop

from bench.common import REPORTS, free_port, pin_self, python, raise_nofile
from bench.compare.servers import GroupServer
from bench.soak import logscan, report
from bench.soak.load import FD_SLACK, TASK_SLACK, Options, soak
from bench.soak.verdict import verdicts

DEFAULT_OUT = REPORTS / "soak.md"
SERVER_DEFAULT_WINDOW = 30.0  # GENIE_WS_RESUME_WINDOW's default
SERVER_DEFAULT_PING = 25.0  # GENIE_SIO_PING_INTERVAL's default


def server_env(resume_window: float, ping_interval: float = SERVER_DEFAULT_PING) -> dict[str, str]:
    """Kit defaults but for what one load generator on one address would trip over."""
    return {
        "GENIE_LOG_LEVEL": "warning",
        # Rate limits key on the address (or the /ws client): every soak client is
        # 127.0.0.1, so 60 questions and 240 audio requests a minute would refuse it.
        "GENIE_RATE_LIMIT_QUERIES": "0",
        "GENIE_RATE_LIMIT_AUDIO": "0",
        # Per-address caps likewise: 1,000 clients on one address; the totals stay.
        "GENIE_MAX_CONNECTIONS_PER_IP": "0",
        "GENIE_MAX_SYNTHESES_PER_CLIENT": "0",
        # Every stream synthesizes: a cache filling up with unique texts reads as growth.
        "GENIE_TTS_CACHE_ENTRIES": "0",
        "GENIE_JOB_HANDLER": "offline",
        "GENIE_TTS_PROVIDERS": "espeak",
        "GENIE_WS_RESUME_WINDOW": f"{resume_window:g}",
        "GENIE_SIO_PING_INTERVAL": f"{ping_interval:g}",
    }


WHY_SETTINGS = (
    "per-address limits off, as every client is one loopback address "
    "(`GENIE_RATE_LIMIT_QUERIES=0`, `GENIE_RATE_LIMIT_AUDIO=0`, "
    "`GENIE_MAX_CONNECTIONS_PER_IP=0`, `GENIE_MAX_SYNTHESES_PER_CLIENT=0`); audio cache "
    "off (`GENIE_TTS_CACHE_ENTRIES=0`); offline job handler, espeak; every total cap at "
    "the kit's default (`GENIE_MAX_QUEUED=500`, `GENIE_MAX_QUEUED_PER_CLIENT=3`, "
    "`GENIE_MAX_WAIT=60`, `GENIE_MAX_CONNECTIONS=4096`, `GENIE_MAX_SYNTHESES=16`): the "
    "soak stays far below them, so a refusal is a finding; history 1,000 (listings "
    "polled every sample)"
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__)
    p.add_argument("--minutes", type=float, default=10.0, help="how long questions are asked")
    p.add_argument("--clients", type=int, default=1000, help="half /ws, half Socket.IO")
    p.add_argument("--rate", type=float, default=2.0, help="questions per second in all")
    p.add_argument("--audio", type=int, default=2, help="audio streams in flight at once")
    p.add_argument(
        "--resume-window",
        type=float,
        default=SERVER_DEFAULT_WINDOW,
        help="the server's GENIE_WS_RESUME_WINDOW (s); the end waits it out",
    )
    p.add_argument(
        "--sio-ping-interval",
        type=float,
        default=SERVER_DEFAULT_PING,
        help="the server's GENIE_SIO_PING_INTERVAL (s); closed sockets' ping tasks sleep it out",
    )
    p.add_argument(
        "--sample-every",
        type=float,
        default=None,
        help="seconds between samples (default 10, less for short runs)",
    )
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--server-core", type=int, default=0)
    p.add_argument("--client-core", type=int, default=1)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT,
                   help="Markdown report; the JSON and the server log go next to it")  # fmt: skip
    args = p.parse_args(argv)
    if args.minutes <= 0 or args.clients < 2 or args.rate <= 0 or args.audio < 0:
        p.error("--minutes and --rate must be positive, --clients at least 2")
    args.seconds = args.minutes * 60
    # The first minute or 20 %, whichever is longer (at most half the run): sessions last
    # up to two minutes, so the churn levels off only once the first ones have ended.
    args.warmup = min(max(60.0, 0.2 * args.seconds), 0.5 * args.seconds)
    if args.sample_every is None:
        args.sample_every = min(10.0, max(1.0, args.seconds / 6))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    pin_self(args.client_core)
    raise_nofile(args.clients * 3 + 2000)  # the server inherits it
    out = args.out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    log_path = out.with_suffix(".log")
    port = free_port()
    argv_ = [python(), "-m", "fastapi_app", "--host", "127.0.0.1", "--port", str(port)]
    server = GroupServer(
        argv_,
        port,
        core=args.server_core,
        env=server_env(args.resume_window, args.sio_ping_interval),
    )
    started = time.monotonic()
    # A file, never a pipe: a chatty server must not block on it.
    with open(log_path, "wb") as server.log, server:
        print(f"server pid {server.pid} on port {port}; soaking {args.seconds:g} s", flush=True)
        fig = uvloop.run(soak(options(args, port, server.pid)))
    log = logscan.scan(log_path.read_text(encoding="utf-8", errors="replace"))
    judged = verdicts(fig, log)
    data = payload(args, server.command, fig, judged, log, time.monotonic() - started)
    lines = report.markdown(data["setup"], judged, data["figures"], data["samples"], log)
    path = report.write(out, lines, data)
    for v in judged:
        print(f"{'pass' if v['passed'] else 'FAIL'}  {v['criterion']}: {v['figure']}")
    print(f"report: {path}", flush=True)
    return 0 if all(v["passed"] for v in judged) else 1


def options(args: argparse.Namespace, port: int, pid: int) -> Options:
    return Options(port=port, pid=pid, clients=args.clients, rate=args.rate, audio=args.audio,
                   seconds=args.seconds, interval=args.sample_every, warmup=args.warmup,
                   resume_window=args.resume_window, ping_interval=args.sio_ping_interval,
                   seed=args.seed)  # fmt: skip


SETUP_KEYS = (
    "clients", "rate", "audio", "seconds", "warmup", "resume_window", "sio_ping_interval",
    "sample_every", "seed", "server_core", "client_core",
)  # fmt: skip


def payload(
    args: argparse.Namespace,
    command: str,
    fig: dict[str, Any],
    judged: list[dict[str, Any]],
    log: dict[str, Any],
    took: float,
) -> dict[str, Any]:
    setup = {k: getattr(args, k) for k in SETUP_KEYS}
    setup |= {"server_command": command, "why_settings": WHY_SETTINGS, "took_s": round(took, 1),
              "notes": NOTES}  # fmt: skip
    return {
        "setup": setup,
        "passed": all(v["passed"] for v in judged),
        "verdicts": judged,
        "figures": report.figures(fig),
        "samples": [s.row() for s in fig["run"].samples],
        "log": log,
    }


NOTES = [
    "- A question is `what is <token> plus 1`; its answer's `audio_update` URL and the "
    "`/get_queue/done|dead` listings name the token, so each question is followed from "
    "its asker to its one terminal state. Listings are polled every sample (history "
    "keeps the newest 1,000), and once more at the end.",
    "- Owed answer: asked by a client that reads and did not drop on purpose before "
    "hearing it. A /ws client that resumes is owed its answer again (the replay brings "
    "it) unless the server says the replay was incomplete; a Socket.IO client has no "
    "resume, so a drop, or the server closing it, ends what it is owed.",
    "- RSS growth is load end minus the end of the warm-up (the first minute or 20 % of "
    "the load, whichever is longer, at most half), both with every client on; the growth "
    "over the second half of the load is shown too: a leak keeps growing there, the "
    "churn's warm-up has levelled off.",
    "- After the clients leave the soak waits for the resume window to expire every "
    "/ws session, then compares the server's open fds and asyncio tasks (`/health` "
    f"`tasks`, this request's own included) with the baseline, +{FD_SLACK} fds and "
    f"+{TASK_SLACK} tasks "
    "of slack (keep-alive sockets the kernel has not reaped yet).",
    "- Socket.IO clients speak raw Engine.IO v4 (`bench.rawws`): 500 `socketio.AsyncClient`s "
    "took 6.7 s of CPU for 6 s of 4 jobs/s on this generator's one core, the raw client "
    "0.66 s.",
]
