"""In-memory backend for fast tests of the engine and API (no processes).

The script decides the outcome: ``exit N`` anywhere fails with N, ``hang``
runs until cancelled, anything else completes. ``refuse`` makes submit raise.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from typing import Any, ClassVar

import anyio
from anyio.abc import TaskStatus

from gantry.backends.base import Backend, BackendError, BackendStatus, JobSubmission, StatusReport

_EXIT = re.compile(r"\bexit (\d+)")


class FakeBackend(Backend):
    name = "fake"
    option_defaults: ClassVar[dict[str, Any]] = {"cores": 1, "queue": None}

    def __init__(self, context: Any) -> None:
        super().__init__(context)
        self.submitted: list[JobSubmission] = []
        self.dependencies: dict[str, list[str]] = {}
        self.reports: dict[str, StatusReport] = {}
        self.cancelled: list[str] = []
        self._send, self._receive = anyio.create_memory_object_stream[JobSubmission](10_000)

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        async with self._receive:
            async for job in self._receive:
                self._finish(job)

    def validate_options(self, options: Any) -> dict[str, Any]:
        if int(options.get("cores", 1)) < 1:
            raise ValueError("cores must be at least 1")
        return dict(options)

    async def submit(self, job: JobSubmission, dependencies: Sequence[str]) -> str:
        if "refuse" in job.spec:
            raise BackendError("fake refuses this script")
        ref = f"fake-{job.key}"
        self.submitted.append(job)
        self.dependencies[ref] = list(dependencies)
        self._set(ref, StatusReport(BackendStatus.SUBMITTED))
        self._send.send_nowait(job)
        return ref

    def _finish(self, job: JobSubmission) -> None:
        ref = f"fake-{job.key}"
        if "hang" in job.spec:
            self._set(ref, StatusReport(BackendStatus.RUNNING, started_at=time.time()))
            return
        match = _EXIT.search(job.spec)
        code = int(match.group(1)) if match else 0
        status = BackendStatus.COMPLETED if code == 0 else BackendStatus.FAILED
        self._set(ref, StatusReport(BackendStatus.RUNNING, started_at=time.time()))
        self._set(ref, StatusReport(status, exit_code=code, ended_at=time.time()))

    def _set(self, ref: str, report: StatusReport) -> None:
        self.reports[ref] = report
        self.context.report(ref, report)

    async def cancel(self, ref: str) -> None:
        self.cancelled.append(ref)
        current = self.reports.get(ref)
        if current is not None and not current.status.is_final:
            self._set(
                ref, StatusReport(BackendStatus.CANCELLED, exit_code=143, ended_at=time.time())
            )

    async def close(self) -> None:
        self._send.close()

    async def status(self, refs: Sequence[str]) -> dict[str, StatusReport]:
        return {r: self.reports.get(r, StatusReport(BackendStatus.UNKNOWN)) for r in refs}


class ChainingFakeBackend(FakeBackend):
    """Like Slurm: takes dependencies itself (afterok)."""

    name = "chain"
    supports_dependencies = True
