"""``POST /v1/audio/speech``: OpenAI's speech API shape on the local engine.

The official ``openai`` client works unchanged with ``base_url=<kit>/v1``. MP3 and PCM
stream as they are synthesized (the first chunk is awaited first, so a failing provider
is a clean JSON error, not a broken 200); a WAV is sent whole, with its true sizes.
Every error, including a malformed body, is OpenAI's
``{"error": {"message", "type", "param", "code"}}``. Formats: mp3, wav, pcm (16-bit LE
mono at the kit's 22,050 Hz, not OpenAI's 24 kHz); opus, aac and flac are refused with
the list of valid ones. With auth on, the client's
``api_key`` is the JWT (``Authorization: Bearer``). Each request counts against
``GENIE_RATE_LIMIT_SPEECH``; past it, 429 with ``Retry-After`` in OpenAI's shape (code
``rate_limit_exceeded``), which the ``openai`` client waits out and retries by itself.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import ClientDisconnect

from fastapi_app.auth.access import subject_of
from fastapi_app.auth.security import AuthError, bearer_token
from fastapi_app.deps import caller_key, refused_for
from fastapi_app.runtime import Runtime
from tts.admission import SpeechBusyError
from tts.errors import ProviderError, TextTooLongError, TTSError
from wire import legacy_http

log = logging.getLogger(__name__)

FORMATS = ("mp3", "wav", "pcm")
OPENAI_ONLY_FORMATS = ("opus", "aac", "flac")


class SpeechBody(BaseModel):
    model_config = ConfigDict(extra="ignore")  # instructions, stream_format: accepted, unused

    model: str = Field(min_length=1)
    input: str
    voice: str = Field(min_length=1)
    response_format: str = "mp3"
    speed: float = 1.0


class OpenAIError(Exception):
    def __init__(
        self, status: int, message: str, *, kind: str = "invalid_request_error",
        param: str | None = None, code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:  # fmt: skip
        super().__init__(message)
        self.status, self.message, self.kind, self.param, self.code = (
            status, message, kind, param, code,
        )  # fmt: skip
        self.headers = headers

    def response(self) -> JSONResponse:
        body = {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}
        return JSONResponse({"error": body}, self.status, headers=self.headers)


class OpenAIErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None
    code: str | None


class OpenAIErrorBody(BaseModel):
    error: OpenAIErrorDetail


def _error_doc(description: str) -> dict[str, Any]:
    return {"model": OpenAIErrorBody, "description": description}


ERRORS: dict[int | str, dict[str, Any]] = {
    400: _error_doc("Malformed body, unknown voice or format, invalid speed, empty text."),
    401: _error_doc("Missing, invalid or expired token (auth on)."),
    413: _error_doc("Text over the length limit."),
    429: _error_doc("Rate limit, or the caller's share of syntheses; see Retry-After."),
    503: _error_doc(
        "No speech in this stage, every speech provider failed, or too much speech is being "
        "synthesized at once (see Retry-After)."
    ),
}

router = APIRouter(tags=["openai compatible"])


@router.post(
    "/v1/audio/speech",
    response_class=Response,
    responses={200: {"content": {"audio/mpeg": {}, "audio/wav": {}, "audio/L16": {}}}, **ERRORS},
    summary="OpenAI-compatible text to speech (streamed)",
    openapi_extra={
        "requestBody": {"content": {"application/json": {"schema": SpeechBody.model_json_schema()}}}
    },
)
async def speech(request: Request) -> Response:
    try:
        return await _speech(request)
    except OpenAIError as exc:
        return exc.response()


async def _speech(request: Request) -> Response:
    rt: Runtime | None = getattr(request.app.state, "runtime", None)
    if rt is None or rt.speech is None:
        raise OpenAIError(503, "speech synthesis is not available", kind="server_error",
                          code="no_speech")  # fmt: skip
    subject = _check_auth(rt, request)
    await _check_limit(rt, request, subject)
    caller = caller_key(request, subject)  # whose synthesis share (tts.admission)
    body = _parse(await _body_of(request))
    fmt = body.response_format.strip().lower()
    if fmt not in FORMATS:
        allowed = ", ".join(FORMATS)
        raise OpenAIError(400, f"response_format {fmt!r} is not supported here; valid: {allowed}",
                          param="response_format", code="unsupported_format")  # fmt: skip
    media_type = rt.speech.media_type(fmt)
    try:
        if fmt == "wav":
            # OpenAI clients save a WAV as a file: send it whole, with its true sizes
            # (a streamed WAV's "unknown" sizes read as 97,000 s of audio there).
            with rt.synthesis.acquire(caller):
                audio = await rt.speech.synthesize(body.input, voice=body.voice,
                                                   speed=body.speed, fmt=fmt)  # fmt: skip
            return Response(audio, media_type=media_type)
        speech = rt.speech.stream(body.input, voice=body.voice, speed=body.speed, fmt=fmt)
        chunks = rt.synthesis.capped(caller, speech)  # a refusal raises at the first chunk
        first = await _first(chunks)
    except TTSError as exc:
        raise _mapped(exc) from None
    return StreamingResponse(_body(first, chunks), media_type=media_type)


def _check_auth(rt: Runtime, request: Request) -> str | None:
    if not rt.access.auth:
        return None
    try:
        claims = rt.access.verifier.verify(bearer_token(request.headers.get("authorization")))
    except AuthError as exc:
        raise OpenAIError(401, exc.message, code=exc.code) from None
    return subject_of(claims)


async def _check_limit(rt: Runtime, request: Request, subject: str | None) -> None:
    # OpenAI's own 429 shape: its clients read Retry-After and back off by themselves.
    wait = await refused_for(rt, rt.access.speech, "speech", caller_key(request, subject))
    if wait is not None:
        message = f"too many speech requests; retry in {wait} s"
        headers = {"Retry-After": str(wait)}
        raise OpenAIError(
            429, message, kind="requests", code="rate_limit_exceeded", headers=headers
        )


async def _body_of(request: Request) -> bytes:
    try:
        return await request.body()
    except ClientDisconnect:  # gone mid-body (or cut by GENIE_BODY_TIMEOUT): not a crash
        raise OpenAIError(400, "the request body did not arrive") from None


def _parse(raw: bytes) -> SpeechBody:
    try:
        return SpeechBody.model_validate(json.loads(raw or b"null"))
    except json.JSONDecodeError as exc:
        raise OpenAIError(400, f"the body is not valid JSON: {exc.msg}") from None
    except UnicodeDecodeError:
        raise OpenAIError(400, "the body is not UTF-8 (or UTF-16/32) JSON") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        param = ".".join(str(p) for p in first["loc"]) or None
        raise OpenAIError(400, f"{param}: {first['msg']}", param=param) from None


def _mapped(exc: TTSError) -> OpenAIError:
    if isinstance(exc, SpeechBusyError):  # OpenAI's clients back off on 429/503 + Retry-After
        status = legacy_http.status_for(exc)
        kind = "requests" if status == 429 else "server_error"
        headers = legacy_http.retry_headers(exc)
        return OpenAIError(status, str(exc), kind=kind, code=exc.code, headers=headers)
    if isinstance(exc, ProviderError):
        log.warning("/v1/audio/speech failed: %s", exc)
        return OpenAIError(503, str(exc), kind="server_error", code=exc.code)
    params = {"invalid_speed": "speed", "unknown_voice": "voice", "unknown_language": "voice"}
    status = 413 if isinstance(exc, TextTooLongError) else 400
    return OpenAIError(status, str(exc), param=params.get(exc.code, "input"), code=exc.code)


async def _first(chunks: AsyncIterator[bytes]) -> bytes:
    try:
        return await anext(chunks)
    except StopAsyncIteration:
        return b""
    except BaseException:
        await _aclose(chunks)
        raise


async def _body(first: bytes, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    # Closing the engine's iterator (also when the client goes away) stops synthesis.
    try:
        if first:
            yield first
        async for chunk in chunks:
            yield chunk
    finally:
        await _aclose(chunks)


async def _aclose(chunks: AsyncIterator[Any]) -> None:
    close = getattr(chunks, "aclose", None)
    if close is not None:
        with contextlib.suppress(Exception):
            await close()
