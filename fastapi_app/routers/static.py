"""``/static/<file>``: files under ``static/`` only; nothing outside it is reachable."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import FileResponse

from config import STATIC_DIR
from fastapi_app.errors import ApiError, ErrorBody

router = APIRouter(tags=["static"])


@router.get(
    "/static/{path:path}",
    response_class=FileResponse,
    responses={404: {"model": ErrorBody, "description": "No such file under static/."}},
    summary="A file of the static/ folder",
)
async def static_file(path: str) -> FileResponse:
    root = STATIC_DIR.resolve()
    # resolve() folds "..", symlinks and absolute parts; then the result must be inside.
    target = (root / path).resolve()
    if not target.is_relative_to(root) or not target.is_file():
        raise ApiError(404, "not_found", f"no file {path!r} under /static")
    return FileResponse(target)
