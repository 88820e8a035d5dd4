"""/healthz: is the server up and its engine running."""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

from fastapi import APIRouter

from gantry.api.deps import EngineDep
from gantry.schemas import Health

router = APIRouter(tags=["health"])
VERSION = version("gantry")


@router.get("/healthz", response_model=Health)
async def healthz(engine: EngineDep) -> dict[str, Any]:
    return {"status": "ok", "version": VERSION, "active_jobs": len(engine.jobs)}
