"""Domain errors -> HTTP. Every error body is ``{"code": ..., "message": ...}``.

The statuses are ``wire.legacy_http.status_for`` (shared with the Flask app): too long
413, other bad input 422, unknown job or queue 404, job still active 409, queues
closed or every speech provider failed 503.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from queues.errors import QueueError
from tts.errors import TTSError
from wire import legacy_http

log = logging.getLogger(__name__)


class ErrorBody(BaseModel):
    code: str
    message: str


class ApiError(Exception):
    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    return JSONResponse({"code": code, "message": message, **extra}, status, headers=headers)


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message, exc.headers)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, legacy_http.HttpError)
    return JSONResponse(exc.body(), exc.status)


async def _core_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, QueueError | TTSError)
    error = legacy_http.error_for(exc)
    if error.status >= 500:
        log.warning("%s failed: %s", request.url.path, exc)
    return JSONResponse(error.body(), error.status, headers=legacy_http.retry_headers(exc))


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    first = errors[0] if errors else {}
    where = ".".join(str(part) for part in first.get("loc", ()))
    message = f"{where}: {first.get('msg', 'invalid request')}" if where else "invalid request"
    detail = [{k: e.get(k) for k in ("loc", "msg", "type")} for e in errors]
    return error_response(422, "invalid_request", message, detail=detail)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(legacy_http.HttpError, _http_error)
    app.add_exception_handler(QueueError, _core_error)
    app.add_exception_handler(TTSError, _core_error)
    app.add_exception_handler(RequestValidationError, _validation_error)


# OpenAPI ``responses=`` entries shared by the routes.
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "Missing, invalid or expired token (auth on)."},
    413: {"model": ErrorBody, "description": "Text over the 5,000 character limit."},
    422: {"model": ErrorBody, "description": "Missing or invalid parameter."},
    429: {"model": ErrorBody, "description": "Rate limit; see Retry-After."},
}
