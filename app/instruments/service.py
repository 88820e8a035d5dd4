"""The instruments as the API sees them: drivers, devices, components, pipelines, job data.

The one door into the instrument side for ``gantry.api``: it answers in
plain values (the wire schemas' shapes) and refuses with the errors below,
each saying what was wrong; the API maps them to status codes. Drivers,
the host, the pipeline store and the data files stay behind it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio

from gantry.drivers.interface_2_0 import Attr, AttrError, ModelInterface, Reply, Sample
from gantry.drivers.process import DriverProcess
from gantry.drivers.units import coerce_value
from gantry.instruments import export
from gantry.instruments.backend import InstrumentBackend
from gantry.instruments.data import role_file
from gantry.instruments.host import Component, DriverTimeout, UnknownComponent
from gantry.instruments.pipelines import PipelineBusy, UnknownPipeline

#: Samples per chunk of a CSV answer (one worker-thread read each).
CSV_CHUNK = 5_000


class InstrumentError(Exception):
    """Base of what the instrument side refuses; the message is for people."""


class NotFound(InstrumentError):
    """No such component, attr or pipeline."""


class Busy(InstrumentError):
    """A job uses the component or pipeline, or its state forbids the change."""


class Refused(InstrumentError):
    """The value or the change is not allowed (read-only attr, out of limits)."""


class DriverFailed(InstrumentError):
    """The driver answered with a failed Reply."""


class Unavailable(InstrumentError):
    """The component went away while it was being called."""


class NoAnswer(InstrumentError):
    """The driver did not answer in time."""


def _attr(attr: Attr) -> dict[str, Any]:
    data = attr.model_dump(mode="json")
    if data.get("options") is not None:
        data["options"] = sorted(data["options"], key=str)
    return data


def _sample(sample: Sample) -> dict[str, Any]:
    return {"uts": sample.uts, "values": dict(sample.values), "units": dict(sample.units)}


def _attr_value(device: str, channel: str, attr: str, value: Any, spec: Attr) -> dict[str, Any]:
    plain = value if isinstance(value, str | int | float | bool | None) else str(value)
    return {"device": device, "channel": channel, "attr": attr, "value": plain, "units": spec.units}


async def _call(comp: Component, method: str, *args: Any) -> Reply:
    try:
        return await comp.call(method, *args)
    except UnknownComponent as exc:
        raise Unavailable(str(exc)) from None
    except DriverTimeout as exc:
        raise NoAnswer(str(exc)) from None


async def _succeeded(comp: Component, method: str, *args: Any) -> Any:
    """The data of a successful Reply; a failed one is :class:`DriverFailed`."""
    reply = await _call(comp, method, *args)
    if not reply.success:
        raise DriverFailed(f"the driver failed: {reply.msg}")
    return reply.data


class Instruments:
    """What a person can ask of the instruments of one server."""

    def __init__(self, backend: InstrumentBackend) -> None:
        self._host = backend.host
        self._pipelines = backend.pipelines

    # -- drivers and devices ---------------------------------------------------

    def drivers(self) -> list[dict[str, Any]]:
        """Every installed driver; those the devices file uses are running."""
        host = self._host
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
                    "process": _process_info(driver),
                }
            )
        return out

    def devices(self) -> list[dict[str, Any]]:
        return [d.model_dump() for d in self._host.devices.devices.values()]

    # -- components ----------------------------------------------------------------

    def _component(self, device: str, channel: str) -> Component:
        try:
            return self._host.component(device, channel)
        except UnknownComponent as exc:
            raise NotFound(str(exc)) from None

    async def _info(self, comp: Component) -> dict[str, Any]:
        caps: list[str] = []
        if comp.error is None:
            reply = await _call(comp, "cmp_capabilities")
            caps = sorted(reply.data) if reply.success else []
        pipelines = self._pipelines
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

    async def components(self) -> list[dict[str, Any]]:
        """Every component (device channel): driver, capabilities, pipelines, current job."""
        return [await self._info(c) for c in self._host.components.values()]

    async def component(self, device: str, channel: str) -> dict[str, Any]:
        """A component's status, attrs, constants and last reading."""
        comp = self._component(device, channel)
        info = await self._info(comp)
        if comp.error is not None:  # unavailable: say why, with what is known
            return {**info, "status": {}, "attrs": {}, "constants": {}, "last_data": None}
        status = await _succeeded(comp, "cmp_status")
        attrs = await _call(comp, "cmp_attrs")
        constants = await _call(comp, "cmp_constants")
        last = await _call(comp, "cmp_last_data")
        return {
            **info,
            "status": status,
            "attrs": {n: _attr(a) for n, a in (attrs.data or {}).items()} if attrs.success else {},
            "constants": constants.data if constants.success else {},
            "last_data": _sample(last.data) if last.success else None,
        }

    async def attrs(self, device: str, channel: str) -> dict[str, Any]:
        comp = self._component(device, channel)
        attrs: dict[str, Attr] = await _succeeded(comp, "cmp_attrs")
        return {n: _attr(a) for n, a in attrs.items()}

    async def _known_attr(self, comp: Component, attr: str) -> Attr:
        attrs: dict[str, Attr] = await _succeeded(comp, "cmp_attrs")
        if attr not in attrs:
            raise NotFound(
                f"{attr!r} is not an attr of component {comp.label}; "
                f"attrs: {', '.join(sorted(attrs))}"
            )
        return attrs[attr]

    def _idle(self, comp: Component, what: str) -> None:
        job_id = self._pipelines.busy_components().get(comp.key)
        if job_id is not None:
            raise Busy(f"component {comp.label} is in use by job {job_id}: {what} once it ended")

    async def get_attr(self, device: str, channel: str, attr: str) -> dict[str, Any]:
        comp = self._component(device, channel)
        spec = await self._known_attr(comp, attr)
        value = await _succeeded(comp, "cmp_get_attr", attr)
        return _attr_value(device, channel, attr, value, spec)

    async def set_attr(self, device: str, channel: str, attr: str, value: Any) -> dict[str, Any]:
        """Set an attr of an idle component, checked against the Attr first."""
        comp = self._component(device, channel)
        spec = await self._known_attr(comp, attr)
        self._idle(comp, f"set {attr!r}")
        if not spec.rw:
            raise Refused(f"{attr!r} of component {comp.label} is read-only")
        try:
            coerce_value(attr, spec, value)
        except AttrError as exc:
            raise Refused(f"cannot set attr on component {comp.label}: {exc}") from None
        now = await _succeeded(comp, "cmp_set_attr", attr, value)
        return _attr_value(device, channel, attr, now, spec)

    async def measure(self, device: str, channel: str) -> dict[str, Any]:
        """One reading now (the component must be idle)."""
        comp = self._component(device, channel)
        self._idle(comp, "measure")
        return _sample(await _succeeded(comp, "cmp_measure"))

    # -- pipelines -------------------------------------------------------------------

    def pipeline(self, name: str) -> dict[str, Any]:
        store = self._pipelines
        try:
            pipeline, state = store.get(name)
        except UnknownPipeline as exc:
            raise NotFound(str(exc)) from None
        comps = [
            {
                "role": r.role,
                "device": r.device,
                "channel": r.channel,
                "available": self._host.component(r.device, r.channel).error is None,
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

    def pipelines(self) -> list[dict[str, Any]]:
        """Every pipeline: its components by role, sample, readiness and running job."""
        return [self.pipeline(n) for n in sorted(self._pipelines.defs)]

    async def load_sample(self, name: str, sample: str) -> dict[str, Any]:
        """Load a sample into an idle, empty pipeline."""
        return await self._change(name, lambda: self._pipelines.load_sample(name, sample))

    async def eject(self, name: str) -> dict[str, Any]:
        return await self._change(name, lambda: self._pipelines.eject(name))

    async def set_ready(self, name: str, ready: bool) -> dict[str, Any]:
        return await self._change(name, lambda: self._pipelines.set_ready(name, ready))

    async def _change(self, name: str, change: Any) -> dict[str, Any]:
        try:
            await change()
        except UnknownPipeline as exc:
            raise NotFound(str(exc)) from None
        except PipelineBusy as exc:
            raise Busy(str(exc)) from None
        return self.pipeline(name)


def roles_of(payload: Mapping[str, Any]) -> list[str]:
    """The component roles an instrument job's method uses, sorted."""
    return sorted({t["component_role"] for t in payload.get("method", [])})


class JobData:
    """The stored samples of one attempt of an instrument job, one file per role.

    Blocking file work runs on worker threads. Samples are JSON lines, handed
    on as bytes so a page is joined without decoding each sample.
    """

    def __init__(self, directory: Path, roles: list[str]) -> None:
        self._directory = directory
        self.roles = roles
        self._files = {r: role_file(directory, r) for r in roles}

    async def page(self, role: str, offset: int, limit: int) -> tuple[list[bytes], int]:
        """Up to ``limit`` samples of ``role`` from sample ``offset``, and the next offset."""
        return await anyio.to_thread.run_sync(export.read_lines, self._files[role], offset, limit)

    async def positions(self, offset: int) -> dict[str, int]:
        """Per role, the byte position of sample ``offset`` (to read on from there)."""
        return {
            r: await anyio.to_thread.run_sync(export.position_of, path, offset)
            for r, path in self._files.items()
        }

    async def read_from(self, role: str, position: int) -> tuple[list[bytes], int]:
        """The samples of ``role`` stored after byte ``position``, and the new position."""
        return await anyio.to_thread.run_sync(export.read_from, self._files[role], position)

    async def csv(self, offset: int, limit: int | None) -> AsyncIterator[str]:
        """A header, then up to ``limit`` samples per role from ``offset``, as CSV text.

        The columns are read before this returns, so a failure comes before any text.
        """
        directory, roles = self._directory, self.roles
        columns = await anyio.to_thread.run_sync(export.value_columns, directory, roles)

        async def rows() -> AsyncIterator[str]:
            yield export.csv_header(columns)
            for name in roles:
                position, left = offset, limit
                while left is None or left > 0:
                    size = CSV_CHUNK if left is None else min(CSV_CHUNK, left)
                    text, position_after = await anyio.to_thread.run_sync(
                        export.csv_rows, directory, name, columns, position, size
                    )
                    if text:
                        yield text
                    read = position_after - position
                    position = position_after
                    if left is not None:
                        left -= read
                    if read < size:
                        break

        return rows()

    async def netcdf(self, job: Mapping[str, Any]) -> Path:
        """A NetCDF4 file of the whole attempt (a temporary file: delete it once sent)."""
        return await anyio.to_thread.run_sync(export.netcdf_file, self._directory, dict(job))


def _process_info(driver: ModelInterface | None) -> dict[str, Any] | None:
    """A driver process's pid, restarts and last failure; None for a driver in the server."""
    if not isinstance(driver, DriverProcess):
        return None
    failure = None
    if driver.last_failure is not None and driver.last_failure_at is not None:
        at = datetime.fromtimestamp(driver.last_failure_at, UTC)
        failure = {"reason": driver.last_failure, "at": at}
    log = str(driver.log_path) if driver.log_path is not None else None
    return {"pid": driver.pid, "restarts": driver.restarts, "last_failure": failure, "log": log}
