"""Speech benchmark: time to the first MP3 byte, total time and real-time factor.

    python -m bench.tts [--runs N] [--rounds N] [--out FILE]
    python -m bench.tts --provider openai [--quick] ...   # see bench/tts_openai.py

For texts of 100, 1,000 and 5,000 characters (one stream at a time), then 1, 4 and 16
concurrent streams of the same text: first-byte and total time, p50 and p99 (nearest
rank), real-time factor = seconds of audio / seconds of wall time. The cache is off,
so every run synthesizes. Writes a Markdown report and a JSON twin (default
``bench/reports/tts.md`` and ``.json``). Shared machines are noisy: compare the ratios
of one run, not figures across runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import platform
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import miniaudio

from tts.engine import SpeechEngine
from tts.espeak import EspeakProvider

LENGTHS = (100, 1000, 5000)
CONCURRENCY = (1, 4, 16)
DEFAULT_OUT = Path(__file__).resolve().parent / "reports" / "tts.md"
TARGETS = {
    "first_byte_p50_ms": 20.0,
    "ratio_5000_100": 1.5,
    "single_stream_rtf": 200.0,
    "concurrent16_first_byte_p99_ms": 100.0,
}
# An assistant-style answer with sentences of varied length, repeated as needed.
CORPUS = (
    "Sure, here is what I found. The weather in Lisbon will be mild this week, with "
    "highs around nineteen degrees and a light breeze from the west. Rain is likely on "
    "Thursday afternoon, so take an umbrella if you plan to walk along the river. "
    "On Friday the sky clears again! Would you like me to set a reminder? I can also "
    "read the forecast for the weekend, e.g. for Saturday morning at 9 a.m. when the "
    "market opens. Prices rose by 3.5 percent last year; most visitors did not mind. "
    "Mr. Silva, the guide, says the best time to visit the castle is late in the day, "
    "when the light turns gold and the crowds have gone home. "
)


def make_text(chars: int) -> str:
    """About ``chars`` characters of natural text, cut at a word boundary."""
    text = CORPUS * (chars // len(CORPUS) + 1)
    return text[:chars].rsplit(" ", 1)[0].rstrip(",;") + "."


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


@dataclass
class Run:
    first_byte: float
    total: float
    audio_bytes: bytes = field(repr=False)


async def one_stream(engine: SpeechEngine, text: str) -> Run:
    start = time.perf_counter()
    first = None
    chunks: list[bytes] = []
    async for chunk in engine.stream(text, fmt="mp3"):
        if first is None and chunk:
            first = time.perf_counter() - start
        chunks.append(chunk)
    total = time.perf_counter() - start
    return Run(first if first is not None else total, total, b"".join(chunks))


def audio_seconds(mp3: bytes) -> float:
    decoded = miniaudio.mp3_read_s16(mp3)
    return len(decoded.samples) / decoded.nchannels / decoded.sample_rate


def ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


async def bench_lengths(engine: SpeechEngine, runs: int) -> list[dict[str, float]]:
    rows = []
    for length in LENGTHS:
        text = make_text(length)
        results = [await one_stream(engine, text) for _ in range(runs)]
        firsts = [r.first_byte for r in results]
        totals = [r.total for r in results]
        seconds = audio_seconds(results[0].audio_bytes)
        rows.append(
            {
                "chars": len(text),
                "runs": runs,
                "first_byte_p50_ms": ms(statistics.median(firsts)),
                "first_byte_p99_ms": ms(percentile(firsts, 99)),
                "total_p50_ms": ms(statistics.median(totals)),
                "total_p99_ms": ms(percentile(totals, 99)),
                "audio_s": round(seconds, 2),
                "rtf": round(seconds / statistics.median(totals), 1),
            }
        )
    return rows


async def bench_concurrency(
    engine: SpeechEngine, chars: int, rounds: int
) -> list[dict[str, float]]:
    text = make_text(chars)
    seconds = audio_seconds((await one_stream(engine, text)).audio_bytes)
    rows = []
    for streams in CONCURRENCY:
        firsts: list[float] = []
        walls: list[float] = []
        for _ in range(rounds):
            start = time.perf_counter()
            results = await asyncio.gather(*(one_stream(engine, text) for _ in range(streams)))
            walls.append(time.perf_counter() - start)
            firsts.extend(r.first_byte for r in results)
        rows.append(
            {
                "streams": streams,
                "chars": len(text),
                "rounds": rounds,
                "first_byte_p50_ms": ms(statistics.median(firsts)),
                "first_byte_p99_ms": ms(percentile(firsts, 99)),
                "all_done_p50_ms": ms(statistics.median(walls)),
                "all_done_p99_ms": ms(percentile(walls, 99)),
                "aggregate_rtf": round(streams * seconds / statistics.median(walls), 1),
            }
        )
    return rows


def verdicts(lengths: list[dict[str, float]], concurrent: list[dict[str, float]]) -> dict:
    by_len = {row["chars"]: row for row in lengths}
    short, long = by_len[min(by_len)], by_len[max(by_len)]
    ratio = long["first_byte_p50_ms"] / short["first_byte_p50_ms"]
    sixteen = next(row for row in concurrent if row["streams"] == 16)
    figures = {
        "first_byte_p50_ms": max(row["first_byte_p50_ms"] for row in lengths),
        "ratio_5000_100": round(ratio, 2),
        "single_stream_rtf": min(row["rtf"] for row in lengths),
        "concurrent16_first_byte_p99_ms": sixteen["first_byte_p99_ms"],
    }
    passed = {
        "first_byte_p50_ms": figures["first_byte_p50_ms"] <= TARGETS["first_byte_p50_ms"],
        "ratio_5000_100": ratio <= TARGETS["ratio_5000_100"],
        "single_stream_rtf": figures["single_stream_rtf"] >= TARGETS["single_stream_rtf"],
        "concurrent16_first_byte_p99_ms": figures["concurrent16_first_byte_p99_ms"]
        <= TARGETS["concurrent16_first_byte_p99_ms"],
    }
    return {"figures": figures, "targets": TARGETS, "passed": passed}


def table(rows: list[dict[str, float]]) -> str:
    heads = list(rows[0])
    lines = ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    lines += ["| " + " | ".join(str(row[h]) for h in heads) + " |" for row in rows]
    return "\n".join(lines)


def markdown(report: dict) -> str:
    checks = report["verdicts"]
    rows = [
        {
            "figure": name,
            "measured": checks["figures"][name],
            "target": ("≤ " if name != "single_stream_rtf" else "≥ ") + str(target),
            "ok": "yes" if checks["passed"][name] else "NO",
        }
        for name, target in checks["targets"].items()
    ]
    return "\n\n".join(
        [
            "# Speech benchmark (espeak-ng → MP3, cache off)",
            f"{report['when']} · {report['machine']} · Python {report['python']}",
            "## One stream at a time\n\n" + table(report["lengths"]),
            "## Concurrent streams\n\n" + table(report["concurrency"]),
            "## Targets\n\n" + table(rows),
        ]
    )


async def run(runs: int, rounds: int, concurrency_chars: int) -> dict:
    async with SpeechEngine([EspeakProvider()], cache=None) as engine:
        for _ in range(3):  # warm-up: library pages, voice files, code paths
            await one_stream(engine, make_text(1000))
        lengths = await bench_lengths(engine, runs)
        concurrent = await bench_concurrency(engine, concurrency_chars, rounds)
    return {
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": f"{platform.machine()} {platform.system()}, {_cpus()} CPUs",
        "python": platform.python_version(),
        "lengths": lengths,
        "concurrency": concurrent,
        "verdicts": verdicts(lengths, concurrent),
    }


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """This bench's options, or with ``--provider openai`` those of ``bench.tts_openai``."""
    provider = argparse.ArgumentParser(add_help=False)
    provider.add_argument(
        "--provider",
        choices=("espeak", "openai"),
        default="espeak",
        help="espeak (this bench) or openai (bench/tts_openai.py, its own options)",
    )
    chosen, rest = provider.parse_known_args(argv)
    if chosen.provider == "openai":
        from bench import tts_openai

        args = tts_openai.parse_args(rest)
        args.provider = "openai"
        return args
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], parents=[provider])
    parser.add_argument("--runs", type=int, default=30, help="runs per text length")
    parser.add_argument("--rounds", type=int, default=6, help="rounds per concurrency level")
    parser.add_argument("--concurrency-chars", type=int, default=1000, help="text length")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="Markdown report")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.provider == "openai":
        from bench import tts_openai

        tts_openai.bench(args)
        return
    report = asyncio.run(run(args.runs, args.rounds, args.concurrency_chars))
    text = markdown(report)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n", encoding="utf-8")
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {args.out} and {args.out.with_suffix('.json')}")


if __name__ == "__main__":
    main()
