"""/components: each device channel, its attrs, and a reading on demand.

A driver's failed Reply is a 502 with the driver's message, a component
that went away a 503, a driver that does not answer a 504 (see errors.py).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from gantry.api.deps import InstrumentsDep
from gantry.api.errors import documented
from gantry.instruments.schemas import (
    NAME_PATTERN,
    AttrInfo,
    AttrValue,
    AttrWrite,
    ComponentInfo,
    ComponentStatus,
    SampleOut,
)

router = APIRouter(prefix="/components", tags=["components"])

Device = Annotated[str, Path(max_length=200, pattern=NAME_PATTERN)]
Channel = Annotated[str, Path(max_length=200, pattern=NAME_PATTERN)]
AttrName = Annotated[str, Path(max_length=200)]


@router.get("", response_model=list[ComponentInfo])
async def list_components(instruments: InstrumentsDep) -> list[dict[str, Any]]:
    """Every component (device channel): driver, capabilities, pipelines, current job."""
    return await instruments.components()


@router.get(
    "/{device}/{channel}", response_model=ComponentStatus, responses=documented(404, 502, 503, 504)
)
async def show_component(
    device: Device, channel: Channel, instruments: InstrumentsDep
) -> dict[str, Any]:
    """A component's status (cmp_status), attrs, constants and last reading."""
    return await instruments.component(device, channel)


@router.get(
    "/{device}/{channel}/attrs",
    response_model=dict[str, AttrInfo],
    responses=documented(404, 502, 503, 504),
)
async def list_attrs(device: Device, channel: Channel, instruments: InstrumentsDep) -> Any:
    return await instruments.attrs(device, channel)


@router.get(
    "/{device}/{channel}/attrs/{attr}",
    response_model=AttrValue,
    responses=documented(404, 502, 503, 504),
)
async def get_attr(
    device: Device, channel: Channel, attr: AttrName, instruments: InstrumentsDep
) -> dict[str, Any]:
    return await instruments.get_attr(device, channel, attr)


@router.put(
    "/{device}/{channel}/attrs/{attr}",
    response_model=AttrValue,
    responses=documented(404, 409, 422, 502, 503, 504),
)
async def set_attr(
    device: Device, channel: Channel, attr: AttrName, body: AttrWrite, instruments: InstrumentsDep
) -> dict[str, Any]:
    """Set an attr; the value is checked against the Attr (type, units, limits, options)."""
    return await instruments.set_attr(device, channel, attr, body.value)


@router.post(
    "/{device}/{channel}/measure",
    response_model=SampleOut,
    responses=documented(404, 409, 502, 503, 504),
)
async def measure(device: Device, channel: Channel, instruments: InstrumentsDep) -> dict[str, Any]:
    """One reading now (the component must be idle)."""
    return await instruments.measure(device, channel)
