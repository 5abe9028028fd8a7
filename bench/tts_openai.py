"""Speech from an OpenAI-compatible server: what the kit adds to its first byte, and what a
second instance buys under ``least_busy``.

    python -m bench.tts --provider openai [--runs N] [--rounds N] [--out FILE] [--quick]

The speech server is the fake of ``tests/fakes/openai_speech_server.py`` (tone audio as
MP3, a set time to first audio, paced chunks, ``slots`` syntheses at once), each one run
as its own process. Servers are pinned to core 0, this client to core 1; this process
runs uvloop, as the server does.

1. First byte, one request at a time, ~100 characters, MP3, fake first byte 20 ms:

   - ``provider``: ``POST /v1/audio/speech`` straight to the fake (aiohttp, keep-alive);
   - ``provider_sdk``: the same through the official ``openai`` SDK,
     ``with_streaming_response`` on a pooled client, exactly as ``OpenAIProvider`` calls it;
   - ``engine``: ``SpeechEngine([OpenAIProvider])`` in this process, first chunk of
     ``.stream()`` (provider + engine, no HTTP in front);
   - ``kit``: ``GET /api/get-audio?msg=`` of a real ``python -m fastapi_app`` (full stage,
     ``GENIE_TTS_PROVIDERS=openai@<fake>``, cache and rate limits off) over loopback with
     the same aiohttp keep-alive client as ``provider``.

   The four paths take turns in a shuffled order each round, after a warm-up (the first
   SDK request on a new client is ~150 ms slower). Added = kit - provider_sdk: the
   provider called the way the kit calls it, so what remains is the kit's own (the hop to
   it, uvicorn, FastAPI, the stream task, the engine). Target: added p50 <= 2 ms. Also
   shown: kit - provider (the same plain client on both sides, so the SDK's own cost
   counts against the kit) and where the difference splits (SDK, engine, server).

2. Ten requests through the engine (in this process), fakes with ``slots=1``
   (one synthesis at a time, like a model on one GPU) and ~0.4 s per 100-character
   answer: one instance; two instances under ``least_busy``; two under ``round_robin``.
   ``burst``: ten ~100-character answers at once. ``staggered``: 200- and 50-character
   answers alternating, one every 150 ms, where the two policies differ (in a burst of
   equal requests both simply alternate instances; here round_robin sends every long
   answer to the same instance). First byte and total per request, p50/p99 over all
   rounds, and all done (the last request's end); ratio one instance / two instances.
   ``--quick`` paces the fakes several times faster (and the arrivals to match).

Writes Markdown and JSON (``bench/common.write_report``), moved to ``--out`` (default
``bench/reports/tts-openai.md`` and ``.json``). Shared machines are noisy: compare the
figures of one run, not across runs.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import statistics
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack, ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import openai
import uvloop

from bench.common import (
    NO_CLIENT_LIMITS_ENV,
    REPORTS,
    ServerProcess,
    fmt,
    free_port,
    md_table,
    pin_self,
    python,
    summary,
    write_report,
)
from bench.get_audio import make_text
from config import Settings
from tts.engine import SpeechEngine, build_speech_engine

DEFAULT_OUT = REPORTS / "tts-openai.md"
TARGET_ADDED_P50_MS = 2.0
API_KEY = "bench-key"
MODEL = "kokoro"
VOICE = "af_bella"  # one of the fake's voices
CHARS = 100
# Part 1: only the first byte matters; a short body keeps each run short.
LATENCY_FAKE = {"first_byte_delay": 0.02, "chunk_delay": 0.001, "seconds_per_char": 0.01}
# Part 2: one synthesis at a time, ~7 s of audio per 100 characters sent in ~0.4 s.
CAPACITY_FAKE = {"first_byte_delay": 0.05, "chunk_delay": 0.005, "seconds_per_char": 0.07}
CAPACITY_FAKE_QUICK = {"first_byte_delay": 0.02, "chunk_delay": 0.001, "seconds_per_char": 0.05}
CONCURRENT = 10
STAGGER_S, STAGGER_S_QUICK = 0.15, 0.05
STAGGER_CHARS = (200, 50)  # long, short, long, short ...
KIT_ENV = {
    "GENIE_LOG_LEVEL": "warning",
    "GENIE_TTS_CACHE_ENTRIES": "0",  # every request reaches the provider
    **NO_CLIENT_LIMITS_ENV,  # one client sends every synthesis request, several at once
    "GENIE_CLOCK_INTERVAL": "3600",
    "GENIE_OPENAI_TTS_API_KEY": API_KEY,
    "GENIE_OPENAI_TTS_MODEL": MODEL,
    "GENIE_OPENAI_TTS_VOICE": VOICE,
}
PATHS = {
    "provider": "POST /v1/audio/speech to the fake (aiohttp, keep-alive)",
    "provider_sdk": "the same through the openai SDK (with_streaming_response, pooled)",
    "engine": "SpeechEngine([OpenAIProvider]).stream() in process",
    "kit": "GET /api/get-audio on python -m fastapi_app (aiohttp, keep-alive)",
}
# (label, minuend, subtrahend): what each difference of first-byte times stands for.
DIFFERENCES = (
    ("added by the kit (vs the provider through the SDK)", "kit", "provider_sdk"),
    ("added by the kit incl. the SDK's cost", "kit", "provider"),
    ("SDK vs plain HTTP client", "provider_sdk", "provider"),
    ("engine (balancer, checks, first chunk)", "engine", "provider_sdk"),
    ("FastAPI server + its loopback hop", "kit", "engine"),
)
DIFF_KEYS = ("p50_ms", "p99_ms", "paired_median_ms")
SETUPS = ("one", "least_busy", "round_robin")
CAPACITY_HEADERS = ("setup", "first byte p50 ms", "p99 ms", "total p50 ms", "total p99 ms",
                    "all done p50 ms", "requests per instance", "n")  # fmt: skip


# --- processes ----------------------------------------------------------------------


def fake_server(core: int | None, options: dict[str, float], slots: int | None) -> ServerProcess:
    port = free_port()
    argv = [python(), "-m", "tests.fakes.openai_speech_server", "--port", str(port)]
    argv += ["--api-key", API_KEY]
    for name, value in options.items():
        argv += [f"--{name.replace('_', '-')}", str(value)]
    if slots is not None:
        argv += ["--slots", str(slots)]
    return ServerProcess(argv, port, core=core)


def fake_url(fake: ServerProcess) -> str:
    return f"http://127.0.0.1:{fake.port}/v1"


def kit_server(core: int | None, provider_url: str) -> ServerProcess:
    port = free_port()
    argv = [python(), "-m", "fastapi_app", "--port", str(port), "--stage", "full"]
    env = {**KIT_ENV, "GENIE_TTS_PROVIDERS": f"openai@{provider_url}"}
    return ServerProcess(argv, port, core=core, env=env)


def engine_for(urls: list[str], policy: str = "fallback") -> SpeechEngine:
    """The engine the server would build from these settings (cache off)."""
    settings = Settings(
        tts_providers=[f"openai@{url}" for url in urls],
        tts_policy=policy,
        tts_cache_entries=0,
        tts_first_byte_timeout=120.0,  # a queue at one slot is the point, not a failure
        openai_tts_api_key=API_KEY,
        openai_tts_model=MODEL,
        openai_tts_voice=VOICE,
    )
    return build_speech_engine(settings)


# --- part 1: first byte, one request at a time ----------------------------------------


async def first_byte_http(http: aiohttp.ClientSession, method: str, url: str, **kw: Any) -> float:
    """Seconds from sending the request to its first body bytes; the body is read to the end."""
    started = time.perf_counter()
    first = None
    async with http.request(method, url, **kw) as response:
        response.raise_for_status()
        async for chunk in response.content.iter_any():
            if first is None and chunk:
                first = time.perf_counter()
    if first is None:
        raise RuntimeError(f"{url}: empty body")
    return first - started


async def first_byte_sdk(client: openai.AsyncOpenAI, text: str) -> float:
    started = time.perf_counter()
    first = None
    speech = client.audio.speech.with_streaming_response.create(
        model=MODEL, voice=VOICE, input=text, response_format="mp3", speed=1.0
    )
    async with speech as response:
        async for chunk in response.iter_bytes():
            if first is None and chunk:
                first = time.perf_counter()
    if first is None:
        raise RuntimeError("the SDK stream was empty")
    return first - started


async def first_byte_engine(engine: SpeechEngine, text: str) -> float:
    started = time.perf_counter()
    first = None
    async for chunk in engine.stream(text, fmt="mp3"):
        if first is None and chunk:
            first = time.perf_counter()
    if first is None:
        raise RuntimeError("the engine stream was empty")
    return first - started


async def latency(args: argparse.Namespace, provider_url: str, kit_url: str) -> dict[str, Any]:
    runs, warmup = args.runs, args.warmup
    speech_url = f"{provider_url}/audio/speech"
    auth = {"Authorization": f"Bearer {API_KEY}"}
    async with AsyncExitStack() as stack:
        http = await stack.enter_async_context(aiohttp.ClientSession())
        # The provider's own client set-up (SDK on a pooled httpx client, no retries).
        pool = openai.DefaultAsyncHttpxClient()
        stack.push_async_callback(pool.aclose)
        sdk = openai.AsyncOpenAI(
            base_url=provider_url, api_key=API_KEY, max_retries=0, http_client=pool
        )
        engine = await stack.enter_async_context(engine_for([provider_url]))

        def direct(text: str) -> Awaitable[float]:
            body = {"model": MODEL, "voice": VOICE, "input": text, "response_format": "mp3"}
            return first_byte_http(http, "POST", speech_url, json=body, headers=auth)

        paths: dict[str, Callable[[str], Awaitable[float]]] = {
            "provider": direct,
            "provider_sdk": lambda t: first_byte_sdk(sdk, t),
            "engine": lambda t: first_byte_engine(engine, t),
            "kit": lambda t: first_byte_http(http, "GET", kit_url, params={"msg": t}),
        }
        times: dict[str, list[float]] = {name: [] for name in paths}
        order = list(paths)
        shuffle = random.Random(7).shuffle
        for i in range(warmup + runs):
            shuffle(order)  # interleaved: noise hits every path alike
            for name in order:
                seconds = await paths[name](make_text(CHARS))
                if i >= warmup:
                    times[name].append(seconds)
            if (i + 1 - warmup) % 50 == 0 and i >= warmup:
                print(f"  first byte: {i + 1 - warmup}/{runs} rounds", flush=True)
    return latency_result(times)


def latency_result(times: dict[str, list[float]]) -> dict[str, Any]:
    stats = {name: summary(values) for name, values in times.items()}
    differences = []
    for label, a, b in DIFFERENCES:
        paired = [x - y for x, y in zip(times[a], times[b], strict=True)]
        differences.append(
            {
                "what": label,
                "paths": f"{a} - {b}",
                "p50_ms": stats[a]["p50"] - stats[b]["p50"],
                "p99_ms": stats[a]["p99"] - stats[b]["p99"],
                "paired_median_ms": statistics.median(paired) * 1000,
            }
        )
    added, plain = differences[0], differences[1]
    return {
        "paths": stats,
        "differences": differences,
        "target_added_p50_ms": TARGET_ADDED_P50_MS,
        "added_p50_ms": added["p50_ms"],
        "added_p99_ms": added["p99_ms"],
        "added_incl_sdk_p50_ms": plain["p50_ms"],
        "added_incl_sdk_p99_ms": plain["p99_ms"],
        "verdict": "met" if added["p50_ms"] <= TARGET_ADDED_P50_MS else "missed",
        "raw_ms": {name: [round(v * 1000, 3) for v in values] for name, values in times.items()},
    }


# --- part 2: one instance vs two, ten requests at once --------------------------------


@dataclass
class Timing:
    first_byte: float
    total: float


async def timed(engine: SpeechEngine, text: str, delay: float = 0.0) -> Timing:
    """One request, timed from its own start (after ``delay``)."""
    if delay:
        await asyncio.sleep(delay)
    started = time.perf_counter()
    first = None
    async for chunk in engine.stream(text, fmt="mp3"):
        if first is None and chunk:
            first = time.perf_counter()
    done = time.perf_counter()
    return Timing((first or done) - started, done - started)


def workload(name: str, stagger: float) -> list[tuple[float, int]]:
    """(start delay in seconds, characters) of each request."""
    if name == "burst":
        return [(0.0, CHARS)] * CONCURRENT
    return [(i * stagger, STAGGER_CHARS[i % 2]) for i in range(CONCURRENT)]


def served(engine: SpeechEngine) -> list[int]:
    return [engine.balancer.health[p.name].successes for p in engine.providers]


async def capacity(args: argparse.Namespace, urls: list[str]) -> dict[str, Any]:
    engines = {
        "one": engine_for(urls[:1]),
        "least_busy": engine_for(urls, "least_busy"),
        "round_robin": engine_for(urls, "round_robin"),
    }
    results: dict[str, Any] = {}
    async with AsyncExitStack() as stack:
        for engine in engines.values():
            await stack.enter_async_context(engine)
        for engine in engines.values():  # warm up every instance's pooled connections
            for _ in range(2):
                await asyncio.gather(*(timed(engine, make_text(CHARS)) for _ in range(2)))
        for kind in ("burst", "staggered"):
            runs: dict[str, list[Timing]] = {name: [] for name in engines}
            walls: dict[str, list[float]] = {name: [] for name in engines}
            shares = {name: [0] * len(e.providers) for name, e in engines.items()}
            requests = workload(kind, args.stagger)
            for r in range(args.rounds):
                order = SETUPS[r % 3 :] + SETUPS[: r % 3]  # rotate who goes first
                for name in order:
                    engine = engines[name]
                    before = served(engine)  # requests each instance answered so far
                    started = time.perf_counter()
                    batch = [timed(engine, make_text(n), d) for d, n in requests]
                    runs[name] += await asyncio.gather(*batch)
                    walls[name].append(time.perf_counter() - started)
                    now = zip(shares[name], before, served(engine), strict=True)
                    shares[name] = [total + after - ahead for total, ahead, after in now]
            results[kind] = capacity_result(runs, walls, shares)
            print_capacity(kind, results[kind])
    return results


def capacity_result(
    runs: dict[str, list[Timing]], walls: dict[str, list[float]], shares: dict[str, list[int]]
) -> dict[str, Any]:
    setups = {
        name: {
            "first_byte_ms": summary([t.first_byte for t in timings]),
            "total_ms": summary([t.total for t in timings]),
            "all_done_ms": summary(walls[name]),
            "requests_per_instance": shares[name],
        }
        for name, timings in runs.items()
    }
    one = setups["one"]
    ratios = {
        two: {
            f"{figure}_{q}": one[figure][q] / setups[two][figure][q]
            for figure in ("first_byte_ms", "total_ms")
            for q in ("p50", "p99")
        }
        for two in ("least_busy", "round_robin")
    }
    return {"setups": setups, "ratios_one_over_two": ratios}


# --- output -------------------------------------------------------------------------


def print_latency(result: dict[str, Any]) -> None:
    print("\nFirst byte, one request at a time (ms):")
    for name, stats in result["paths"].items():
        p50, p99 = fmt(stats["p50"]), fmt(stats["p99"])
        print(f"  {name:<13} p50 {p50:>7}  p99 {p99:>7}  n={stats['n']}")
    for d in result["differences"]:
        print(
            f"  {d['what']:<51} ({d['paths']}): p50 {d['p50_ms']:+.2f}  p99 {d['p99_ms']:+.2f}"
            f"  paired median {d['paired_median_ms']:+.2f}"
        )
    print(f"  {headline(result)}", flush=True)


def headline(lat: dict[str, Any]) -> str:
    return (
        f"Added by the kit: p50 {lat['added_p50_ms']:+.2f} ms, p99 {lat['added_p99_ms']:+.2f} ms "
        f"over the provider through the SDK (target p50 <= {TARGET_ADDED_P50_MS:g} ms: "
        f"{lat['verdict']}); p50 {lat['added_incl_sdk_p50_ms']:+.2f} ms, p99 "
        f"{lat['added_incl_sdk_p99_ms']:+.2f} ms over a plain keep-alive HTTP client."
    )


def print_capacity(kind: str, result: dict[str, Any]) -> None:
    print(f"\n{CONCURRENT} requests ({kind}), fakes with slots=1 (ms):")
    for name, s in result["setups"].items():
        fb, total = s["first_byte_ms"], s["total_ms"]
        print(
            f"  {name:<12} first byte p50 {fmt(fb['p50']):>8} p99 {fmt(fb['p99']):>8} | "
            f"total p50 {fmt(total['p50']):>8} p99 {fmt(total['p99']):>8} | "
            f"all done p50 {fmt(s['all_done_ms']['p50']):>8} | "
            f"per instance {s['requests_per_instance']}"
        )
    for two, r in result["ratios_one_over_two"].items():
        print(
            f"  one / {two}: first byte p50 {r['first_byte_ms_p50']:.2f}x p99 "
            f"{r['first_byte_ms_p99']:.2f}x, total p50 {r['total_ms_p50']:.2f}x p99 "
            f"{r['total_ms_p99']:.2f}x",
            flush=True,
        )


def markdown(lat: dict[str, Any], cap: dict[str, Any], setup: dict[str, Any]) -> list[str]:
    paths = md_table(
        ["path", "what", "first byte p50 ms", "p99 ms", "max ms", "n"],
        [
            [name, PATHS[name], fmt(s["p50"]), fmt(s["p99"]), fmt(s["max"]), s["n"]]
            for name, s in lat["paths"].items()
        ],
    )
    diffs = md_table(
        ["difference", "paths", "p50 ms", "p99 ms", "paired median ms"],
        [[d["what"], d["paths"], *(f"{d[k]:+.2f}" for k in DIFF_KEYS)] for d in lat["differences"]],
    )
    md = [
        "## 1. First byte: the kit's added latency",
        "",
        f"One request at a time, {CHARS} characters, MP3; fake first byte "
        f"{LATENCY_FAKE['first_byte_delay'] * 1000:g} ms. Paths interleaved in a shuffled "
        f"order each round after {setup['warmup']} warm-up rounds.",
        "",
        *paths,
        "",
        *diffs,
        "",
        "p50 and p99 columns: differences of the two paths' percentiles (a p99 difference can "
        "be negative); paired median: median of the per-round differences.",
        "",
        f"**{headline(lat)}**",
        "",
        "## 2. One instance vs two (slots=1 each)",
        "",
        f"{CONCURRENT} requests through the engine in this process. Fake: "
        + ", ".join(f"{k} {v:g}" for k, v in setup["capacity_fake"].items())
        + f"; {setup['rounds']} round(s) per setup, setups rotated. First byte and total "
        "are timed from each request's own start; all done from the first start to the last "
        "end. In a burst of equal requests both policies alternate instances; staggered long "
        "and short answers are where they differ (round_robin sends every long one to the "
        "same instance, least_busy to the one with fewer open streams).",
    ]
    for kind, result in cap.items():
        what = (
            f"{CONCURRENT} x {CHARS} characters at once"
            if kind == "burst"
            else f"{'/'.join(map(str, STAGGER_CHARS))} characters alternating, one every "
            f"{setup['stagger_s'] * 1000:g} ms"
        )
        rows = [
            [
                name,
                fmt(s["first_byte_ms"]["p50"]),
                fmt(s["first_byte_ms"]["p99"]),
                fmt(s["total_ms"]["p50"]),
                fmt(s["total_ms"]["p99"]),
                fmt(s["all_done_ms"]["p50"]),
                " / ".join(map(str, s["requests_per_instance"])),
                s["first_byte_ms"]["n"],
            ]
            for name, s in result["setups"].items()
        ]
        ratio_rows = [
            [f"one / {two}"] + [f"{r[k]:.2f}x" for k in r]
            for two, r in result["ratios_one_over_two"].items()
        ]
        md += [
            "",
            f"### {kind}: {what}",
            "",
            *md_table(CAPACITY_HEADERS, rows),
            "",
            *md_table(
                ["ratio", "first byte p50", "first byte p99", "total p50", "total p99"],
                ratio_rows,
            ),
        ]
    md += [
        "",
        "## Setup",
        "",
        f"- Kit server: `{setup['kit_command']}`",
        f"- Latency fake: `{setup['latency_fake_command']}`",
        *(f"- Capacity fake: `{c}`" for c in setup["capacity_fake_commands"]),
        f"- Client: this process (uvloop) on core {setup['client_core']}; aiohttp keep-alive "
        "for `provider` and `kit`, openai SDK with a pooled client for `provider_sdk`.",
        "- Layout: on two cores a fake shares a core with the kit or with this client "
        "(`--fake-core`); that moves contention between the SDK inside the kit and "
        "`provider_sdk`: `kit - provider_sdk` shifts by up to ~2 ms with it, `kit - provider` "
        "(the same plain client on both sides) about half as much.",
    ]
    return md


# --- main ---------------------------------------------------------------------------


async def run(args: argparse.Namespace) -> dict[str, Any]:
    setup: dict[str, Any] = {
        "warmup": args.warmup,
        "runs": args.runs,
        "rounds": args.rounds,
        "client_core": args.client_core,
        "latency_fake": LATENCY_FAKE,
        "capacity_fake": {**args.capacity_fake, "slots": 1},
        "stagger_s": args.stagger,
    }
    with ExitStack() as procs:
        fake = procs.enter_context(fake_server(args.fake_core, LATENCY_FAKE, None))
        kit = procs.enter_context(kit_server(args.server_core, fake_url(fake)))
        setup["latency_fake_command"], setup["kit_command"] = fake.command, kit.command
        print(f"fake: {fake.command}\nkit:  {kit.command}", flush=True)
        kit_url = f"http://127.0.0.1:{kit.port}/api/get-audio"
        lat = await latency(args, fake_url(fake), kit_url)
    print_latency(lat)
    with ExitStack() as procs:
        fakes = [
            procs.enter_context(fake_server(args.fake_core, args.capacity_fake, 1))
            for _ in range(2)
        ]
        setup["capacity_fake_commands"] = [f.command for f in fakes]
        cap = await capacity(args, [fake_url(f) for f in fakes])
    return {"setup": setup, "latency": lat, "capacity": cap}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, help="first-byte rounds, each path once (default 200)")
    p.add_argument("--rounds", type=int, help="rounds per concurrency setup (default 5)")
    p.add_argument("--warmup", type=int, help="first-byte rounds not counted (default 20)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="Markdown report (+ .json)")
    p.add_argument("--quick", action="store_true", help="a short run (well under 30 s)")
    p.add_argument("--server-core", type=int, default=0, help="core of the kit's server")
    p.add_argument("--fake-core", type=int, default=0, help="core of the fake speech servers")
    p.add_argument("--client-core", type=int, default=1, help="core of this process")
    args = p.parse_args(argv)
    args.runs = args.runs or (20 if args.quick else 200)
    args.rounds = args.rounds or (1 if args.quick else 5)
    args.warmup = args.warmup or (5 if args.quick else 20)
    args.capacity_fake = CAPACITY_FAKE_QUICK if args.quick else CAPACITY_FAKE
    args.stagger = STAGGER_S_QUICK if args.quick else STAGGER_S
    return args


def main(argv: list[str] | None = None) -> None:
    bench(parse_args(argv))


def bench(args: argparse.Namespace) -> None:
    pin_self(args.client_core)
    data = uvloop.run(run(args))
    title = "Speech via an OpenAI-compatible server: added first byte, two instances vs one"
    md = markdown(data["latency"], data["capacity"], data["setup"])
    written = write_report("tts-openai", title, md, data)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(written, args.out)
    shutil.move(written.with_suffix(".json"), args.out.with_suffix(".json"))
    print(f"\nreport: {args.out} and {args.out.with_suffix('.json')}")


if __name__ == "__main__":
    main()
