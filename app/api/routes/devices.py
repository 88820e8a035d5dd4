"""/devices: the instruments of the devices file."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from gantry.api.deps import InstrumentsDep
from gantry.instruments.schemas import DeviceInfo

router = APIRouter(prefix="/devices", tags=["devices"])


@router.get("", response_model=list[DeviceInfo])
async def list_devices(instruments: InstrumentsDep) -> list[dict[str, Any]]:
    """The devices of the devices file."""
    return instruments.devices()
