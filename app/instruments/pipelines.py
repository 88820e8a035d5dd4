"""Pipeline state: which sample each pipeline holds, whether it is ready, which job runs.

The state lives in the ``pipeline`` table (so it survives restarts) and in
memory (so ``InstrumentBackend.hold`` can decide without I/O). Every change
is one transaction run by the :class:`Transact` handed in (the server's
writer) and updates the memory only once committed. Like tomato: ``load`` a sample, mark the
pipeline ``ready``; a job claims a ready pipeline holding its sample; when
the job ends the pipeline keeps the sample but is no longer ready, so a
person checks it before the next job (``ready`` again, or ``eject``).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol, TypeVar

import anyio
from sqlalchemy import Connection, Table, insert, select, update

from gantry.instruments.devices import ComponentRef, Devices, PipelineConfig
from gantry.models import Pipeline, utcnow

pipeline_t: Table = Pipeline.__table__  # type: ignore[attr-defined]
T = TypeVar("T")

#: A reservation (``hold`` said yes, ``submit`` has not claimed yet) expires after this.
RESERVATION_TTL = 60.0


class Transact(Protocol):
    """Runs ``work`` in one write transaction; returns its result once committed."""

    def __call__(self, work: Callable[[Connection], T], /) -> Awaitable[T]: ...


#: The ids among the given ones of jobs that have not ended, read within the
#: same transaction (the job layer knows its table; the pipelines do not).
ActiveAmong = Callable[[Connection, Collection[int]], set[int]]


class UnknownPipeline(LookupError):
    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(
            f"no pipeline named {name!r}; pipelines: {', '.join(known) or 'none (no devices file)'}"
        )


class PipelineBusy(RuntimeError):
    """The pipeline's state forbids the change; the message says what to do first."""


@dataclass(frozen=True, slots=True)
class PipelineState:
    name: str
    sample: str | None = None
    ready: bool = False
    job_id: int | None = None
    updated_at: datetime | None = None


class PipelineStore:
    """The pipelines of the devices file and their state; changes are serialised."""

    def __init__(self, devices: Devices, transact: Transact, active_among: ActiveAmong) -> None:
        self.defs: dict[str, PipelineConfig] = dict(devices.pipelines)
        self.states: dict[str, PipelineState] = {n: PipelineState(n) for n in self.defs}
        #: job id -> (pipeline, monotonic time) between ``hold`` and ``submit``
        self.reserved: dict[int, tuple[str, float]] = {}
        #: called after every committed change (the backend wakes the engine)
        self.on_change: Callable[[], None] = lambda: None
        self._transact = transact
        self._active_among = active_among
        self._lock = anyio.Lock()

    # -- reads (memory only) ---------------------------------------------------

    def get(self, name: str) -> tuple[PipelineConfig, PipelineState]:
        if name not in self.defs:
            raise UnknownPipeline(name, sorted(self.defs))
        return self.defs[name], self.states[name]

    def holder(self, name: str) -> int | None:
        """The job that claimed or reserved pipeline ``name``, if any."""
        state = self.states[name]
        if state.job_id is not None:
            return state.job_id
        self._expire()
        return next((j for j, (p, _) in self.reserved.items() if p == name), None)

    def busy_components(self, *, besides: str | None = None) -> dict[tuple[str, str], int]:
        """(device, channel) -> job id of every component in a claimed or reserved pipeline."""
        busy: dict[tuple[str, str], int] = {}
        for name, pipeline in self.defs.items():
            job_id = self.holder(name)
            if job_id is None or name == besides:
                continue
            for ref in pipeline.components:
                busy[(ref.device, ref.channel)] = job_id
        return busy

    def job_of(self, ref: ComponentRef) -> int | None:
        return self.busy_components().get((ref.device, ref.channel))

    def pipeline_of_job(self, job_id: int) -> str | None:
        return next((n for n, s in self.states.items() if s.job_id == job_id), None)

    def reserve(self, job_id: int, name: str) -> None:
        self.reserved[job_id] = (name, time.monotonic())

    def _expire(self) -> None:
        # A reserved job whose submit never came (its dispatch failed) lets go.
        now = time.monotonic()
        for job_id in [j for j, (_, t) in self.reserved.items() if now - t > RESERVATION_TTL]:
            del self.reserved[job_id]

    # -- start-up ----------------------------------------------------------------

    async def load(self) -> None:
        """Create rows for new pipelines, read all, free claims of jobs that ended."""
        names = sorted(self.defs)
        active_among = self._active_among
        rows = await self._transact(lambda conn: _sync_rows(conn, names, active_among))
        for row in rows:
            if row["name"] in self.defs:
                self.states[row["name"]] = PipelineState(**row)

    # -- changes ---------------------------------------------------------------------

    async def load_sample(self, name: str, sample: str) -> PipelineState:
        async with self._lock:
            _, state = self.get(name)
            self._idle(state, f"load sample {sample!r}")
            if state.sample is not None:
                raise PipelineBusy(
                    f"pipeline {name!r} holds sample {state.sample!r}: eject it first "
                    f"(gantry pipeline eject {name})"
                )
            return await self._write(name, sample=sample)

    async def eject(self, name: str) -> PipelineState:
        async with self._lock:
            _, state = self.get(name)
            self._idle(state, "eject its sample")
            return await self._write(name, sample=None, ready=False)

    async def set_ready(self, name: str, ready: bool) -> PipelineState:
        async with self._lock:
            _, state = self.get(name)
            self._idle(state, "change whether it is ready")
            if ready and state.sample is None:
                raise PipelineBusy(
                    f"pipeline {name!r} holds no sample: load one first "
                    f"(gantry pipeline load {name} SAMPLE)"
                )
            return await self._write(name, ready=ready)

    async def claim(self, name: str, job_id: int) -> None:
        async with self._lock:
            _, state = self.get(name)
            if state.job_id not in (None, job_id):
                raise PipelineBusy(f"pipeline {name!r} runs job {state.job_id}")
            # The reservation goes only once the claim is committed: in between,
            # ``hold`` must not see the pipeline free.
            try:
                await self._write(name, job_id=job_id)
            finally:
                self.reserved.pop(job_id, None)

    async def release(self, name: str, job_id: int) -> None:
        """The job ended: the pipeline keeps its sample and waits to be made ready."""
        async with self._lock:
            self.reserved.pop(job_id, None)
            if self.states[name].job_id == job_id:
                await self._write(name, job_id=None, ready=False)

    def _idle(self, state: PipelineState, what: str) -> None:
        holder = self.holder(state.name)
        if holder is not None:
            raise PipelineBusy(
                f"pipeline {state.name!r} is running job {holder}: wait until it ends "
                f"(or cancel it) to {what}"
            )

    async def _write(self, name: str, **values: Any) -> PipelineState:
        values["updated_at"] = utcnow()

        def write(conn: Connection) -> None:
            conn.execute(update(pipeline_t).where(pipeline_t.c.name == name).values(**values))

        await self._transact(write)
        self.states[name] = new = replace(self.states[name], **values)
        self.on_change()
        return new


def _sync_rows(
    conn: Connection, names: list[str], active_among: ActiveAmong
) -> list[dict[str, Any]]:
    existing = {r.name for r in conn.execute(select(pipeline_t.c.name))}
    missing = [
        {"name": n, "ready": False, "updated_at": utcnow()} for n in names if n not in existing
    ]
    if missing:
        conn.execute(insert(pipeline_t), missing)
    claimed = conn.execute(
        select(pipeline_t.c.name, pipeline_t.c.job_id).where(pipeline_t.c.job_id.is_not(None))
    ).all()
    if claimed:
        active = active_among(conn, [c.job_id for c in claimed])
        stale = [c.name for c in claimed if c.job_id not in active]
        if stale:
            conn.execute(
                update(pipeline_t)
                .where(pipeline_t.c.name.in_(stale))
                .values(job_id=None, ready=False, updated_at=utcnow())
            )
    query = select(
        pipeline_t.c.name,
        pipeline_t.c.sample,
        pipeline_t.c.ready,
        pipeline_t.c.job_id,
        pipeline_t.c.updated_at,
    )
    return [dict(r) for r in conn.execute(query).mappings()]
