"""Serves the dashboard: ``/`` and ``/dashboard`` redirect to ``/dashboard/``.

Plain routes rather than a StaticFiles mount: they work with every FastAPI
version's ``include_router`` and serve only the files of ``static/`` (and its
``vendor/`` libraries) whose kind is known.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import RedirectResponse

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
async def index(request: Request) -> Response:
    return _asset("index.html", request)


@router.get("/dashboard/{name:path}")
async def asset(name: str, request: Request) -> Response:
    return _asset(name, request)


def _asset(name: str, request: Request) -> Response:
    path = STATIC / name
    media_type = MEDIA_TYPES.get(path.suffix)
    hidden = any(part.startswith(".") for part in name.split("/"))
    inside = path.resolve().is_relative_to(STATIC.resolve())
    if media_type is None or hidden or not inside or not path.is_file():
        raise HTTPException(status_code=404, detail=f"no dashboard file {name!r}")
    # From memory, not a file response per request: the page loads a dozen
    # files at once, and a thread hop each held up its first paint on a busy
    # machine. Keyed by mtime and size, so an upgraded file is read again.
    stat = path.stat()
    etag = f'"{stat.st_mtime_ns:x}-{stat.st_size:x}"'
    headers = {**HEADERS, "ETag": etag}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    body = _read(path, stat.st_mtime_ns, stat.st_size)
    return Response(body, media_type=media_type, headers=headers)


@lru_cache(maxsize=64)
def _read(path: Path, mtime_ns: int, size: int) -> bytes:
    # The dashboard's own files: a few hundred KB in all, read once per version.
    return path.read_bytes()
