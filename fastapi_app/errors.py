"""Domain errors -> HTTP. Every error body is ``{"code": ..., "message": ...}``.

The statuses are ``wire.legacy_http.status_for`` (shared with the Flask app): too long
413, other bad input 422, unknown job or queue 404, job still active 409, queues
closed or every speech provider failed 503.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

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


async def _starlette_error(request: Request, exc: Exception) -> JSONResponse:
    # FastAPI's own refusals (an unknown path 404, a wrong method 405, a body that is not
    # UTF-8 400) in the same shape as every other error, not {"detail": ...}.
    assert isinstance(exc, StarletteHTTPException)
    code = HTTPStatus(exc.status_code).phrase.lower().replace(" ", "_").replace("-", "_")
    return error_response(exc.status_code, code, str(exc.detail), exc.headers)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(StarletteHTTPException, _starlette_error)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(legacy_http.HttpError, _http_error)
    app.add_exception_handler(QueueError, _core_error)
    app.add_exception_handler(TTSError, _core_error)
    app.add_exception_handler(RequestValidationError, _validation_error)


def error_doc(description: str) -> dict[str, Any]:
    """An error entry for ``responses=``: JSON on every route. (With ``model=`` FastAPI
    files the schema under the route's own media type: text/plain on a text route.)"""
    return {"description": description,
            "content": {"application/json": {"schema": ErrorBody.model_json_schema()}}}  # fmt: skip


# OpenAPI ``responses=`` entries shared by the routes.
ERRORS: dict[int | str, dict[str, Any]] = {
    401: error_doc("Missing, invalid or expired token (auth on)."),
    413: error_doc("Text over the 5,000 character limit."),
    422: error_doc("Missing or invalid parameter."),
    429: error_doc("Rate limit; see Retry-After."),
}
# Routes with a JSON body: FastAPI refuses one that is not UTF-8 before validating it.
BAD_BODY: dict[int | str, dict[str, Any]] = {400: error_doc("The body is not UTF-8 JSON.")}
