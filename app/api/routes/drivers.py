"""/drivers: the installed drivers and which of them run."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from gantry.api.deps import InstrumentsDep
from gantry.instruments.schemas import DriverInfo

router = APIRouter(prefix="/drivers", tags=["drivers"])


@router.get("", response_model=list[DriverInfo])
async def list_drivers(instruments: InstrumentsDep) -> list[dict[str, Any]]:
    """Every installed driver; those the devices file uses are running."""
    return instruments.drivers()
