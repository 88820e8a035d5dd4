"""Serves the dashboard: ``/`` and ``/dashboard`` redirect to ``/dashboard/``.

Plain routes rather than a StaticFiles mount: they work with every FastAPI
version's ``include_router`` and serve only the files of ``static/`` (and its
``vendor/`` libraries) whose kind is known.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse, RedirectResponse

STATIC = Path(__file__).parent / "static"

MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}

# Only this server's own assets and API: a stray CDN reference fails loudly
# in the browser, and injected markup cannot run scripts.
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # Revalidate on every load: an upgraded server never runs with stale JS.
    "Cache-Control": "no-cache",
}

router = APIRouter(include_in_schema=False)


@router.get("/")
@router.get("/dashboard")
async def to_dashboard() -> RedirectResponse:
    # Relative, so the page also works behind a proxy that adds a path prefix.
    return RedirectResponse("dashboard/", status_code=307)


@router.get("/dashboard/")
async def index() -> FileResponse:
    return _asset("index.html")


@router.get("/dashboard/{name:path}")
async def asset(name: str) -> FileResponse:
    return _asset(name)


def _asset(name: str) -> FileResponse:
    path = STATIC / name
    media_type = MEDIA_TYPES.get(path.suffix)
    hidden = any(part.startswith(".") for part in name.split("/"))
    inside = path.resolve().is_relative_to(STATIC.resolve())
    if media_type is None or hidden or not inside or not path.is_file():
        raise HTTPException(status_code=404, detail=f"no dashboard file {name!r}")
    return FileResponse(path, media_type=media_type, headers=HEADERS)
