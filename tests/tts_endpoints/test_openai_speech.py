"""``POST /v1/audio/speech`` driven by the official ``openai`` client on a real server."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.audio import duration
from tests.servers import ThreadServer

pytestmark = pytest.mark.anyio

TEXT = "Hello from the kit. This speech is streamed as it is synthesized."


def client(server: ThreadServer) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)


async def speak(server: ThreadServer, **kwargs: object) -> tuple[bytes, str, int]:
    args = {"model": "tts-1", "voice": "alloy", "input": TEXT, **kwargs}
    async with (
        client(server) as api,
        api.audio.speech.with_streaming_response.create(**args) as response,
    ):
        pieces = [chunk async for chunk in response.iter_bytes()]
        return b"".join(pieces), response.headers["content-type"], len(pieces)


@pytest.mark.parametrize(("fmt", "media"), [("mp3", "audio/mpeg"), ("wav", "audio/wav"),
                                            ("pcm", "audio/L16")])  # fmt: skip
async def test_each_format_streams_decodable_audio(
    server: ThreadServer, fmt: str, media: str
) -> None:
    audio, content_type, _ = await speak(server, response_format=fmt)
    assert content_type.startswith(media)
    assert duration(audio, fmt) > 2.0


async def test_speed_changes_the_duration_and_voices_map(server: ThreadServer) -> None:
    normal, _, _ = await speak(server, voice="nova")
    fast, _, _ = await speak(server, voice="onyx", speed=2.0)
    local, _, _ = await speak(server, voice="en-gb-x-rp", speed=0.5)
    assert duration(fast) < duration(normal) * 0.75
    assert duration(local) > duration(normal) * 1.4


async def test_body_arrives_in_several_chunks(server: ThreadServer) -> None:
    audio, _, pieces = await speak(server, input=TEXT * 6)
    assert pieces > 1 and duration(audio) > 15


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"speed": 4.5}, "speed"),
        ({"speed": 0.1}, "speed"),
        ({"voice": "no-such-voice"}, "voice"),
        ({"response_format": "opus"}, "response_format"),
        ({"input": ""}, "input"),
    ],
)
async def test_bad_requests_are_openai_style_400s(
    server: ThreadServer, kwargs: dict[str, object], param: str
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await speak(server, **kwargs)
    error = caught.value.body
    assert isinstance(error, dict)
    assert error["param"] == param and error["type"] == "invalid_request_error"
    assert error["message"]


async def test_too_long_and_malformed_bodies(server: ThreadServer) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=15) as http:
        long = await http.post(
            "/v1/audio/speech", json={"model": "m", "voice": "alloy", "input": "x" * 5001}
        )
        broken = await http.post("/v1/audio/speech", content=b"{oops")
        missing = await http.post("/v1/audio/speech", json={"input": "hi"})
    assert long.status_code == 413 and long.json()["error"]["code"] == "text_too_long"
    assert broken.status_code == 400 and "JSON" in broken.json()["error"]["message"]
    assert missing.status_code == 400 and missing.json()["error"]["param"] == "model"
