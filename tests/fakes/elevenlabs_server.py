"""A small ElevenLabs look-alike on loopback, so the provider is tested through the real
SDK and real HTTP without the internet.

It speaks the one endpoint the SDK's streaming call uses,
``POST /v1/text-to-speech/{voice_id}/stream?output_format=...``, checks ``xi-api-key``,
and streams honest audio (a tone whose length follows the text, mp3 through lameenc or
raw pcm) in several chunks with small pauses. ``mode`` switches behaviour per server:
``ok``, ``401`` (every key refused), ``slow`` (no answer until the client gives up) and
``500``. Every request is recorded in ``requests``.

Use ``async with FakeElevenLabs() as server`` in async tests (or the
``elevenlabs_server`` fixture), ``run_in_thread()`` from synchronous tests.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal

import lameenc
import pytest
from aiohttp import web

from tests.fakes import in_thread, start_site

Mode = Literal["ok", "401", "slow", "500"]
ROUTE = "/v1/text-to-speech/{voice_id}/stream"
MP3_FORMATS = {"mp3_22050_32", "mp3_24000_48", "mp3_44100_32", "mp3_44100_64", "mp3_44100_128"}
PCM_RATES = {8000, 16000, 22050, 24000, 44100, 48000}
AMPLITUDE = 8000  # a quarter of full scale: clearly not silence, never clipping


@dataclass(slots=True)
class SeenRequest:
    """What one call carried, so tests can check the SDK sent what we meant."""

    voice_id: str
    api_key: str | None
    query: dict[str, str]
    body: dict[str, Any]
    chunks_sent: int = 0
    finished: bool = False  # set after the last audio byte was written

    @property
    def output_format(self) -> str | None:
        return self.query.get("output_format")

    @property
    def model_id(self) -> str | None:
        return self.body.get("model_id")

    @property
    def text(self) -> str:
        return str(self.body.get("text", ""))


@dataclass(slots=True)
class FakeElevenLabs:
    api_key: str = "test-key"
    mode: Mode = "ok"
    chunk_delay: float = 0.01  # pause between chunks, so streaming is observable
    slow_delay: float = 30.0  # upper bound of a "slow" stall; shutdown ends it early
    seconds_per_char: float = 0.07  # roughly 14 characters of speech per second
    requests: list[SeenRequest] = field(default_factory=list)
    url: str = field(default="", init=False)
    _runner: web.AppRunner | None = field(default=None, init=False, repr=False)
    _closing: asyncio.Event = field(default_factory=asyncio.Event, init=False, repr=False)

    async def __aenter__(self) -> FakeElevenLabs:
        app = web.Application()
        app.router.add_post(ROUTE, self._text_to_speech)
        self._runner, host, port = await start_site(app)
        self.url = f"http://{host}:{port}"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _text_to_speech(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        seen = SeenRequest(
            voice_id=request.match_info["voice_id"],
            api_key=request.headers.get("xi-api-key"),
            query=dict(request.query),
            body=body,
        )
        self.requests.append(seen)
        if self.mode == "401" or seen.api_key != self.api_key:
            return _error(401, "invalid_api_key", "Invalid API key")
        if self.mode == "500":
            return _error(500, "internal_error", "synthetic failure from the fake server")
        if self.mode == "slow":
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), self.slow_delay)
            if self._closing.is_set():
                return web.Response(status=503)  # shutting down; the client has given up
        audio = self._render(seen)
        if audio is None:
            return _error(422, "invalid_output_format", f"unknown {seen.output_format!r}")
        return await self._send(request, seen, *audio)

    def _render(self, seen: SeenRequest) -> tuple[bytes, str] | None:
        """Encode a tone as long as the text would take to say, in the asked format."""
        fmt = seen.output_format or "mp3_44100_128"
        speed = float((seen.body.get("voice_settings") or {}).get("speed") or 1.0)
        seconds = max(0.2, len(seen.text) * self.seconds_per_char / speed)
        if fmt in MP3_FORMATS:
            _, rate, kbps = fmt.split("_")
            return _mp3(tone(int(rate), seconds), int(rate), int(kbps)), "audio/mpeg"
        if fmt.startswith("pcm_") and int(fmt[4:]) in PCM_RATES:
            return tone(int(fmt[4:]), seconds), "audio/pcm"
        return None

    async def _send(
        self, request: web.Request, seen: SeenRequest, audio: bytes, content_type: str
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": content_type})
        await response.prepare(request)
        step = min(8192, max(256, len(audio) // 4 + 1))  # at least four chunks
        try:
            for start in range(0, len(audio), step):
                await response.write(audio[start : start + step])
                seen.chunks_sent += 1
                await asyncio.sleep(self.chunk_delay)
            await response.write_eof()
        except ConnectionResetError:
            return response  # the client stopped reading; nothing to finish
        seen.finished = True
        return response


def tone(rate: int, seconds: float, freq_hz: float = 200.0) -> bytes:
    """Mono signed 16-bit little-endian sine; one cycle repeated keeps it fast."""
    period = max(2, round(rate / freq_hz))
    step = 2 * math.pi / period
    cycle = array.array("h", (int(AMPLITUDE * math.sin(step * i)) for i in range(period)))
    cycles = max(1, round(seconds * rate / period))
    return cycle.tobytes() * cycles


def _mp3(pcm: bytes, rate: int, kbps: int) -> bytes:
    encoder = lameenc.Encoder()
    encoder.set_in_sample_rate(rate)
    encoder.set_channels(1)
    encoder.set_bit_rate(kbps)
    encoder.set_quality(7)
    return bytes(encoder.encode(pcm) + encoder.flush())


def _error(status: int, code: str, message: str) -> web.Response:
    # The real API wraps errors as {"detail": {"status": ..., "message": ...}}.
    return web.json_response({"detail": {"status": code, "message": message}}, status=status)


def run_in_thread(**options: Any) -> contextlib.AbstractContextManager[FakeElevenLabs]:
    """The same server on its own event loop thread, for synchronous tests."""
    return in_thread(FakeElevenLabs, **options)


@pytest.fixture
async def elevenlabs_server() -> AsyncIterator[FakeElevenLabs]:
    """A running fake; set ``.mode`` in the test, read ``.url`` and ``.requests``."""
    async with FakeElevenLabs() as server:
        yield server
