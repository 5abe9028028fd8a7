"""Scene speech, old REST polling flow vs new WebSocket session flow (seeds 000-002).

    python -m bench.scenes            # 20-chunk scenes, 5 runs per flow, 10 concurrent x 3
    python -m bench.scenes --quick    # fewer runs

The server is ``python -m fastapi_app`` (full stage, espeak-ng, MP3, audio cache off)
on core 0; this client runs on core 1. Every run uses a NEW scene (20 chunks of about
150 characters), so nothing is replayed from the store: every chunk is synthesized.

- old: ``POST /api/tts/generate/{id}`` (blocks until every chunk exists), then the seed's
  client: ``GET /api/tts/audio/{id}/chunk/{n}`` for n = 1..20, retrying a 404 with its
  back-off (500 ms x (1 + 0.3 x retry), at most 3 s, 15 retries).
- new: ``POST /api/tts/generate-ws/{id}`` then ``WS /ws/tts/{session}`` until ``complete``
  (base64 chunks, the seed's default; and ``?binary=1``).

First audio = from the first request to the first chunk's audio in hand; total = to the
last chunk's audio. Counted: HTTP requests, WebSocket connections and WS messages.
Then 10 sessions at once: each session's first-chunk time, and chunks (and seconds of
audio) delivered per second of wall time.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import itertools
import json
import shutil
import time
from dataclasses import asdict, dataclass
from typing import Any

import httpx
import miniaudio
import websockets

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

SERVER_ENV = {
    "GENIE_LOG_LEVEL": "warning",
    "GENIE_TTS_CACHE_ENTRIES": "0",  # measure synthesis, not the cache
    **NO_CLIENT_LIMITS_ENV,  # one client sends every synthesis request, several at once
    "GENIE_CLOCK_INTERVAL": "3600",
}
CHUNKS, CHARS = 20, 150
SENTENCE = (
    "The lamp glowed softly while the genie told the story of the old harbour town, "
    "where ships came in at dawn and left again before the evening bells rang. "
)
_scene_numbers = itertools.count(1)  # every scene's text differs: no store hits


@dataclass
class Run:
    flow: str
    first_audio: float  # seconds
    total: float
    http_requests: int
    ws_connections: int
    ws_messages: int
    audio_seconds: float


def scene_chunks() -> list[str]:
    number = next(_scene_numbers)
    body = (SENTENCE * 2)[: CHARS - 20].rsplit(" ", 1)[0]
    return [f"Scene {number}, part {n}. {body}." for n in range(1, CHUNKS + 1)]


def seconds(mp3: bytes) -> float:
    return float(miniaudio.mp3_get_info(mp3).duration)


async def new_scene(http: httpx.AsyncClient) -> int:
    response = await http.post("/api/scenes", json={"chunks": scene_chunks()})
    response.raise_for_status()
    return int(response.json()["id"])


async def old_flow(http: httpx.AsyncClient) -> Run:
    scene = await new_scene(http)
    started = time.perf_counter()
    (await http.post(f"/api/tts/generate/{scene}")).raise_for_status()
    requests, first, audio = 1, 0.0, 0.0
    for n in range(1, CHUNKS + 1):
        for retry in range(16):
            requests += 1
            response = await http.get(f"/api/tts/audio/{scene}/chunk/{n}")
            if response.status_code != 404 or retry == 15:
                break
            await asyncio.sleep(min(0.5 * (1 + retry * 0.3), 3.0))
        response.raise_for_status()
        audio += seconds(response.content)
        first = first or time.perf_counter() - started
    return Run("old REST + polling", first, time.perf_counter() - started, requests, 0, 0, audio)


async def new_flow(http: httpx.AsyncClient, ws_base: str, binary: bool = False) -> Run:
    scene = await new_scene(http)
    started = time.perf_counter()
    response = await http.post(f"/api/tts/generate-ws/{scene}")
    session = response.json()["session_id"]
    query = "?binary=1" if binary else ""
    first, messages, audio = 0.0, 0, 0.0
    async with websockets.connect(f"{ws_base}/ws/tts/{session}{query}", max_size=None) as ws:
        async for message in ws:
            messages += 1
            if isinstance(message, bytes):
                mp3 = message
            else:
                frame = json.loads(message)
                if frame["type"] == "complete":
                    break
                if frame["type"] != "chunk_ready" or binary:
                    continue
                mp3 = base64.b64decode(frame["audio"])
            audio += seconds(mp3)
            first = first or time.perf_counter() - started
    name = "new WS session" + (" (binary)" if binary else " (base64)")
    return Run(name, first, time.perf_counter() - started, 1, 1, messages, audio)


async def concurrent(http: httpx.AsyncClient, ws_base: str, sessions: int) -> dict[str, Any]:
    started = time.perf_counter()
    runs = await asyncio.gather(*(new_flow(http, ws_base, binary=True) for _ in range(sessions)))
    wall = time.perf_counter() - started
    return {
        "first": [r.first_audio for r in runs],
        "wall": wall,
        "chunks_per_s": sessions * CHUNKS / wall,
        "audio_s_per_s": sum(r.audio_seconds for r in runs) / wall,
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    port = free_port()
    argv = [python(), "-m", "fastapi_app", "--port", str(port), "--stage", "full"]
    with ServerProcess(argv, port, core=args.server_core, env=SERVER_ENV) as server:
        print(f"server: {server.command}", flush=True)
        ws_base = f"ws://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=120) as http:
            await new_flow(http, ws_base)  # warm up: imports, voices, connections
            flows: dict[str, list[Run]] = {}
            for _ in range(args.runs):  # interleaved, so machine noise hits all flows alike
                for runner in (old_flow(http), new_flow(http, ws_base),
                               new_flow(http, ws_base, binary=True)):  # fmt: skip
                    result = await runner
                    flows.setdefault(result.flow, []).append(result)
            rounds = [await concurrent(http, ws_base, args.sessions) for _ in range(args.rounds)]
        command = server.command
    return {"flows": flows, "rounds": rounds, "server": command}


def report(args: argparse.Namespace, result: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    rows, data = [], {}
    for name, runs in result["flows"].items():
        first, total = summary([r.first_audio for r in runs]), summary([r.total for r in runs])
        last = runs[-1]
        rows.append([name, fmt(first["p50"]), fmt(first["p99"]), fmt(total["p50"]),
                     fmt(total["p99"]), last.http_requests, last.ws_connections,
                     last.ws_messages, fmt(last.audio_seconds, 1)])  # fmt: skip
        data[name] = {"first_audio_ms": first, "total_ms": total, "runs": [asdict(r) for r in runs]}
    firsts = [f for r in result["rounds"] for f in r["first"]]
    conc = summary(firsts)
    chunks_s = [r["chunks_per_s"] for r in result["rounds"]]
    audio_s = [r["audio_s_per_s"] for r in result["rounds"]]
    md = [
        f"Scene: {CHUNKS} chunks of ~{CHARS} characters, a new scene per run; "
        f"{args.runs} runs per flow. Server: `{result['server']}`.",
        "",
        *md_table(
            [
                "flow",
                "first audio p50 ms",
                "p99 ms",
                "total p50 ms",
                "total p99 ms",
                "HTTP requests",
                "WS connections",
                "WS messages",
                "audio s",
            ],
            rows,
        ),
        "",
        f"{args.sessions} concurrent sessions x {args.rounds} rounds (binary frames): first "
        f"chunk p50 {fmt(conc['p50'])} ms, p99 {fmt(conc['p99'])} ms, max {fmt(conc['max'])} "
        f"ms; throughput {fmt(min(chunks_s), 1)}-{fmt(max(chunks_s), 1)} chunks/s, "
        f"{fmt(min(audio_s), 1)}-{fmt(max(audio_s), 1)} s of audio per s.",
    ]
    data["concurrent"] = {"sessions": args.sessions, "first_chunk_ms": conc,
                          "rounds": result["rounds"]}  # fmt: skip
    return md, data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 runs, 1 concurrent round")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--server-core", type=int, default=0)
    parser.add_argument("--client-core", type=int, default=1)
    args = parser.parse_args()
    if args.quick:
        args.runs, args.rounds = 2, 1
    pin_self(args.client_core)
    result = asyncio.run(run(args))
    md, data = report(args, result)
    print("\n".join(md))
    path = write_report("scenes", "Scene speech: old polling vs new WebSocket", md, data)
    for suffix in (".md", ".json"):  # stable names next to the stamped ones
        shutil.copyfile(path.with_suffix(suffix), REPORTS / f"scenes{suffix}")
    print(f"report: {path} (also {REPORTS / 'scenes.md'})")


if __name__ == "__main__":
    main()
