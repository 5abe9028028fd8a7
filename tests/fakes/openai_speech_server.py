"""A small OpenAI-compatible text-to-speech server on loopback (OpenAI, Kokoro-FastAPI),
so a provider is tested through the official ``openai`` SDK and real HTTP, and
benchmarked without a GPU or the internet.

It speaks ``POST /v1/audio/speech`` (``Authorization: Bearer <key>``) and Kokoro-FastAPI's
``GET /v1/audio/voices``. Audio is honest: a tone as long as the text would take to say,
24 kHz mono 16-bit like OpenAI and Kokoro, as mp3 (the kit's own ``StreamEncoder``, chunk
by chunk), wav (streaming sizes, optionally an extra ``LIST`` chunk) or raw pcm, written
with chunked transfer in several pieces. ``first_byte_delay`` stands for the model's time
to first audio and ``slots`` for its capacity. ``mode`` switches behaviour per server:
``ok``, ``500``, ``hang`` (nothing is sent until shutdown), ``garbage`` (200 and bytes
that are not audio) and ``die_mid_stream`` (one chunk, then the connection is cut).
Every speech request is recorded in ``requests``; ``connections`` counts the distinct
client connections seen, so tests can check that a client pools them.

Use ``async with FakeOpenAISpeech() as server`` in async tests (or the
``openai_speech_server`` fixture), ``run_in_thread()`` from synchronous tests; hand
``server.url`` to ``openai.AsyncOpenAI(base_url=...)``. As its own process (benches)::

    python -m tests.fakes.openai_speech_server --port 8880 --first-byte-delay 0.02 --slots 1

prints one line with its base URL once it listens, and stops on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import signal
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal

import pytest
from aiohttp import web

from tests.fakes import in_thread, start_site
from tests.fakes.elevenlabs_server import tone
from tts.encoding import StreamEncoder, wav_header

Mode = Literal["ok", "500", "hang", "garbage", "die_mid_stream"]
SPEECH_ROUTE = "/v1/audio/speech"
VOICES_ROUTE = "/v1/audio/voices"
SAMPLE_RATE = 24000  # what OpenAI's and Kokoro's speech endpoints send
CONTENT_TYPES = {"mp3": "audio/mpeg", "wav": "audio/wav", "pcm": "audio/pcm"}
CHUNK_SECONDS = 0.1  # audio per chunk; short texts are still cut into MIN_CHUNKS
MIN_CHUNKS = 4
GARBAGE = b"not audio at all" * 100
# ffmpeg's wav muxer writes a LIST/INFO chunk naming itself (ISFT "Lavf...") between
# "fmt " and "data"; a client that assumes a 44-byte header plays it as noise.
LIST_CHUNK = b"LIST" + struct.pack("<I", 18) + b"INFOISFT" + struct.pack("<I", 6) + b"Lavf\0\0"


@dataclass(slots=True)
class SeenSpeech:
    """What one speech call carried and how far its answer got."""

    voice: str
    model: str | None
    input: str
    response_format: str
    speed: float
    api_key: str | None
    peer: tuple[str, int] | None  # the client's (host, port): one per TCP connection
    chunks_sent: int = 0
    finished: bool = False  # set after the last audio byte was written


@dataclass(slots=True)
class FakeOpenAISpeech:
    api_key: str = "test-key"
    mode: Mode = "ok"
    first_byte_delay: float = 0.0  # the model's time to first audio, once a slot is free
    chunk_delay: float = 0.01  # pause between chunks, so streaming is observable
    hang_delay: float = 30.0  # upper bound of a "hang"; shutdown ends it early
    seconds_per_char: float = 0.07  # roughly 14 characters of speech per second
    slots: int | None = None  # requests synthesized at once; None means no limit
    wav_extra_chunk: bool = False  # a LIST chunk before "data": clients must walk chunks
    list_voices: bool = True  # Kokoro-FastAPI lists voices; OpenAI answers 404
    voices: list[str] = field(default_factory=lambda: ["af_bella", "af_sky", "am_adam", "bf_emma"])
    port: int = 0  # 0: any free port
    requests: list[SeenSpeech] = field(default_factory=list)
    requests_total: int = 0  # every request to a known route, speech or voices
    peers: set[tuple[str, int]] = field(default_factory=set)
    in_flight: int = 0  # requests holding a slot right now
    max_in_flight: int = 0
    url: str = field(default="", init=False)  # the base URL an OpenAI client takes
    _runner: web.AppRunner | None = field(default=None, init=False, repr=False)
    _closing: asyncio.Event = field(default_factory=asyncio.Event, init=False, repr=False)
    _slots: asyncio.Semaphore | None = field(default=None, init=False, repr=False)

    @property
    def connections(self) -> int:
        """Distinct TCP connections seen: a keep-alive connection keeps its client port."""
        return len(self.peers)

    async def __aenter__(self) -> FakeOpenAISpeech:
        # ``slots`` is read here: changing it on a running server has no effect.
        self._slots = asyncio.Semaphore(self.slots) if self.slots is not None else None
        app = web.Application()
        app.router.add_post(SPEECH_ROUTE, self._speech)
        app.router.add_get(VOICES_ROUTE, self._voices)
        self._runner, host, port = await start_site(app, self.port)
        self.url = f"http://{host}:{port}/v1"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def _seen_peer(self, request: web.Request) -> tuple[str, int] | None:
        self.requests_total += 1
        transport = request.transport
        peer = transport.get_extra_info("peername") if transport is not None else None
        if peer is None:
            return None
        address = (str(peer[0]), int(peer[1]))
        self.peers.add(address)
        return address

    async def _voices(self, request: web.Request) -> web.Response:
        self._seen_peer(request)
        if not self.list_voices:
            return _error(404, f"Invalid URL (GET {VOICES_ROUTE})", "invalid_request_error")
        return web.json_response({"voices": list(self.voices)})

    async def _speech(self, request: web.Request) -> web.StreamResponse:
        peer = self._seen_peer(request)
        mode = self.mode  # fixed per request, even if a test switches it mid-stream
        try:
            body = await request.json()
        except json.JSONDecodeError:
            return _error(400, "We could not parse the JSON body of your request.")
        if not isinstance(body, dict):
            return _error(400, "The request body must be a JSON object.")
        authorization = request.headers.get("Authorization", "")
        voice = body.get("voice")
        if isinstance(voice, dict):  # the SDK also sends custom voices as {"id": ...}
            voice = voice.get("id")
        seen = SeenSpeech(
            voice=str(voice or ""),
            model=body.get("model"),
            input=str(body.get("input") or ""),
            response_format=str(body.get("response_format") or "mp3"),
            speed=body.get("speed", 1.0),
            api_key=authorization.removeprefix("Bearer ") if authorization else None,
            peer=peer,
        )
        self.requests.append(seen)
        if seen.api_key != self.api_key:
            message = "Incorrect API key provided."
            return _error(401, message, "invalid_request_error", code="invalid_api_key")
        if mode == "500":
            message = "The server had an error while processing your request. Sorry about that!"
            return _error(500, message, "server_error")
        if seen.response_format not in CONTENT_TYPES:
            message = f"Unsupported response_format {seen.response_format!r} in this fake."
            return _error(400, message, param="response_format", code="invalid_value")
        if not isinstance(seen.speed, int | float) or not 0.25 <= seen.speed <= 4.0:
            return _error(400, "speed must be between 0.25 and 4.0.", param="speed")
        if not seen.input or not seen.voice:
            return _error(400, "input and voice are required.", param="input")
        if mode == "hang":
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), self.hang_delay)
            if self._closing.is_set():
                return web.Response(status=503)  # shutting down; the client has given up
        if mode == "garbage":
            seen.chunks_sent, seen.finished = 1, True
            return web.Response(body=GARBAGE, content_type="audio/mpeg")
        slot = self._slots if self._slots is not None else contextlib.nullcontext()
        async with slot:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                await asyncio.sleep(self.first_byte_delay)
                return await self._stream(request, seen, cut=mode == "die_mid_stream")
            finally:
                self.in_flight -= 1

    async def _stream(
        self, request: web.Request, seen: SeenSpeech, cut: bool
    ) -> web.StreamResponse:
        """Encode and write the tone piece by piece, as a model that speaks while it thinks."""
        fmt = seen.response_format
        seconds = max(0.2, len(seen.input) * self.seconds_per_char / float(seen.speed))
        pcm = tone(SAMPLE_RATE, seconds)
        pieces = max(MIN_CHUNKS, math.ceil(seconds / CHUNK_SECONDS))
        step = math.ceil(len(pcm) / pieces / 2) * 2  # whole samples per piece
        # wav is streamed as pcm after a header of our own, so it can carry a LIST chunk.
        encoder = StreamEncoder("mp3" if fmt == "mp3" else "pcm", SAMPLE_RATE)
        prefix = self._wav_header() if fmt == "wav" else b""
        # No Content-Length: aiohttp sends "Transfer-Encoding: chunked", and the status
        # line goes out with the first audio, after first_byte_delay.
        response = web.StreamResponse(headers={"Content-Type": CONTENT_TYPES[fmt]})
        await response.prepare(request)
        try:
            for start in range(0, len(pcm), step):
                if start:
                    await asyncio.sleep(self.chunk_delay)
                data = prefix + encoder.encode(pcm[start : start + step])
                prefix = b""
                if start + step >= len(pcm):
                    data += encoder.flush()
                if not data:
                    continue  # the mp3 encoder is still buffering
                await response.write(data)
                seen.chunks_sent += 1
                if cut and request.transport is not None:
                    # Flush what was written, then close mid-body: the client sees a
                    # chunked body that never ends properly.
                    request.transport.close()
                    return response
            await response.write_eof()
        except ConnectionResetError:
            return response  # the client stopped reading; nothing to finish
        seen.finished = True
        return response

    def _wav_header(self) -> bytes:
        header = wav_header(SAMPLE_RATE)  # sizes 0xFFFFFFFF: the length is not known yet
        if not self.wav_extra_chunk:
            return header
        fmt_end = header.index(b"data")
        return header[:fmt_end] + LIST_CHUNK + header[fmt_end:]


def _error(
    status: int,
    message: str,
    kind: str = "invalid_request_error",
    param: str | None = None,
    code: str | None = None,
) -> web.Response:
    # OpenAI's error shape, which the SDK reads into APIStatusError.body.
    error = {"message": message, "type": kind, "param": param, "code": code}
    return web.json_response({"error": error}, status=status)


def run_in_thread(**options: Any) -> contextlib.AbstractContextManager[FakeOpenAISpeech]:
    """The same server on its own event loop thread, for synchronous tests."""
    return in_thread(FakeOpenAISpeech, **options)


@pytest.fixture
async def openai_speech_server() -> AsyncIterator[FakeOpenAISpeech]:
    """A running fake; set ``.mode`` in the test, read ``.url``, ``.requests``, counters."""
    async with FakeOpenAISpeech() as server:
        yield server


async def _serve(port: int, options: dict[str, Any]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with FakeOpenAISpeech(port=port, **options) as server:
        print(f"fake OpenAI speech server: {server.url}", flush=True)
        await stop.wait()


def main(argv: list[str] | None = None) -> None:
    """Run the fake as its own process until SIGTERM or SIGINT."""
    p = argparse.ArgumentParser(description="A fake OpenAI-compatible speech server.")
    p.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free one)")
    p.add_argument("--api-key", default="test-key", help="the Bearer key it accepts")
    p.add_argument("--first-byte-delay", type=float, default=0.0, help="seconds to first audio")
    p.add_argument("--chunk-delay", type=float, default=0.01, help="seconds between chunks")
    p.add_argument("--seconds-per-char", type=float, default=0.07, help="audio per character")
    p.add_argument("--slots", type=int, default=None, help="requests synthesized at once")
    args = p.parse_args(argv)
    options = {
        "api_key": args.api_key,
        "first_byte_delay": args.first_byte_delay,
        "chunk_delay": args.chunk_delay,
        "seconds_per_char": args.seconds_per_char,
        "slots": args.slots,
    }
    asyncio.run(_serve(args.port, options))


if __name__ == "__main__":
    main()
