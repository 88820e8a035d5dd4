"""Assembles the routers; nothing else lives here."""

from __future__ import annotations

from fastapi import APIRouter

from gantry.api.auth import require_for_method
from gantry.api.routes import (
    backends,
    components,
    crate,
    data,
    devices,
    drivers,
    events,
    health,
    jobs,
    logs,
    metrics,
    pipelines,
    stats,
    workflows,
)

# GET needs the read scope, anything that changes state the submit scope.
api_router = APIRouter(prefix="/api/v1", dependencies=[require_for_method()])
api_router.include_router(jobs.router)
api_router.include_router(logs.router)
api_router.include_router(events.router)
api_router.include_router(backends.router)
api_router.include_router(data.router)
api_router.include_router(crate.router)
api_router.include_router(drivers.router)
api_router.include_router(devices.router)
api_router.include_router(components.router)
api_router.include_router(pipelines.router)
api_router.include_router(workflows.router)
api_router.include_router(stats.router)

root_router = APIRouter()
root_router.include_router(health.router)
root_router.include_router(metrics.router)
