"""/drivers, /devices, /components, /pipelines: the instruments of this server.

Routes translate and delegate to the instrument backend's host (drivers and
components) and pipeline store. A driver's failed Reply becomes a 4xx/5xx
answer with the driver's message; a driver that does not answer, a 504.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Request

from gantry.drivers.interface_2_0 import Attr, AttrError, Reply, Sample
from gantry.drivers.units import coerce_value
from gantry.instruments.backend import InstrumentBackend
from gantry.instruments.devices import NAME_PATTERN
from gantry.instruments.host import Component, DriverTimeout, UnknownComponent
from gantry.instruments.pipelines import PipelineBusy, UnknownPipeline
from gantry.instruments.schemas import (
    AttrInfo,
    AttrValue,
    AttrWrite,
    ComponentInfo,
    ComponentStatus,
    DeviceInfo,
    DriverInfo,
    PipelineInfo,
    ReadyWrite,
    SampleLoad,
    SampleOut,
)
from gantry.schemas import ErrorBody

router = APIRouter(tags=["instruments"])


def get_instruments(request: Request) -> InstrumentBackend:
    backend: InstrumentBackend = request.app.state.instruments
    return backend


Instruments = Annotated[InstrumentBackend, Depends(get_instruments)]
Device = Annotated[str, Path(max_length=200, pattern=NAME_PATTERN)]
Channel = Annotated[str, Path(max_length=200, pattern=NAME_PATTERN)]
AttrName = Annotated[str, Path(max_length=200)]
PipelineName = Annotated[str, Path(max_length=200, pattern=NAME_PATTERN)]


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": ErrorBody} for code in codes}


# --- drivers and devices ------------------------------------------------------


@router.get("/drivers", response_model=list[DriverInfo])
async def list_drivers(instruments: Instruments) -> list[dict[str, Any]]:
    """Every installed driver; those the devices file uses are running."""
    host = instruments.host
    out = []
    for name, entry in sorted(host.registry.entries.items()):
        driver = host.drivers.get(name)
        out.append(
            {
                "name": name,
                "target": entry.target,
                "loaded": entry.ok,
                "running": driver is not None and name not in host.errors,
                "error": entry.error or host.errors.get(name),
                "version": entry.cls.version if entry.cls else None,
                "components": [c.label for c in host.components.values() if c.driver is driver]
                if driver is not None
                else [],
            }
        )
    return out


@router.get("/devices", response_model=list[DeviceInfo])
async def list_devices(instruments: Instruments) -> list[dict[str, Any]]:
    """The devices of the devices file."""
    return [d.model_dump() for d in instruments.host.devices.devices.values()]


# --- components --------------------------------------------------------------------


def _component(instruments: InstrumentBackend, device: str, channel: str) -> Component:
    try:
        return instruments.host.component(device, channel)
    except UnknownComponent as exc:
        raise HTTPException(404, str(exc)) from None


async def _call(comp: Component, method: str, *args: Any) -> Reply:
    try:
        return await comp.call(method, *args)
    except UnknownComponent as exc:
        raise HTTPException(503, str(exc)) from None
    except DriverTimeout as exc:
        raise HTTPException(504, str(exc)) from None


def _failed(reply: Reply) -> HTTPException:
    return HTTPException(502, f"the driver failed: {reply.msg}")


async def _info(instruments: InstrumentBackend, comp: Component) -> dict[str, Any]:
    caps: list[str] = []
    if comp.error is None:
        reply = await _call(comp, "cmp_capabilities")
        caps = sorted(reply.data) if reply.success else []
    pipelines = instruments.pipelines
    roles = [
        {"pipeline": p.name, "role": r.role}
        for p in pipelines.defs.values()
        for r in p.components
        if (r.device, r.channel) == comp.key
    ]
    return {
        "device": comp.device.name,
        "channel": comp.channel,
        "driver": comp.device.driver,
        "address": comp.address,
        "available": comp.error is None,
        "error": comp.error,
        "capabilities": caps,
        "roles": roles,
        "job_id": pipelines.busy_components().get(comp.key),
    }


def _attr(attr: Attr) -> dict[str, Any]:
    data = attr.model_dump(mode="json")
    if data.get("options") is not None:
        data["options"] = sorted(data["options"], key=str)
    return data


def _sample(sample: Sample) -> dict[str, Any]:
    return {"uts": sample.uts, "values": dict(sample.values), "units": dict(sample.units)}


@router.get("/components", response_model=list[ComponentInfo])
async def list_components(instruments: Instruments) -> list[dict[str, Any]]:
    """Every component (device channel): driver, capabilities, pipelines, current job."""
    return [await _info(instruments, c) for c in instruments.host.components.values()]


@router.get(
    "/components/{device}/{channel}",
    response_model=ComponentStatus,
    responses=_errors(404, 502, 503, 504),
)
async def show_component(
    device: Device, channel: Channel, instruments: Instruments
) -> dict[str, Any]:
    """A component's status (cmp_status), attrs, constants and last reading."""
    comp = _component(instruments, device, channel)
    info = await _info(instruments, comp)
    if comp.error is not None:  # unavailable: say why, with what is known
        return {**info, "status": {}, "attrs": {}, "constants": {}, "last_data": None}
    status = await _call(comp, "cmp_status")
    if not status.success:
        raise _failed(status)
    attrs = await _call(comp, "cmp_attrs")
    constants = await _call(comp, "cmp_constants")
    last = await _call(comp, "cmp_last_data")
    return {
        **info,
        "status": status.data,
        "attrs": {n: _attr(a) for n, a in (attrs.data or {}).items()} if attrs.success else {},
        "constants": constants.data if constants.success else {},
        "last_data": _sample(last.data) if last.success else None,
    }


@router.get(
    "/components/{device}/{channel}/attrs",
    response_model=dict[str, AttrInfo],
    responses=_errors(404, 502, 503, 504),
)
async def list_attrs(device: Device, channel: Channel, instruments: Instruments) -> Any:
    comp = _component(instruments, device, channel)
    reply = await _call(comp, "cmp_attrs")
    if not reply.success:
        raise _failed(reply)
    return {n: _attr(a) for n, a in reply.data.items()}


async def _known_attr(comp: Component, attr: str) -> Attr:
    reply = await _call(comp, "cmp_attrs")
    if not reply.success:
        raise _failed(reply)
    attrs: dict[str, Attr] = reply.data
    if attr not in attrs:
        raise HTTPException(
            404,
            f"{attr!r} is not an attr of component {comp.label}; attrs: {', '.join(sorted(attrs))}",
        )
    return attrs[attr]


@router.get(
    "/components/{device}/{channel}/attrs/{attr}",
    response_model=AttrValue,
    responses=_errors(404, 502, 503, 504),
)
async def get_attr(
    device: Device, channel: Channel, attr: AttrName, instruments: Instruments
) -> dict[str, Any]:
    comp = _component(instruments, device, channel)
    spec = await _known_attr(comp, attr)
    reply = await _call(comp, "cmp_get_attr", attr)
    if not reply.success:
        raise _failed(reply)
    value = (
        reply.data if isinstance(reply.data, str | int | float | bool | None) else str(reply.data)
    )
    return {"device": device, "channel": channel, "attr": attr, "value": value, "units": spec.units}


def _idle(instruments: InstrumentBackend, comp: Component, what: str) -> None:
    job_id = instruments.pipelines.busy_components().get(comp.key)
    if job_id is not None:
        raise HTTPException(
            409, f"component {comp.label} is in use by job {job_id}: {what} once it ended"
        )


@router.put(
    "/components/{device}/{channel}/attrs/{attr}",
    response_model=AttrValue,
    responses=_errors(404, 409, 422, 502, 503, 504),
)
async def set_attr(
    device: Device, channel: Channel, attr: AttrName, body: AttrWrite, instruments: Instruments
) -> dict[str, Any]:
    """Set an attr; the value is checked against the Attr (type, units, limits, options)."""
    comp = _component(instruments, device, channel)
    spec = await _known_attr(comp, attr)
    _idle(instruments, comp, f"set {attr!r}")
    if not spec.rw:
        raise HTTPException(422, f"{attr!r} of component {comp.label} is read-only")
    try:
        coerce_value(attr, spec, body.value)
    except AttrError as exc:
        raise HTTPException(422, f"cannot set attr on component {comp.label}: {exc}") from None
    reply = await _call(comp, "cmp_set_attr", attr, body.value)
    if not reply.success:
        raise _failed(reply)
    value = (
        reply.data if isinstance(reply.data, str | int | float | bool | None) else str(reply.data)
    )
    return {"device": device, "channel": channel, "attr": attr, "value": value, "units": spec.units}


@router.post(
    "/components/{device}/{channel}/measure",
    response_model=SampleOut,
    responses=_errors(404, 409, 502, 503, 504),
)
async def measure(device: Device, channel: Channel, instruments: Instruments) -> dict[str, Any]:
    """One reading now (the component must be idle)."""
    comp = _component(instruments, device, channel)
    _idle(instruments, comp, "measure")
    reply = await _call(comp, "cmp_measure")
    if not reply.success:
        raise _failed(reply)
    return _sample(reply.data)


# --- pipelines -----------------------------------------------------------------------


def _pipeline(instruments: InstrumentBackend, name: str) -> dict[str, Any]:
    store = instruments.pipelines
    try:
        pipeline, state = store.get(name)
    except UnknownPipeline as exc:
        raise HTTPException(404, str(exc)) from None
    comps = [
        {
            "role": r.role,
            "device": r.device,
            "channel": r.channel,
            "available": instruments.host.component(r.device, r.channel).error is None,
        }
        for r in pipeline.components
    ]
    return {
        "name": name,
        "components": comps,
        "sample": state.sample,
        "ready": state.ready,
        "job_id": store.holder(name),
        "available": all(c["available"] for c in comps),
        "updated_at": state.updated_at,
    }


@router.get("/pipelines", response_model=list[PipelineInfo])
async def list_pipelines(instruments: Instruments) -> list[dict[str, Any]]:
    """Every pipeline: its components by role, sample, readiness and running job."""
    return [_pipeline(instruments, n) for n in sorted(instruments.pipelines.defs)]


@router.get("/pipelines/{name}", response_model=PipelineInfo, responses=_errors(404))
async def show_pipeline(name: PipelineName, instruments: Instruments) -> dict[str, Any]:
    return _pipeline(instruments, name)


async def _change(instruments: InstrumentBackend, name: str, change: Any) -> dict[str, Any]:
    try:
        await change
    except UnknownPipeline as exc:
        raise HTTPException(404, str(exc)) from None
    except PipelineBusy as exc:
        raise HTTPException(409, str(exc)) from None
    return _pipeline(instruments, name)


@router.post("/pipelines/{name}/load", response_model=PipelineInfo, responses=_errors(404, 409))
async def load_sample(
    name: PipelineName, body: SampleLoad, instruments: Instruments
) -> dict[str, Any]:
    """Load a sample into an idle, empty pipeline."""
    return await _change(instruments, name, instruments.pipelines.load_sample(name, body.sample))


@router.post("/pipelines/{name}/eject", response_model=PipelineInfo, responses=_errors(404, 409))
async def eject_sample(name: PipelineName, instruments: Instruments) -> dict[str, Any]:
    """Remove the sample of an idle pipeline (it is then not ready)."""
    return await _change(instruments, name, instruments.pipelines.eject(name))


@router.post("/pipelines/{name}/ready", response_model=PipelineInfo, responses=_errors(404, 409))
async def mark_ready(
    name: PipelineName, instruments: Instruments, body: ReadyWrite | None = None
) -> dict[str, Any]:
    """Mark a pipeline holding a sample ready (``{"ready": false}``: not ready)."""
    ready = True if body is None else body.ready
    return await _change(instruments, name, instruments.pipelines.set_ready(name, ready))
