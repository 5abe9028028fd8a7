"""Errors -> JSON answers ``{"code": ..., "message": ...}``, the same as the FastAPI app's.

Core errors (queues, speech) cross the bridge unchanged and are mapped by
``wire.legacy_http``; Flask's own HTTP errors (no such route) get the same body shape.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from flask import Flask, Response
from werkzeug.exceptions import HTTPException

from flask_app.bridge import CoreUnavailableError
from flask_app.handoff import CoreTimeoutError
from queues.errors import QueueError
from tts.errors import TTSError
from wire.legacy_http import APPLICATION_JSON, HttpError, error_for, json_bytes, retry_headers

log = logging.getLogger(__name__)


def json_response(body: Any, status: int = 200) -> Response:
    """JSON rendered exactly as the FastAPI app renders it (no sorting, no newline)."""
    return Response(json_bytes(body), status, mimetype=APPLICATION_JSON)


def _answer(error: HttpError, headers: dict[str, str] | None = None) -> tuple[Response, int]:
    response = json_response(error.body())
    response.headers.update(headers or {})
    return response, error.status


def _http_error(exc: HttpError) -> tuple[Response, int]:
    return _answer(exc)


def _core_error(exc: QueueError | TTSError) -> tuple[Response, int]:
    error = error_for(exc)
    if error.status >= 500:
        log.warning("core error: %s", exc)
    return _answer(error, retry_headers(exc))


def _unavailable(exc: CoreUnavailableError) -> tuple[Response, int]:
    # The code FastAPI answers with while its lifespan is not running.
    return _answer(HttpError(503, "starting", "the server is starting or stopping"))


def _timeout(exc: CoreTimeoutError) -> tuple[Response, int]:
    log.warning("%s", exc)
    return _answer(HttpError(503, "core_timeout", str(exc)))


def _werkzeug(exc: HTTPException) -> tuple[Response, int]:
    status = exc.code or 500
    code = re.sub(r"\W+", "_", (exc.name or "error").lower()).strip("_")
    return _answer(HttpError(status, code, exc.description or exc.name or "error"))


def install_error_handlers(app: Flask) -> None:
    app.register_error_handler(HttpError, _http_error)
    app.register_error_handler(QueueError, _core_error)
    app.register_error_handler(TTSError, _core_error)
    app.register_error_handler(CoreUnavailableError, _unavailable)
    app.register_error_handler(CoreTimeoutError, _timeout)
    app.register_error_handler(HTTPException, _werkzeug)
