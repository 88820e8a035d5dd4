"""An engine on the in-memory store with a backend the test drives by hand.

``ScriptedBackend`` answers ``submit`` with ``ref-<key>`` and reports nothing
by itself: the test says when a job runs, ends or fails (``report``), and
can make any plug-in call block or raise.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
from anyio.abc import TaskStatus

from gantry.backends.base import (
    Backend,
    BackendContext,
    BackendStatus,
    JobSubmission,
    LogStream,
    StatusReport,
)
from gantry.jobs.engine import Engine
from gantry.jobs.events import EventHub
from gantry.jobs.spec import NewJob
from gantry.jobs.store.memory import MemoryStore


class ScriptedBackend(Backend):
    name = "scripted"

    def __init__(self, context: BackendContext) -> None:
        super().__init__(context)
        self.submitted: list[JobSubmission] = []
        self.dependencies: dict[str, list[str]] = {}
        self.cancelled: list[str] = []
        self.adopted: list[tuple[str, str]] = []
        self.holds: list[JobSubmission] = []
        #: submit waits for this event, if set (a submit in flight)
        self.submit_gate: anyio.Event | None = None
        #: reports sent from inside submit, before it returns
        self.report_during_submit: BackendStatus | None = None
        self.hold_reason: str | None = None
        self.fail_in: dict[str, Exception] = {}
        self.known: dict[str, str] = {}
        self.statuses: dict[str, StatusReport] = {}
        self.run_crash: Exception | None = None

    def _maybe_fail(self, method: str) -> None:
        if method in self.fail_in:
            raise self.fail_in[method]

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        if self.run_crash is not None:
            await anyio.sleep(0.01)
            raise self.run_crash
        await anyio.sleep_forever()

    def hold(self, job: JobSubmission) -> str | None:
        self.holds.append(job)
        self._maybe_fail("hold")
        return self.hold_reason

    def logs(self, job_id: int, attempt: int, stream: LogStream) -> Path:
        self._maybe_fail("logs")
        return super().logs(job_id, attempt, stream)

    async def submit(self, job: JobSubmission, dependencies: Sequence[str]) -> str:
        self._maybe_fail("submit")
        ref = f"ref-{job.key}"
        if self.report_during_submit is not None:
            self.context.report(ref, StatusReport(self.report_during_submit, exit_code=0))
        if self.submit_gate is not None:
            await self.submit_gate.wait()
        self.submitted.append(job)
        self.dependencies[ref] = list(dependencies)
        return ref

    async def cancel(self, ref: str) -> None:
        self.cancelled.append(ref)

    async def status(self, refs: Sequence[str]) -> dict[str, StatusReport]:
        self._maybe_fail("status")
        return {r: self.statuses[r] for r in refs if r in self.statuses}

    async def adopt(self, job: JobSubmission, ref: str) -> None:
        self.adopted.append((job.key, ref))

    async def lookup(self, keys: Sequence[str]) -> dict[str, str]:
        self._maybe_fail("lookup")
        return {k: self.known[k] for k in keys if k in self.known}

    def report(self, ref: str, status: BackendStatus, **values: Any) -> None:
        self.context.report(ref, StatusReport(status, **values))


class ChainingBackend(ScriptedBackend):
    name = "chaining"
    supports_dependencies = True


def job(name: str, backend: str = "scripted", **values: Any) -> NewJob:
    return NewJob(name=name, backend=backend, spec=f"echo {name}", **values)


class Harness:
    def __init__(self, engine: Engine, store: MemoryStore, backends: dict[str, Any]) -> None:
        self.engine = engine
        self.store = store
        self.backends = backends

    @property
    def backend(self) -> ScriptedBackend:
        found: ScriptedBackend = self.backends["scripted"]
        return found

    async def submit(self, *jobs: NewJob) -> list[int]:
        return (await self.engine.submit(jobs)).ids

    async def settled(self) -> None:
        """Let the engine's tasks run, then write what they changed."""
        for _ in range(20):
            await anyio.lowlevel.checkpoint()
        await self.engine.drain()

    def state(self, job_id: int) -> str:
        return self.store.state(job_id)

    def reason(self, job_id: int) -> str | None:
        reason: str | None = self.store.rows[job_id]["reason"]
        return reason

    def states_seen(self, job_id: int) -> list[str]:
        return [e["to_state"] for e in self.store.events_of(job_id)]


async def wait_for(check: Callable[[], bool], seconds: float = 3.0) -> None:
    with anyio.fail_after(seconds):
        while not check():
            await anyio.sleep(0.002)


@asynccontextmanager
async def running(
    tmp_path: Path,
    store: MemoryStore | None = None,
    kinds: Sequence[type[ScriptedBackend]] = (ScriptedBackend,),
    setup: Callable[[ScriptedBackend], None] | None = None,
) -> AsyncIterator[Harness]:
    """An engine running on ``store`` (a new one if None) with one backend of each kind."""
    store = store if store is not None else MemoryStore()
    backends: dict[str, Backend] = {}
    engine = Engine(store=store, backends=backends, hub=EventHub(), data_dir=tmp_path)
    for kind in kinds:
        context = BackendContext(
            name=kind.name,
            data_dir=tmp_path,
            config={},
            report=engine.reporter(kind.name),
            wake=engine.waker(kind.name),
        )
        backends[kind.name] = backend = kind(context)
        if setup is not None:
            setup(backend)
    async with anyio.create_task_group() as tg:
        await tg.start(engine.run)
        try:
            yield Harness(engine, store, backends)
            await engine.drain()
        finally:
            tg.cancel_scope.cancel()


def now() -> float:
    return time.monotonic()
