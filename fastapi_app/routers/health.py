"""``/health`` and (full stage) ``/metrics``. (``/`` is the Genie page's: ``client_config``.)"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from fastapi_app.deps import RuntimeDep
from queues.metrics import CONTENT_TYPE

router = APIRouter(tags=["service"])
metrics_router = APIRouter(tags=["service"])


@router.get("/health", summary="Liveness and a short status")
async def health(rt: RuntimeDep) -> dict[str, Any]:
    queues = rt.queues.health()
    return {
        "status": queues["status"],
        "stage": rt.features.stage,
        "connections": {
            "ws": len(rt.connections) if rt.connections is not None else 0,
            "socketio": rt.legacy.connected,
        },
        "jobs": rt.queues.counts(),
        "queues": queues,
        "speech": rt.speech.health() if rt.speech is not None else [],
        # Tasks alive on the server's loop (this request's included): a leak shows as a
        # count that does not return to its baseline once the clients leave.
        "tasks": len(asyncio.all_tasks()),
    }


@metrics_router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE: {}}, "description": "Prometheus text format."}},
    summary="Prometheus metrics",
)
async def metrics(rt: RuntimeDep) -> Response:
    assert rt.metrics is not None
    return Response(rt.metrics.render(), media_type=CONTENT_TYPE)
