"""/backends: what is installed, what runs, its options and health."""

from __future__ import annotations

from typing import Any

import anyio
from fastapi import APIRouter

from gantry.api.deps import CatalogDep, EngineDep
from gantry.schemas import BackendInfo

router = APIRouter(prefix="/backends", tags=["backends"])

HEALTH_TIMEOUT = 5.0


@router.get("", response_model=list[BackendInfo])
async def list_backends(catalog: CatalogDep, engine: EngineDep) -> list[dict[str, Any]]:
    """Every installed backend; one that failed to load says why."""
    infos: list[dict[str, Any]] = []
    for name, entry in sorted(catalog.installed.items()):
        backend = catalog.running.get(name)
        info: dict[str, Any] = {
            "name": name,
            "loaded": entry.loaded,
            "running": backend is not None,
            "healthy": None,
            "message": entry.error or "not enabled",
            "option_defaults": entry.cls.option_defaults if entry.cls else {},
            "supports_dependencies": bool(entry.cls and entry.cls.supports_dependencies),
            "entry_point": entry.value,
        }
        if backend is not None:
            crashed = engine.backend_errors.get(name)
            if crashed:
                info.update(healthy=False, message=crashed)
            else:
                healthy, message = False, f"health check took over {HEALTH_TIMEOUT:.0f} s"
                with anyio.move_on_after(HEALTH_TIMEOUT):
                    try:
                        healthy, message = await backend.health()
                    except Exception as exc:
                        healthy, message = False, f"health check failed: {exc}"
                info.update(healthy=healthy, message=message)
        infos.append(info)
    return infos
