"""Instrument operations: drivers, devices, components, pipelines, instrument jobs, data."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from gantry.client.core import (
    Emit,
    Flow,
    Read,
    Request,
    StreamFlow,
    Work,
    call,
    collect,
    get,
    next_event,
    open_stream,
    operation,
    stream_operation,
)
from gantry.client.datasets import open_netcdf
from gantry.client.errors import StreamEnded
from gantry.client.jobs import JobOperations, job_body
from gantry.instruments.schemas import (
    AttrInfo,
    AttrValue,
    ComponentInfo,
    ComponentStatus,
    DataPage,
    DeviceInfo,
    DriverInfo,
    InstrumentPayload,
    PipelineInfo,
    RolePage,
    SampleOut,
)
from gantry.schemas import JobSubmitted

if TYPE_CHECKING:
    import xarray as xr

#: Samples per role in one JSON page (the server's default).
DATA_PAGE = 10_000
FileFormat = Literal["csv", "netcdf"]


def _component(device: str, channel: str) -> str:
    return f"/components/{device}/{channel}"


class InstrumentOperations:
    """The instrument half of :class:`Client` and :class:`AsyncClient`."""

    @operation
    def drivers(self) -> Flow[list[DriverInfo]]:
        return (yield from get("/drivers", list[DriverInfo]))

    @operation
    def devices(self) -> Flow[list[DeviceInfo]]:
        return (yield from get("/devices", list[DeviceInfo]))

    @operation
    def components(self) -> Flow[list[ComponentInfo]]:
        return (yield from get("/components", list[ComponentInfo]))

    @operation
    def component(self, device: str, channel: str) -> Flow[ComponentStatus]:
        """A component's status attrs, constants, attrs and last reading."""
        return (yield from get(_component(device, channel), ComponentStatus))

    @operation
    def attrs(self, device: str, channel: str) -> Flow[dict[str, AttrInfo]]:
        return (yield from get(_component(device, channel) + "/attrs", dict[str, AttrInfo]))

    @operation
    def get_attr(self, device: str, channel: str, attr: str) -> Flow[AttrValue]:
        return (yield from get(f"{_component(device, channel)}/attrs/{attr}", AttrValue))

    @operation
    def set_attr(self, device: str, channel: str, attr: str, value: Any) -> Flow[AttrValue]:
        """Set an attr: a number, text or a quantity with units (``"5 ms"``)."""
        path = f"{_component(device, channel)}/attrs/{attr}"
        request = Request("PUT", path, json={"value": value})
        return (yield from call(request, AttrValue))

    @operation
    def measure(self, device: str, channel: str) -> Flow[SampleOut]:
        """One reading now (the component must be idle, else :class:`Conflict`)."""
        request = Request("POST", _component(device, channel) + "/measure")
        return (yield from call(request, SampleOut))

    @operation
    def pipelines(self) -> Flow[list[PipelineInfo]]:
        return (yield from get("/pipelines", list[PipelineInfo]))

    @operation
    def pipeline(self, name: str) -> Flow[PipelineInfo]:
        return (yield from get(f"/pipelines/{name}", PipelineInfo))

    @operation
    def load(self, pipeline: str, sample: str) -> Flow[PipelineInfo]:
        """Load ``sample`` into an idle, empty pipeline."""
        request = Request("POST", f"/pipelines/{pipeline}/load", json={"sample": sample})
        return (yield from call(request, PipelineInfo))

    @operation
    def eject(self, pipeline: str) -> Flow[PipelineInfo]:
        return (yield from call(Request("POST", f"/pipelines/{pipeline}/eject"), PipelineInfo))

    @operation
    def mark_ready(self, pipeline: str, ready: bool = True) -> Flow[PipelineInfo]:
        """Mark a pipeline ready (jobs for its sample may run on it) or not ready."""
        request = Request("POST", f"/pipelines/{pipeline}/ready", json={"ready": ready})
        return (yield from call(request, PipelineInfo))

    @operation
    def submit_instrument(
        self,
        payload: InstrumentPayload | Mapping[str, Any] | None = None,
        /,
        *,
        sample: str | Mapping[str, Any] | None = None,
        method: Sequence[Any] | None = None,
        pipeline: str | None = None,
        idempotency_key: str | None = None,
        **fields: Any,
    ) -> Flow[JobSubmitted]:
        """Submit an instrument job: a ``payload`` (sample and method, tomato's), or
        ``sample=`` and ``method=`` (a list of tasks); other ``fields`` as for submit.

        With ``pipeline``, the sample is loaded into it first (unless it holds
        it) and it is marked ready, so the job runs there.
        """
        body = job_body(payload, {})
        if sample is not None:
            body["sample"] = {"name": sample} if isinstance(sample, str) else dict(sample)
        if method is not None:
            body["method"] = list(method)
        if pipeline is not None:
            name = (body.get("sample") or {}).get("name")
            if not isinstance(name, str):
                raise ValueError(f"give the sample to load into pipeline {pipeline}: sample=...")
            info = yield from get(f"/pipelines/{pipeline}", PipelineInfo)
            if info.sample != name:
                info = yield from InstrumentOperations.load.flow(self, pipeline, name)
            if not info.ready:
                yield from InstrumentOperations.mark_ready.flow(self, pipeline)
        flow = JobOperations.submit.flow(
            self, {**fields, "payload": body}, idempotency_key=idempotency_key
        )
        return (yield from flow)

    # --- data ------------------------------------------------------------------------

    @operation
    def data(
        self, job_id: int, *, role: str | None = None, offset: int = 0, limit: int = DATA_PAGE
    ) -> Flow[DataPage]:
        """One page of an instrument job's samples per role (while it runs, too)."""
        params = {"role": role, "offset": offset, "limit": limit}
        return (yield from get(f"/jobs/{job_id}/data", DataPage, params))

    @stream_operation
    def iter_data(self, job_id: int, *, role: str | None = None) -> StreamFlow[RolePage]:
        """Every sample stored now, a page (of one role) at a time."""
        first = yield from InstrumentOperations.data.flow(self, job_id, role=role)
        for page in first.roles:
            while True:
                yield Emit(page)
                if len(page.samples) < DATA_PAGE:
                    break
                more = yield from InstrumentOperations.data.flow(
                    self, job_id, role=page.role, offset=page.next_offset
                )
                page = more.roles[0]

    @stream_operation
    def follow_data(self, job_id: int, *, role: str | None = None) -> StreamFlow[RolePage]:
        """Samples as they are stored, backlog first, until the job ends."""
        params = {"role": role, "follow": True}
        request = Request("GET", f"/jobs/{job_id}/data", params, read_timeout=None)
        events = yield from open_stream(request)
        while (event := (yield from next_event(events))) is not None:
            if event.event == "data":
                batch = json.loads(event.data)
                batch["next_offset"] = batch["offset"] + len(batch["samples"])
                yield Emit(RolePage.model_validate(batch))
            elif event.event == "end":
                return
        raise StreamEnded(f"the data stream ended before job {job_id} did: follow it again")

    @stream_operation
    def download(
        self, job_id: int, format: FileFormat = "netcdf", *, role: str | None = None
    ) -> StreamFlow[bytes]:
        """The data file (CSV, or NetCDF once the job ended), in chunks as they arrive."""
        params = {"format": format, "role": role}
        yield from _chunks(Request("GET", f"/jobs/{job_id}/data", params, read_timeout=None))

    @stream_operation
    def download_crate(
        self, job_id: int, *, chain: bool = True, license: str | None = None
    ) -> StreamFlow[bytes]:
        """An ended job as an RO-Crate zip (data, method, sample, devices, events), in
        chunks; ``chain``: with the jobs it depends on and those depending on it.
        ``license``: the data's, an SPDX id (``CC-BY-4.0``) or a URL."""
        params = {"chain": chain, "license": license}
        yield from _chunks(Request("GET", f"/jobs/{job_id}/crate", params, read_timeout=None))

    @operation
    def datasets(self, job_id: int) -> Flow[dict[str, xr.Dataset]]:
        """An ended job's data as one ``xarray.Dataset`` per role (from its NetCDF):
        ``uts`` coordinate, a variable per value with its ``units``, metadata as attrs."""
        chunks = yield from collect(InstrumentOperations.download.flow(self, job_id, "netcdf"))
        found: dict[str, xr.Dataset] = yield Work(
            lambda: open_netcdf(b"".join(chunks), f"job-{job_id}.nc")
        )
        return found

    @operation
    def dataset(self, job_id: int, role: str | None = None) -> Flow[xr.Dataset]:
        """One role's ``xarray.Dataset`` of an ended job (``role`` may be left out if
        the job has one)."""
        found = yield from InstrumentOperations.datasets.flow(self, job_id)
        if role is None and len(found) == 1:
            return next(iter(found.values()))
        if role in found:
            return found[role]
        raise ValueError(f"job {job_id} has roles {', '.join(found) or 'none'}: pick one as role=")


def _chunks(request: Request) -> StreamFlow[bytes]:
    stream = yield from open_stream(request, lines=False)
    while (chunk := (yield Read(stream))) is not None:
        yield Emit(chunk)
