"""``/static/<file>``: files under ``static/`` only; nothing outside it is reachable."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import FileResponse

from config import STATIC_DIR
from fastapi_app.errors import ErrorBody
from wire import legacy_http

router = APIRouter(tags=["static"])


@router.get(
    "/static/{path:path}",
    response_class=FileResponse,
    responses={404: {"model": ErrorBody, "description": "No such file under static/."}},
    summary="A file of the static/ folder",
)
async def static_file(path: str) -> FileResponse:
    return FileResponse(legacy_http.static_file(STATIC_DIR, path))
