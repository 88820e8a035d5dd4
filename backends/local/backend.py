"""The ``local`` backend: command jobs as supervised processes on this machine.

A job waits in a priority queue until its cores and memory fit, then the
machine's supervisor (:mod:`gantry.backends.local.daemon`) starts it in a
session of its own (or a per-job sh supervisor, if there is none). The ref
is the job key; what a later server needs is in the job's files under
``<data_dir>/runs/`` (:mod:`gantry.backends.local.rundir`): jobs outlive the
server, :meth:`LocalBackend.adopt` picks them up again.
"""

from __future__ import annotations

import glob
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

import anyio
from anyio.abc import TaskGroup, TaskStatus

from gantry.backends.base import (
    Backend,
    BackendContext,
    BackendError,
    BackendStatus,
    JobSubmission,
    StatusReport,
)
from gantry.backends.local.arrays import CANCEL, LocalArrays, split_task_key
from gantry.backends.local.limits import OPTION_DEFAULTS, Limits, Request
from gantry.backends.local.logfiles import open_logs
from gantry.backends.local.machine import Machine
from gantry.backends.local.memory import watch_memory
from gantry.backends.local.ondisk import find_state, status_on_disk
from gantry.backends.local.pending import PendingQueue, Queued
from gantry.backends.local.process import (
    PidfdUnsupported,
    find_shells,
    open_pidfd,
    spawn_supervisor,
    supervisor_started_at,
)
from gantry.backends.local.run import Run
from gantry.backends.local.rundir import RunFiles, RunState, final_report, is_key

Where = tuple[str, Mapping[str, str]]  # a job's working directory and environment


class LocalBackend(Backend):
    """Runs each job as ``bash script`` on this machine, within ``max_cores``/``max_memory``.

    Config (``backend.local.*``): ``max_cores`` (default: the CPUs this server
    may use), ``max_memory`` (default: total RAM), ``kill_grace`` (seconds
    between TERM and KILL; default 5).
    """

    name: ClassVar[str] = "local"
    option_defaults: ClassVar[dict[str, Any]] = dict(OPTION_DEFAULTS)
    supports_arrays: ClassVar[bool] = True

    def __init__(self, context: BackendContext) -> None:
        super().__init__(context)
        self._runs_dir = Path(os.path.abspath(context.data_dir)) / "runs"
        self._limits: Limits | None = None
        self._pending = PendingQueue()
        self._running: dict[str, Run] = {}
        self._used_cores = 0
        self._used_memory = 0
        self._unwatched: list[Run] = []  # adopted before run() started
        self._tg: TaskGroup | None = None
        self._stopped: anyio.Event | None = None
        self._devnull: int | None = None
        self._shell = self._bash = ""
        self._use_pidfd = True
        self._closed = False
        self._machine = Machine(
            str(self._runs_dir), self._running, self._open_pidfd, lambda: self._tg
        )
        self._arrays = LocalArrays(self._runs_dir, self._pending, self._report, self._kick)

    @property
    def limits(self) -> Limits:
        """The config, read on first use (it may read /proc/meminfo)."""
        if self._limits is None:
            self._limits = Limits.from_config(self.context.config)
        return self._limits

    def validate_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        return self.limits.normalise(options)

    # -- life cycle -------------------------------------------------------

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        if self._closed:
            raise BackendError("the local backend is closed")
        self.limits  # noqa: B018 - a bad config fails the start, not the first job
        os.makedirs(self._runs_dir, exist_ok=True)
        self._shell, self._bash = find_shells()
        self._stopped = anyio.Event()
        self._devnull = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        try:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                await self._machine.connect()
                for run in self._unwatched:
                    tg.start_soon(self._watch, run)
                self._unwatched.clear()
                tg.start_soon(watch_memory, self._running.values)
                task_status.started()
                self._launch_ready()  # what was adopted before
                await anyio.sleep_forever()
        finally:
            self._tg = None
            self._machine.close()
            os.close(self._devnull)
            self._devnull = None
            self._stopped.set()

    async def close(self) -> None:
        """Stop starting jobs and stop watching; running jobs run on for a later server."""
        self._closed = True
        if self._tg is not None and self._stopped is not None:
            self._tg.cancel_scope.cancel()
            await self._stopped.wait()
        for run in self._unwatched:
            run.close()
        self._unwatched.clear()

    async def health(self) -> tuple[bool, str]:
        try:
            limits = self.limits
        except BackendError as exc:
            return False, str(exc)
        if self._closed:
            return False, "closed"
        return True, (
            f"{len(self._running)} running, {len(self._pending)} waiting; "
            f"{self._used_cores}/{limits.max_cores} cores in use"
        )

    # -- the contract -----------------------------------------------------

    async def submit(self, job: JobSubmission, dependencies: Sequence[str]) -> str:
        if self._closed:
            raise BackendError("the local backend is closed and takes no new jobs")
        key = job.key
        if key not in self._pending and key not in self._running and key not in self._arrays:
            try:
                self._enqueue(job)
            except ValueError as exc:
                raise BackendError(str(exc)) from None
        return key

    async def cancel(self, ref: str) -> None:
        if self._arrays.cancel(ref):  # every task: those not started end at once
            return
        if self._pending.remove(ref) is not None:
            cancelled = StatusReport(BackendStatus.CANCELLED, reason="cancelled before it started")
            self._report(ref, cancelled)
            return
        run = self._running.get(ref)
        if run is not None:
            run.request_kill(CANCEL)

    async def cancel_task(self, ref: str, index: int) -> None:
        self._arrays.cancel_task(ref, index)

    async def status(self, refs: Sequence[str]) -> dict[str, StatusReport]:
        answer: dict[str, StatusReport] = {}
        on_disk: list[str] = []
        for ref in refs:
            run = self._running.get(ref)
            if run is not None:
                answer[ref] = StatusReport(BackendStatus.RUNNING, started_at=run.started_at)
            elif ref in self._arrays or ref in self._pending:  # its tasks report on their own
                answer[ref] = StatusReport(BackendStatus.SUBMITTED)
            else:
                on_disk.append(ref)
        if on_disk:
            answer.update(await anyio.to_thread.run_sync(status_on_disk, self._runs_dir, on_disk))
        return answer

    async def lookup(self, keys: Sequence[str]) -> dict[str, str]:
        mine = (self._running, self._pending, self._arrays)
        known = {key: key for key in keys if any(key in here for here in mine)}
        rest = [key for key in keys if key not in known and is_key(key)]
        if rest:
            # A recorded pid means a supervisor started; without one, submitting again is
            # safe. An array was handed over once any of its tasks was.
            started = await anyio.to_thread.run_sync(
                lambda: [
                    key
                    for key in rest
                    if find_state(RunFiles(self._runs_dir, key))
                    or glob.glob(glob.escape(f"{self._runs_dir}/{key}_") + "*.sh")
                ]
            )
            known.update((key, key) for key in started)
        return known

    async def adopt(self, job: JobSubmission, ref: str) -> None:
        if ref in self._running or ref in self._pending or ref in self._arrays:
            return
        if ref != job.key:
            raise BackendError(f"ref {ref!r} is not a local job key (expected {job.key!r})")
        try:
            request = Request.from_options(job.options)
        except ValueError as exc:
            self._fail(ref, str(exc))
            return
        if job.array is not None:
            if self._arrays.adopt(job, request, self._attach):
                self._queue_again(job, request)
            return
        if self._attach(ref, request, RunFiles(self._runs_dir, ref)):
            return
        try:  # it never started: it waits its turn again
            self._enqueue(job)
        except ValueError as exc:
            self._fail(ref, str(exc))

    # -- queue and launch -------------------------------------------------

    def _queue_again(self, job: JobSubmission, request: Request) -> None:
        """An adopted array's tasks that never started wait their turn."""
        try:
            self.limits.check(request)
        except ValueError as exc:
            self._fail(job.key, str(exc))
            return
        self._pending.push(Queued(job, request))
        self._kick()

    def _enqueue(self, job: JobSubmission) -> None:
        request = Request.from_options(job.options)
        self.limits.check(request)
        if job.array is not None:
            self._arrays.add(job, request)
        self._pending.push(Queued(job, request))
        self._report(job.key, StatusReport(BackendStatus.SUBMITTED))
        self._kick()

    def _kick(self) -> None:
        """Start what fits, whenever a job arrives or ends: in that very turn of the
        loop, so a submitted job's start joins its submit's commit (before ``run``: then)."""
        if self._tg is not None:
            self._launch_ready()

    def _launch_ready(self) -> None:
        # Strictly in queue order: a big job at the head is not overtaken forever.
        limits = self.limits
        while not self._closed:
            item = self._pending.peek()
            if item is None:
                return
            request = item.request
            if (
                self._used_cores + request.cores > limits.max_cores
                or self._used_memory + request.memory > limits.max_memory
            ):
                return
            if item.job.key not in self._arrays:
                self._pending.pop()
                self._launch(item.job.key, item.job, request)
            elif (task := self._arrays.next_task(item.job.key)) is not None:
                self._launch(*task, request)

    def _launch(self, key: str, job: JobSubmission, request: Request) -> None:
        files = RunFiles(self._runs_dir, key)
        # An earlier server started this attempt: watch it, never start it twice.
        if files.launched() and self._attach(key, request, files):
            return
        working_dir = os.path.abspath(job.working_dir)
        if not os.path.isdir(working_dir):
            self._fail(key, f"working directory {working_dir} does not exist")
            return
        assert self._devnull is not None
        try:
            stdout, stderr = open_logs(job)
        except OSError as exc:
            self._fail(key, f"cannot write the job's log: {exc}")
            return
        try:
            files.write_script(job.spec)
            started = self._spawn(key, request, files, (working_dir, job.env), (stdout, stderr))
        except OSError as exc:
            self._fail(key, f"could not start the job: {exc}")
            return
        finally:
            os.close(stdout)
            if stderr != stdout:
                os.close(stderr)
        if isinstance(started, int):
            pidfd = self._open_pidfd(started)  # our unreaped child: it cannot be gone yet
            started = Run.create(key, started, pidfd, time.time(), request, files)
        self._watch_run(started)

    def _spawn(
        self, key: str, request: Request, files: RunFiles, where: Where, logs: tuple[int, int]
    ) -> int | Run:
        """The machine's supervisor starts the job (its Run), else an sh supervisor (its pid)."""
        now = time.time()  # before the job can start (and end)
        if (link := self._machine.start(key, files, self._bash, *where, logs)) is not None:
            return Run.supervised(key, link, now, request, files)
        assert self._devnull is not None
        stdio = (self._devnull, *logs)
        return spawn_supervisor(self._shell, self._bash, files.base, *where, stdio)

    # -- watching ---------------------------------------------------------

    def _open_pidfd(self, pid: int) -> int | None:
        if not self._use_pidfd:
            return None
        try:
            return open_pidfd(pid)
        except PidfdUnsupported:
            self._use_pidfd = False
            return None

    def _attach(self, key: str, request: Request, files: RunFiles) -> bool:
        """Watch a supervisor an earlier server started, or report how its job ended.

        False if no supervisor ever ran for this key: it never started.
        """
        state = find_state(files)
        if state is None:
            return False
        if state.exit_code is None:
            run = self._adopt_process(key, state, request, files)
            if run is not None:
                killed = files.read_killed()  # a kill an earlier server began: finish it
                if killed is not None:
                    run.request_kill(killed)
                self._watch_run(run)
                return True
            state = files.read_state()  # it may have ended just now
        self._report(key, final_report(state, files.read_killed()))
        return True

    def _adopt_process(
        self, key: str, state: RunState, request: Request, files: RunFiles
    ) -> Run | None:
        """A Run for the recorded supervisor if it still runs, else None."""
        try:
            pidfd = self._open_pidfd(state.pid)
        except ProcessLookupError:
            return None
        # Checked after the pidfd is open, so the pidfd is known to be this job's.
        started = supervisor_started_at(state.pid, files.base, state.written_at)
        if started is None:
            if pidfd is not None:
                os.close(pidfd)
            return None
        run = Run.create(key, state.pid, pidfd, started, request, files)
        self._machine.adopted(run)  # its supervisor may still say how it ends
        return run

    def _watch_run(self, run: Run) -> None:
        self._running[run.key] = run
        self._arrays.started(run)
        self._used_cores += run.request.cores
        self._used_memory += run.request.memory
        self._report(run.key, StatusReport(BackendStatus.RUNNING, started_at=run.started_at))
        if self._tg is None:
            self._unwatched.append(run)
        else:
            self._tg.start_soon(self._watch, run)

    async def _watch(self, run: Run) -> None:
        try:
            report = await run.watch(self.limits.kill_grace)
        except BaseException:
            run.close()  # the server stops: the job runs on, a later server adopts it
            raise
        del self._running[run.key]
        self._used_cores -= run.request.cores
        self._used_memory -= run.request.memory
        self._report(run.key, report)
        self._arrays.ended(run.key)
        self._kick()

    def _report(self, ref: str, report: StatusReport) -> None:
        task = split_task_key(ref)  # a task's report is about its array's ref
        if task is None:
            self.context.report(ref, report)
        else:
            self.context.report(task[0], replace(report, task=task[1]))

    def _fail(self, ref: str, reason: str) -> None:
        self._report(ref, StatusReport(BackendStatus.FAILED, reason=reason, ended_at=time.time()))
