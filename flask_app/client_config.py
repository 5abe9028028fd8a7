"""The Genie page (``/genie``, and ``/`` sends a browser there) and its transport
decision (``GET /api/client-config``).

Flask has no native ``/ws``, so the decision (``wire.rollout.decide``) is always
Socket.IO, with the reason saying why; the bucket cookie is still set, so a browser
keeps its place in the rollout when the FastAPI server takes over.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, redirect, request, send_file

from config import STATIC_DIR, Settings
from wire import rollout, urls

PAGE = STATIC_DIR / "genie.html"


def create_blueprint(settings: Settings) -> Blueprint:
    config = rollout.RolloutConfig.from_settings(settings)
    blueprint = Blueprint("client_config", __name__)

    @blueprint.get("/")
    def root() -> Response:
        return redirect(urls.page_url(request.query_string.decode("latin-1")), code=302)

    @blueprint.get(urls.PAGE_PATH)
    def genie_page() -> Response:
        response = send_file(PAGE, mimetype="text/html", max_age=0)
        response.headers["Cache-Control"] = "no-cache"
        return response

    @blueprint.get("/api/client-config")
    def client_config() -> Response:
        decision = rollout.decide(
            config,
            ws_available=False,
            override=request.args.get("transport"),
            cookie=request.cookies.get(config.cookie_name),
        )
        body = rollout.client_config_body(
            decision,
            config,
            server="flask",
            transports=(rollout.SOCKETIO,),
            notification_sound=settings.notification_sound,
        )
        response = jsonify(body)
        response.headers["Cache-Control"] = "no-store"
        response.set_cookie(**rollout.cookie(decision, config))
        return response

    return blueprint
