"""The original Genie HTTP routes (DESIGN "Wire protocols"), plus ``/health`` and
``/metrics``.

Handlers stay thin: parse the request, run the work on the core (``Runtime.call``),
shape the answer. What the answers say comes from ``wire.legacy_http``.
"""

from __future__ import annotations

from flask import Blueprint, Response, abort, current_app, request, send_file

from config import STATIC_DIR
from flask_app import metrics as app_metrics
from flask_app.core import Core
from flask_app.errors import json_response
from flask_app.runtime import Runtime
from queues.metrics import CONTENT_TYPE
from wire import legacy_http

legacy = Blueprint("legacy", __name__)
service = Blueprint("service", __name__)
# Each app that registers the blueprint gets its own metrics registry.
service.record_once(lambda state: app_metrics.init_app(state.app))


def runtime() -> Runtime:
    return current_app.extensions["genie"]


def _text(body: str) -> Response:
    return Response(body, mimetype="text/plain")


def _audio(found: tuple[bytes, str]) -> Response:
    audio, media_type = found
    return Response(audio, mimetype=media_type, headers=legacy_http.AUDIO_HEADERS)


@legacy.get("/push")
def push() -> Response:
    # The raw query string: the original page sends the question unencoded.
    return _text(runtime().call(Core.push, request.query_string))


@legacy.get("/get_queue/<queue_name>")
def get_queue(queue_name: str) -> Response:
    return json_response(runtime().call(Core.listing, queue_name))


@legacy.get("/get_tts_audio")
def get_tts_audio() -> Response:
    text = request.args.get("tts_text")
    if text is None:
        raise legacy_http.missing_param("tts_text")
    return _audio(runtime().call(Core.speak, text))


@legacy.get("/get-answer/<id_hash>")
def get_answer(id_hash: str) -> Response:
    return _audio(runtime().call(Core.answer, id_hash))


@legacy.get("/delete-snapshot/<id_hash>")
def delete_snapshot(id_hash: str) -> Response:
    return _text(runtime().call(Core.delete, id_hash))


@legacy.get("/static/<path:path>")
def static_file(path: str) -> Response:
    return send_file(legacy_http.static_file(STATIC_DIR, path))


@service.get("/health")
def health() -> Response:
    rt = runtime()
    return json_response(
        {
            "server": "flask",
            "async_mode": rt.async_mode,
            "connections": {"socketio": rt.connected},
            **rt.call(Core.health),
        }
    )


@service.get("/metrics")
def metrics() -> Response:
    if not runtime().settings.metrics_enabled:
        abort(404)
    body = app_metrics.metrics_of(current_app).render()
    return Response(body, content_type=CONTENT_TYPE)
