"""The Genie page (``/genie``, and ``/`` sends a browser there) and its transport
decision (``GET /api/client-config``).

The decision is ``wire.rollout.decide``; this router only reads the cookie and the
query, sets the bucket cookie and counts the decision in ``/metrics``
(``genie_rollout_decisions_total{transport,reason}``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from prometheus_client import Counter

from config import STATIC_DIR, Settings
from fastapi_app.auth.login import login_redirect
from fastapi_app.features import Features
from fastapi_app.metrics import AppMetrics
from wire import rollout, urls

PAGE = STATIC_DIR / "genie.html"


def build_router(settings: Settings, features: Features, metrics: AppMetrics | None) -> APIRouter:
    ws_available = features.native_ws
    config = rollout.RolloutConfig.from_settings(settings)
    transports = (rollout.SOCKETIO, rollout.WS) if ws_available else (rollout.SOCKETIO,)
    decisions = (
        Counter(
            "genie_rollout_decisions",
            "Transport decisions of GET /api/client-config.",
            ["transport", "reason"],
            registry=metrics.registry,
        )
        if metrics is not None
        else None
    )
    router = APIRouter(tags=["browser page"])

    @router.get(
        "/",
        response_class=RedirectResponse,
        status_code=302,
        summary="Redirects to the Genie page (JSON clients: /health)",
    )
    async def root(request: Request) -> RedirectResponse:
        return RedirectResponse(urls.page_url(request.url.query), status_code=302)

    @router.get(urls.PAGE_PATH, response_class=FileResponse, summary="The Genie queue page")
    async def genie_page(request: Request) -> Response:
        # With a login page (fastapi_app.auth.login), a visitor without a session goes there.
        if (to_login := login_redirect(request)) is not None:
            return to_login
        return FileResponse(PAGE, media_type="text/html", headers={"Cache-Control": "no-cache"})

    @router.get("/api/client-config", summary="Which transport this browser should use")
    async def client_config(
        request: Request,
        transport: Annotated[
            str | None, Query(description="Override for one load: ws or socketio.")
        ] = None,
    ) -> JSONResponse:
        decision = rollout.decide(
            config,
            ws_available=ws_available,
            override=transport,
            cookie=request.cookies.get(config.cookie_name),
        )
        if decisions is not None:
            decisions.labels(decision.transport, decision.reason).inc()
        body = rollout.client_config_body(
            decision,
            config,
            server="fastapi",
            transports=transports,
            notification_sound=settings.notification_sound,
        )
        response = JSONResponse(body, headers={"Cache-Control": "no-store"})
        response.set_cookie(**rollout.cookie(decision, config))
        return response

    return router
