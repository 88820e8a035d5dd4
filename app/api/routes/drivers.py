"""/drivers: the installed drivers, which of them run, and how their processes fare."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from gantry.api.deps import InstrumentsDep
from gantry.instruments.schemas import DriverInfo

router = APIRouter(prefix="/drivers", tags=["drivers"])


@router.get("", response_model=list[DriverInfo])
async def list_drivers(instruments: InstrumentsDep) -> list[dict[str, Any]]:
    """Every installed driver; those the devices file uses are running.

    A driver in its own process shows that process: its pid, how often it was
    restarted, and why and when it last ended (a crash, a hang, its memory).
    """
    return instruments.drivers()
