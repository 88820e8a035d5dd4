"""A complete, minimal gantry backend: runs each job as a local subprocess.

This is the code of docs/write-a-backend.md; tests/integration/
test_docs_examples.py runs a job through a real server with it. Unlike the
built-in ``local`` backend it has no supervisor, so its jobs die with the
server: fine for a tutorial, not for production.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Sequence
from typing import Any, ClassVar

import anyio
from anyio.abc import TaskStatus

from gantry.backends.base import (
    Backend,
    BackendStatus,
    JobSubmission,
    StatusReport,
)
from gantry.backends.options import parse_walltime


class SimpleBackend(Backend):
    name = "simple"
    # Every supported option; None = supported without a default.
    option_defaults: ClassVar[dict[str, Any]] = {"walltime": None, "nice": 0}

    def __init__(self, context: Any) -> None:
        super().__init__(context)
        self._processes: dict[str, asyncio.subprocess.Process] = {}
        self._final: dict[str, StatusReport] = {}
        self._tg: anyio.abc.TaskGroup | None = None

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        # The backend's own task group: one watcher task per job.
        async with anyio.create_task_group() as tg:
            self._tg = tg
            task_status.started()
            await anyio.sleep_forever()

    def validate_options(self, options: Any) -> dict[str, Any]:
        checked = dict(options)
        if checked.get("walltime") is not None:
            parse_walltime(checked["walltime"])  # raises ValueError naming the format
        if not -20 <= int(checked.get("nice", 0)) <= 19:
            raise ValueError("nice must be between -20 and 19")
        return checked

    async def submit(self, job: JobSubmission, dependencies: Sequence[str]) -> str:
        # Return at once: the job runs in a task of our task group.
        assert self._tg is not None, "run() has not started"
        job.stdout_path.parent.mkdir(parents=True, exist_ok=True)
        job.working_dir.mkdir(parents=True, exist_ok=True)
        self._tg.start_soon(self._run_job, job)
        return job.key

    async def _run_job(self, job: JobSubmission) -> None:
        with job.stdout_path.open("ab") as out, job.stderr_path.open("ab") as err:
            process = await asyncio.create_subprocess_exec(
                "nice",
                "-n",
                str(job.options.get("nice", 0)),
                "bash",
                "-c",
                job.spec,
                cwd=job.working_dir,
                env=dict(job.env),
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
        self._processes[job.key] = process
        self.context.report(job.key, StatusReport(BackendStatus.RUNNING, started_at=time.time()))
        limit = job.options.get("walltime")
        with anyio.move_on_after(parse_walltime(limit) if limit else None) as scope:
            code = await process.wait()
        if scope.cancelled_caught:
            os.killpg(process.pid, signal.SIGKILL)
            code = await process.wait()
            report = StatusReport(
                BackendStatus.FAILED,
                exit_code=code,
                reason=f"walltime {limit} exceeded",
                ended_at=time.time(),
            )
        elif code == 0:
            report = StatusReport(BackendStatus.COMPLETED, exit_code=0, ended_at=time.time())
        elif code < 0 and -code == signal.SIGTERM:
            report = StatusReport(BackendStatus.CANCELLED, exit_code=code, ended_at=time.time())
        else:
            report = StatusReport(BackendStatus.FAILED, exit_code=code, ended_at=time.time())
        self._processes.pop(job.key, None)
        self._final[job.key] = report
        self.context.report(job.key, report)

    async def cancel(self, ref: str) -> None:
        process = self._processes.get(ref)
        if process is not None and process.returncode is None:  # idempotent
            os.killpg(process.pid, signal.SIGTERM)

    async def status(self, refs: Sequence[str]) -> dict[str, StatusReport]:
        running = StatusReport(BackendStatus.RUNNING)
        unknown = StatusReport(BackendStatus.UNKNOWN)
        return {
            ref: self._final.get(ref) or (running if ref in self._processes else unknown)
            for ref in refs
        }
