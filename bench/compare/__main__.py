"""``python -m bench.compare [--quick] [--out DIR]``: see ``bench/compare/__init__.py``."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from bench.common import REPORTS, pin_self, raise_nofile
from bench.compare import servers
from bench.compare.output import write_all
from bench.compare.plan import FULL, QUICK
from bench.compare.run import run_all


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.compare",
        description="Flask-SocketIO (threading, gevent) vs FastAPI (Socket.IO, /ws): "
        "the same workloads, one report.",
    )
    p.add_argument("--quick", action="store_true", help="small sizes, under two minutes (CI)")
    p.add_argument("--out", type=Path, help="output folder (default: bench/reports/compare-<utc>)")
    p.add_argument("--server-core", type=int, default=0, help="core for the servers (taskset)")
    p.add_argument("--client-core", type=int, default=1, help="core for this load generator")
    return p.parse_args(argv)


def _on_signal(signum: int, frame: FrameType | None) -> None:
    # SIGTERM/SIGHUP behave like Ctrl-C: unwind, so every `with` stops its server.
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    plan = QUICK if args.quick else FULL
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = (args.out or REPORTS / f"compare-{stamp}").resolve()
    out.mkdir(parents=True, exist_ok=True)
    servers.LOG_DIR[:] = [out]
    print(f"output folder: {out}", flush=True)
    pin_self(args.client_core)
    raise_nofile(plan.ceiling_cap * 2 + 4096)  # the servers inherit it too
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _on_signal)
    started = time.monotonic()
    try:
        results = asyncio.run(run_all(plan, args.server_core, shared=args.quick))
    except KeyboardInterrupt:
        print("\ninterrupted: servers stopped, no report", file=sys.stderr)
        return 130
    finally:
        servers.stop_all()
    meta = {
        "stamp": stamp,
        "argv": ["python", "-m", "bench.compare", *(argv if argv is not None else sys.argv[1:])],
        "mode": "quick" if args.quick else "full",
        "seconds": time.monotonic() - started,
        "server_core": args.server_core,
        "client_core": args.client_core,
    }
    report = write_all(out, plan, results, meta)
    print(json.dumps({"report": str(report), "folder": str(out)}), flush=True)
    print(f"report: {report}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
