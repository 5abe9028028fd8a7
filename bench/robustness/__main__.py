"""Every robustness part at full size, one report.

    python -m bench.robustness [--quick] [--parts http,frames,parsers,floods]
                               [--http-cases N] [--frames N] [--parser-seconds S]
                               [--parser-targets ws_frames,...] [--out PATH]

Parts run one after another, each against its own real server(s): ``http``
(schemathesis, N cases per operation), ``frames`` (N generated frames per WebSocket
endpoint), ``parsers`` (atheris, S seconds per wire parser) and ``floods``. A part whose
module is not there is skipped with a note; a part that crashes is reported as a
failure of that part. Writes ``--out`` (default ``bench/reports/robustness.md``) and the
same name with ``.json``; exits 1 when any part failed.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import importlib.util
import inspect
import os
import sys
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import REPORTS
from bench.robustness import report
from bench.robustness.report import Section


@dataclass(frozen=True)
class Part:
    module: str
    option: str | None  # the argument of the CLI flag that sizes it (None: no flag)
    keyword: str  # the name run() takes it as
    full: float | None  # None: run()'s own default
    quick: float | None


PARTS = {
    "http": Part("bench.robustness.http", "http_cases", "scale", 200, 10),
    "frames": Part("bench.robustness.frames", "frames", "scale", 20_000, 500),
    "parsers": Part("bench.robustness.parsers", "parser_seconds", "seconds", 60, 3),
    "floods": Part("bench.robustness.floods", None, "scale", None, 100),
}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.robustness", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="small sizes (a few minutes)")
    parser.add_argument("--parts", default=",".join(PARTS), type=_parts, help="comma-separated")
    parser.add_argument("--http-cases", type=int, help="cases per HTTP operation (200)")
    parser.add_argument("--frames", type=int, help="generated frames per endpoint (20,000)")
    parser.add_argument("--parser-seconds", type=float, help="seconds per wire parser (60)")
    parser.add_argument("--parser-targets", type=_targets, help="comma-separated (all)")
    parser.add_argument("--out", type=Path, default=REPORTS / "robustness.md")
    return parser.parse_args(argv)


def _parts(value: str) -> list[str]:
    names = [name.strip() for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in PARTS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown part(s) {unknown}; valid: {', '.join(PARTS)}")
    return names


def _targets(value: str) -> list[str]:
    from bench.robustness.parsers import TARGETS

    names = [name.strip() for name in value.split(",") if name.strip()]
    if not names or any(name not in TARGETS for name in names):
        raise argparse.ArgumentTypeError(f"valid parser targets: {', '.join(TARGETS)}")
    return names


def options(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of the part's run(): its size, and 2 parsers at a time
    when quick (both cores, half the wait)."""
    part = PARTS[name]
    given = getattr(args, part.option) if part.option else None
    size = given if given is not None else (part.quick if args.quick else part.full)
    kwargs: dict[str, Any] = {}
    if size is not None:
        kwargs[part.keyword] = size if part.keyword == "seconds" else int(size)
    if name == "parsers" and args.parser_targets:
        kwargs["targets"] = args.parser_targets
    if name == "parsers" and args.quick:
        kwargs["jobs"] = min(2, os.cpu_count() or 1)
    return kwargs


def run_part(name: str, kwargs: dict[str, Any]) -> Section:
    """One part's Section; a part that raises becomes a failed Section, never a stop."""
    try:
        run = importlib.import_module(PARTS[name].module).run
        result = run(**kwargs)
        return asyncio.run(result) if inspect.isawaitable(result) else result
    except Exception as exc:
        section = Section(f"{name}: the part itself failed", ["part", "error"])
        section.rows.append([name, f"{type(exc).__name__}: {exc}"])
        section.failures.append(f"{name} raised {type(exc).__name__}: {exc}\n" +
                                traceback.format_exc())  # fmt: skip
        return section


def missing(name: str) -> str | None:
    """Why a part cannot run yet (no module, or no run() in it), or None."""
    module = PARTS[name].module
    if importlib.util.find_spec(module) is None:
        return f"{module} not found"
    try:
        loaded = importlib.import_module(module)
    except Exception:
        return None  # run_part reports the error as the part's failure
    return None if hasattr(loaded, "run") else f"{module} has no run() yet"


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    parts: dict[str, Section] = {}
    skipped: dict[str, str] = {}
    for name in args.parts:
        if why := missing(name):
            skipped[name] = why
            print(f"[robustness] {name}: skipped ({why})", flush=True)
            continue
        kwargs = options(name, args)
        print(f"[robustness] {name}: starting {kwargs or '(defaults)'}", flush=True)
        started = time.perf_counter()
        section = parts[name] = run_part(name, kwargs)
        count, unit = report.count_of(section)
        print(f"[robustness] {name}: {count:,} {unit}, {len(section.failures)} failures "
              f"in {time.perf_counter() - started:.0f} s", flush=True)  # fmt: skip
    md, js = report.write(parts, args.out, skipped)
    print(f"report: {md} and {js}")
    return 0 if all(section.passed for section in parts.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
