"""``InstrumentBackend``: instrument jobs reach the engine through the Backend contract.

- ``hold``: a job waits (``queued``, with a reason) until a pipeline with its
  roles is ready, holds its sample and shares no component with a running
  job; the pipeline is then reserved for it until ``submit``.
- ``submit``: claims the pipeline (in the database), starts the method in
  this backend's task group, returns the job's key as its ref.
- reports RUNNING when the first task starts, then COMPLETED, FAILED (the
  driver's message) or CANCELLED, after the data is on disk, the components
  were reset and the pipeline let go (so a dependent job sees all the data).
- ``adopt`` after a restart: a method cannot resume mid-way (its driver state
  died with the process), so the job fails saying what data was kept.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import anyio
from anyio.abc import TaskGroup, TaskStatus

from gantry.backends.base import (
    Accounting,
    Backend,
    BackendContext,
    BackendError,
    BackendStatus,
    InvalidPayload,
    JobSubmission,
    StatusReport,
    StatusReporter,
)
from gantry.config_store import ConfigStore
from gantry.drivers.interface_2_0 import ModelInterface
from gantry.drivers.registry import DriverEntry, DriverRegistry, DriverUnavailable, driver_software
from gantry.instruments.data import DataStore, job_data_dir, write_meta
from gantry.instruments.devices import Devices
from gantry.instruments.export import last_uts
from gantry.instruments.host import Component, DriverHost
from gantry.instruments.pipelines import ActiveAmong, PipelineStore, Transact
from gantry.instruments.runner import MethodRun, targets_for
from gantry.instruments.schemas import InstrumentPayload
from gantry.instruments.validation import validate_method

log = logging.getLogger(__name__)

NAME = "instrument"
#: Reports of ended jobs kept for ``status``.
KEEP_REPORTS = 10_000
#: Bound of resetting the components after a job.
RESET_TIMEOUT = 10.0


@dataclass(slots=True)
class _Running:
    job: JobSubmission
    pipeline: str
    run: MethodRun


class InstrumentBackend(Backend):
    name: ClassVar[str] = NAME
    option_defaults: ClassVar[dict[str, Any]] = {}
    accepts_payloads: ClassVar[bool] = True

    def __init__(
        self,
        context: BackendContext,
        *,
        host: DriverHost,
        pipelines: PipelineStore,
        store: DataStore,
    ) -> None:
        super().__init__(context)
        self.host = host
        self.pipelines = pipelines
        self.store = store
        self._tg: TaskGroup | None = None
        self._running: dict[str, _Running] = {}
        self._reports: OrderedDict[str, StatusReport] = OrderedDict()

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        async with anyio.create_task_group() as tg:
            self._tg = tg
            await tg.start(self.store.run)
            await tg.start(self.host.run)
            self.pipelines.on_change = self.context.wake
            await self.pipelines.load()
            task_status.started()
            await anyio.sleep_forever()

    async def validate_payload(self, payload: Any) -> dict[str, Any]:
        """A sample and a method every task of which some ready-able pipeline can run."""
        try:
            parsed = InstrumentPayload.model_validate(payload)
        except ValueError as exc:  # pydantic's ValidationError: a mapping from elsewhere
            raise InvalidPayload((), f"not an instrument payload: {exc}") from None
        await validate_method(parsed, self.host, self.pipelines.defs)
        return parsed.model_dump(mode="json")

    def data(self, job_id: int, attempt: int) -> Path:
        return job_data_dir(self.context.data_dir, job_id, attempt)

    # -- scheduling ------------------------------------------------------------

    def hold(self, job: JobSubmission) -> str | None:
        try:
            payload = InstrumentPayload.model_validate(job.payload)
        except ValueError:
            return None  # submit refuses it with the reason
        roles = {t.component_role for t in payload.method}
        sample = payload.sample.name
        reserved = self.pipelines.reserved.get(job.job_id)
        if reserved is not None:
            return None
        notes: list[str] = []
        for name in sorted(self.pipelines.defs):
            pipeline, state = self.pipelines.get(name)
            if not roles <= set(pipeline.roles):
                continue
            if state.job_id == job.job_id:  # claimed before a restart
                self.pipelines.reserve(job.job_id, name)
                return None
            why = self._unusable(name, sample)
            if why is None:
                self.pipelines.reserve(job.job_id, name)
                return None
            notes.append(f"{name}: {why}")
        wanted = ", ".join(sorted(roles))
        if not notes:
            return f"waiting: no pipeline has the roles {wanted}"
        shown = "; ".join(notes[:3]) + ("; ..." if len(notes) > 3 else "")
        return f"waiting for a ready pipeline with roles {wanted} holding sample {sample} ({shown})"

    def _unusable(self, name: str, sample: str) -> str | None:
        pipeline, state = self.pipelines.get(name)
        holder = self.pipelines.holder(name)
        if holder is not None:
            return f"running job {holder}"
        if state.sample != sample:
            return f"holds sample {state.sample}" if state.sample else "holds no sample"
        if not state.ready:
            return f"not ready (gantry pipeline ready {name})"
        busy = self.pipelines.busy_components(besides=name)
        for ref in pipeline.components:
            comp = self.host.component(ref.device, ref.channel)
            if comp.error is not None:
                return f"component {comp.label} is unavailable"
            if comp.key in busy:
                return f"component {comp.label} is used by job {busy[comp.key]}"
        return None

    async def submit(self, job: JobSubmission, dependencies: Sequence[str]) -> str:
        try:
            payload = InstrumentPayload.model_validate(job.payload)
        except ValueError as exc:
            raise BackendError(f"the job's payload is not an instrument payload: {exc}") from exc
        if self._tg is None:
            raise BackendError("the instrument backend is not running")
        name = self.pipelines.reserved.get(job.job_id, (None, 0.0))[0]
        if name is None:
            raise BackendError("no pipeline was reserved for the job; submit it again")
        await self.pipelines.claim(name, job.job_id)
        ref = job.key
        pipeline = self.pipelines.defs[name]
        roles = {t.component_role for t in payload.method}
        comps = {
            r.role: self.host.component(r.device, r.channel)
            for r in pipeline.components
            if r.role in roles
        }
        directory = self.data(job.job_id, job.attempt)
        constants = {role: await _constants(c) for role, c in comps.items()}
        # Which driver code ran, for the job's provenance (the RO-Crate export).
        software = await anyio.to_thread.run_sync(_software, self.host.registry, comps)
        meta = _metadata(job, payload, name, comps, constants, software)
        await anyio.to_thread.run_sync(write_meta, directory, meta)

        def started(at: float) -> None:
            self._report(ref, StatusReport(BackendStatus.RUNNING, started_at=at))

        run = MethodRun(
            label=f"{job.job_id} ({job.name})",
            tasks=payload.method,
            targets=targets_for(comps, directory),
            host=self.host,
            store=self.store,
            on_started=started,
        )
        self._running[ref] = _Running(job, name, run)
        self._tg.start_soon(self._run_job, ref, directory)
        return ref

    async def _run_job(self, ref: str, directory: Path) -> None:
        entry = self._running[ref]
        status, reason = BackendStatus.FAILED, "the server stopped while the job ran"
        try:
            status, reason = await entry.run.run()
        except Exception as exc:  # a bug: fail this job, keep the backend
            log.exception("instrument job %s crashed", ref)
            status, reason = BackendStatus.FAILED, f"gantry failed: {type(exc).__name__}: {exc}"
        finally:
            with anyio.CancelScope(shield=True):
                paths = [t.path for t in entry.run.targets.values()]
                await self.store.close(paths)
                await self._reset(list(t.component for t in entry.run.targets.values()))
            del self._running[ref]
        # Reached only if not shutting down: on a restart ``adopt`` says what happened.
        try:
            await self.pipelines.release(entry.pipeline, entry.job.job_id)
        except Exception:
            log.exception("could not let go of pipeline %s", entry.pipeline)
        cost = Accounting(driver_time=entry.run.driver_seconds, samples=entry.run.samples)
        report = StatusReport(status, reason=reason, ended_at=time.time(), accounting=cost)
        self._report(ref, report)

    async def _reset(self, components: list[Component]) -> None:
        async def reset(comp: Component) -> None:
            try:
                reply = await comp.call("cmp_reset", seconds=RESET_TIMEOUT)
            except Exception as exc:
                log.warning("reset of component %s failed: %s", comp.label, exc)
                return
            if not reply.success:
                log.warning("reset of component %s failed: %s", comp.label, reply.msg)

        async with anyio.create_task_group() as tg:
            for comp in components:
                tg.start_soon(reset, comp)

    def _report(self, ref: str, report: StatusReport) -> None:
        self._reports[ref] = report
        while len(self._reports) > KEEP_REPORTS:
            self._reports.popitem(last=False)
        self.context.report(ref, report)

    async def cancel(self, ref: str) -> None:
        entry = self._running.get(ref)
        if entry is not None:
            entry.run.cancel()

    async def status(self, refs: Sequence[str]) -> dict[str, StatusReport]:
        gone = StatusReport(BackendStatus.FAILED, reason="the server stopped while the job ran")
        return {ref: self._reports.get(ref, gone) for ref in refs}

    async def adopt(self, job: JobSubmission, ref: str) -> None:
        """A job of a previous server process: its method cannot resume."""
        if ref in self._running:
            return
        directory = self.data(job.job_id, job.attempt)
        latest = await anyio.to_thread.run_sync(last_uts, directory)
        kept = (
            f"data up to {datetime.fromtimestamp(latest, UTC).isoformat(timespec='seconds')} kept"
            if latest is not None
            else "no data was stored"
        )
        name = self.pipelines.pipeline_of_job(job.job_id)
        if name is not None:
            await self.pipelines.release(name, job.job_id)
        reason = f"the server stopped while the job ran; {kept}"
        self._report(ref, StatusReport(BackendStatus.FAILED, reason=reason, ended_at=time.time()))

    async def health(self) -> tuple[bool, str]:
        broken = [f"{n}: {e}" for n, e in sorted(self.host.errors.items())]
        down = [c.label for c in self.host.components.values() if c.error is not None]
        parts = [
            f"{len(self.host.drivers)} drivers, {len(self.host.components)} components, "
            f"{len(self.pipelines.defs)} pipelines, {len(self._running)} jobs running"
        ]
        if broken:
            parts.append("broken drivers: " + "; ".join(broken))
        if down:
            parts.append("unavailable components: " + ", ".join(down))
        return not broken and not down, "; ".join(parts)


def _metadata(
    job: JobSubmission,
    payload: InstrumentPayload,
    pipeline: str,
    comps: dict[str, Component],
    constants: dict[str, dict[str, Any]],
    software: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    return {
        "job_id": job.job_id,
        "job_name": job.name,
        "attempt": job.attempt,
        "pipeline": pipeline,
        "sample": payload.sample.model_dump(mode="json"),
        "method": [t.model_dump(mode="json") for t in payload.method],
        "components": {
            role: {
                "device": c.device.name,
                "driver": c.device.driver,
                "address": c.address,
                "channel": c.channel,
                "constants": constants[role],
                "software": software[role],
            }
            for role, c in comps.items()
        },
    }


def _software(registry: DriverRegistry, comps: dict[str, Component]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for role, comp in comps.items():
        try:
            found[role] = dict(driver_software(registry.get(comp.device.driver)))
        except DriverUnavailable:
            found[role] = {}
    return found


async def _constants(comp: Component) -> dict[str, Any]:
    try:
        reply = await comp.call("cmp_constants")
    except Exception:
        return {}
    return dict(reply.data) if reply.success and isinstance(reply.data, dict) else {}


def build_instruments(
    *,
    data_dir: Path,
    devices: Devices,
    registry: DriverRegistry,
    config: ConfigStore,
    transact: Transact,
    active_among: ActiveAmong,
    report: StatusReporter,
    wake: Callable[[], None],
) -> InstrumentBackend:
    """The instrument backend of a server, for the devices of its devices file."""
    context = BackendContext(
        name=NAME,
        data_dir=data_dir,
        config=config.section(f"backend.{NAME}"),
        report=report,
        wake=wake,
    )
    host = DriverHost(
        devices, registry, lambda name: config.section(f"driver.{name}"), log_dir=data_dir / "logs"
    )
    return InstrumentBackend(
        context,
        host=host,
        pipelines=PipelineStore(devices, transact, active_among),
        store=DataStore(),
    )


def driver_registry(drivers: Mapping[str, type[ModelInterface]] | None) -> DriverRegistry:
    """Entry-point discovery, or exactly ``drivers`` (tests, embedding)."""
    if drivers is None:
        return DriverRegistry.discover()
    return DriverRegistry(
        DriverEntry(name, f"{cls.__module__}:{cls.__qualname__}", cls=cls)
        for name, cls in drivers.items()
    )
