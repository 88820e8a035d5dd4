"""gantry's Grid Engine backend: qsub to submit; per poll one qstat and the accounting
file's new lines (qacct only as a fallback). Config keys: :mod:`gantry.backends.sge.config`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import anyio
import anyio.to_thread
from anyio.abc import TaskStatus

from gantry.backends.base import (
    ArraySpec,
    BackendContext,
    BackendError,
    BackendStatus,
    JobSubmission,
    StatusReport,
)
from gantry.backends.scheduler.backend import SchedulerBackend
from gantry.backends.scheduler.commands import Result
from gantry.backends.scheduler.submitting import SubmitFailed, submit_with_retries
from gantry.backends.sge.accounting import AccountingFile, AccountingUnavailable
from gantry.backends.sge.commands import checked_ref, gone, parse_qsub, sge_commands, unreachable
from gantry.backends.sge.config import SgeSettings
from gantry.backends.sge.parsing import SgeJob, parse_qacct, parse_qstat_xml
from gantry.backends.sge.submission import (
    OPTION_DEFAULTS,
    job_script,
    normalise_options,
    own_shebang,
    qsub_argv,
    qsub_environment,
    task_range,
)
from gantry.backends.sge.tracking import TaskWatch, Timing, Watch, group, take

log = logging.getLogger(__name__)
S = BackendStatus


class SgeBackend(SchedulerBackend):
    """Runs command jobs as Grid Engine jobs in the cell this machine submits to."""

    name: ClassVar[str] = "sge"
    option_defaults: ClassVar[dict[str, Any]] = dict(OPTION_DEFAULTS)

    def __init__(self, context: BackendContext) -> None:
        self.settings = settings = SgeSettings.from_config(context.config)
        super().__init__(context, sge_commands(settings.command_timeout), settings.job_name_prefix)
        #: Where jobs record their exit codes for their dependents (see job_script).
        self.ends_dir = context.log_dir / "sge-ends"
        self.accounting = AccountingFile(self.settings.accounting_file)
        self._tracked: dict[str, Watch] = {}
        self._no_file: str | None = None  # why the accounting file cannot be read here
        self._down: str | None = None  # why qmaster is thought unreachable
        self._wake: anyio.Event | None = None
        self._soon = False  # a submit or cancel: qstat again soon
        self._last_qstat = 0.0
        self._qstat_seconds = 0.0
        self._early: dict[str, list[SgeJob]] = {}  # records read before their job was tracked
        #: reads of the accounting file alone, between poll cycles
        self.reads = 0

    # --- contract ----------------------------------------------------------------------

    def validate_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        return normalise_options(options)

    def validate_array(self, array: ArraySpec, spec: str) -> None:
        own_shebang(spec, task_range(array))

    def hold(self, job: JobSubmission) -> str | None:
        # Jobs stay queued (with this reason) while qmaster is down; run() wakes
        # the dispatcher once it answers again.
        return self._down

    async def submit(self, job: JobSubmission, dependencies: Sequence[str]) -> str:
        given = {k: v for k, v in job.options.items() if v is not None}
        try:
            options = normalise_options({**self.settings.option_defaults, **given})
            deps = [checked_ref(d) for d in dependencies]
            tasks = task_range(job.array) if job.array is not None else None
            argv = qsub_argv(job, options, deps, self.job_name(job.key), tasks)
            env = qsub_environment(job.env)
            script = job_script(job.spec, str(self.ends_dir), deps, tasks, job)
        except ValueError as exc:
            raise BackendError(str(exc)) from None
        for path in (job.stdout_path.parent, job.stderr_path.parent, self.ends_dir):
            await anyio.Path(path).mkdir(parents=True, exist_ok=True)
        ref = await self._qsub(argv, script, env, job.key)
        watch = Watch(last=S.SUBMITTED)
        if job.array is not None and tasks is not None:
            watch.array = TaskWatch(job.array, tasks)
            # For dependents' guard: how many tasks must record exit 0.
            await anyio.Path(self.ends_dir / f"{ref}.count").write_text(f"{job.array.count}\n")
        self._track(ref, watch)
        return ref

    async def cancel(self, ref: str) -> None:
        ref = checked_ref(ref)
        await self._qdel(ref)
        watch = self._tracked.get(ref)
        if watch is None:
            self._track(ref, watch := Watch())  # so its end gets reported
        watch.cancelled = True
        self._hurry()

    async def cancel_task(self, ref: str, index: int) -> None:
        watch = self._tracked.get(checked_ref(ref))
        if watch is None or watch.array is None:
            return  # the array has ended: nothing to stop
        await self._qdel(f"{ref}.{int(index) + watch.array.tasks.offset}")  # SGE's own name
        watch.array.cancelled.setdefault(int(index), None)
        self._hurry()

    async def status(self, refs: Sequence[str]) -> dict[str, StatusReport]:
        checked = [checked_ref(r) for r in refs]
        found = await self._query(checked) if checked else {}
        unknown = StatusReport(S.UNKNOWN, reason="SGE has no record of this job")
        out = {r: found[r].report if r in found else unknown for r in checked}
        # An array's tasks are reported by the poller, one by one.
        arrays = {r for r, w in self._tracked.items() if w.array is not None}
        return out | {r: StatusReport(S.SUBMITTED) for r in checked if r in arrays}

    async def adopt(self, job: JobSubmission, ref: str) -> None:
        ref = checked_ref(ref)
        if ref not in self._tracked:
            watch = Watch(adopted=True)
            if job.array is not None:
                try:
                    watch.array = TaskWatch(job.array, task_range(job.array))
                except ValueError as exc:  # it was submitted, so this does not happen
                    raise BackendError(str(exc)) from None
            self._track(ref, watch)

    async def lookup(self, keys: Sequence[str]) -> dict[str, str]:
        by_name = {self.job_name(k): k for k in keys}
        jobs = await self._qstat()
        if set(by_name) - {j.name for j in jobs.values()}:
            jobs = {**(await self._qacct([])), **jobs}
        found: dict[str, str] = {}
        for job in sorted(jobs.values(), key=lambda j: int(j.job_id)):  # newest wins
            if job.name in by_name:
                found[by_name[job.name]] = job.job_id
        return found

    async def health(self) -> tuple[bool, str]:
        try:
            result = await self.commands.run(["qhost", "-xml"])
        except BackendError as exc:
            return False, str(exc)
        if not result.ok:
            return False, f"qmaster does not answer: {result.message}"
        hosts = result.stdout.count("<host name=") - result.stdout.count("<host name='global'")
        if hosts <= 0:
            return False, "qmaster answers but has no execution hosts"
        return True, f"qmaster answers; {hosts} execution host(s)"

    async def close(self) -> None:
        self._tracked.clear()

    # --- polling -----------------------------------------------------------------------

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """qstat every ``poll_interval`` (sooner after a submit); beside it, the accounting
        file every ``fast_poll_interval`` while a job may end, so that ends are reported
        as soon as SGE writes them, whatever qstat is doing."""
        await self._read_accounting(start=True)
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._read_loop)
            task_status.started()
            await self._qstat_loop()

    async def _qstat_loop(self) -> None:
        while True:
            self._wake = wake = anyio.Event()
            if not self._tracked and self._down is None:
                await wake.wait()
                continue
            gap = self.settings.poll_interval
            if self._soon:  # leave qmaster free 3/4 of the time for qsub
                gap = min(gap, max(self.settings.fast_poll_interval, 4 * self._qstat_seconds))
            delay = self._last_qstat + gap - time.monotonic()
            if delay > 0:
                with anyio.move_on_after(delay):
                    await wake.wait()
                    continue  # a submit may have brought qstat forward: plan again
            try:
                await self.poll_once()
            except Exception:  # a bug must not stop the watching of every job
                log.exception("SGE poll cycle failed; polling goes on")

    async def _read_loop(self) -> None:
        # Idle, it still reads every poll_interval: the offset stays near the end, so
        # no read has much to parse.
        while True:
            busy = self._early or any(w.busy for w in self._tracked.values())
            settings = self.settings
            await anyio.sleep(settings.fast_poll_interval if busy else settings.poll_interval)
            try:
                await self.read_once()
            except Exception:
                log.exception("reading SGE's accounting file failed; reading goes on")

    async def read_once(self) -> None:
        """The accounting file's new records: the ends of tracked jobs, reported."""
        records = await self._read_accounting()
        for ref, early in self._early.items():
            records.setdefault(ref, []).extend(early)
        self._early.clear()
        self.reads += 1
        self._take(None, records)

    async def poll_once(self) -> None:
        """One poll cycle: qstat, and qacct for one batch of jobs whose records did not
        come: at most two scheduler commands however many jobs are tracked."""
        started = self._last_qstat = time.monotonic()
        self._soon = False
        used = 1
        live: dict[str, list[SgeJob]] | None = None
        records: dict[str, list[SgeJob]] = {}
        try:
            try:
                live = group(await self._qstat())
            except BackendError as exc:
                self._went_down(exc)
            else:
                self._came_up()
            self._qstat_seconds = time.monotonic() - started
            due = self._qacct_due()
            if due:
                used += 1
                try:
                    ended = await self._qacct(due)
                except BackendError as exc:
                    log.warning("qacct failed (ends wait for the accounting file): %s", exc)
                else:
                    for job in ended.values():
                        records.setdefault(job.job_id, []).append(job)
            self._take(live, records)
        finally:
            self.poll_stats.count(used)
            self.poll_stats.took(time.monotonic() - started)

    def _take(self, live: dict[str, list[SgeJob]] | None, records: dict[str, list[SgeJob]]) -> None:
        """Report what moved; ``live`` is qstat's answer, None for records alone."""
        now = time.monotonic()
        timing = Timing(2 * self.settings.poll_interval, self.settings.forget_after)
        refs = (
            list(self._tracked) if live is not None else [r for r in records if r in self._tracked]
        )
        for ref in refs:
            watch = self._tracked.get(ref)
            if watch is None:
                continue
            found = None if live is None else live.get(ref, [])
            reports, done = take(ref, watch, found, records.get(ref, []), now, timing,
                                 self._skipped)  # fmt: skip
            if done:
                del self._tracked[ref]
            for report in reports:
                self._emit(ref, report)

    def _skipped(self, key: str) -> bool:
        return (self.ends_dir / f"{key}.skipped").exists()

    def _qacct_due(self) -> list[str]:
        now, wait = time.monotonic(), self.settings.accounting_wait
        at_once = self._no_file is not None
        if at_once:  # every end is qacct's: ask each cycle
            wait = self.settings.poll_interval
        due = [r for r, w in self._tracked.items() if w.wants_qacct(now, wait, at_once)]
        for ref in due:
            self._tracked[ref].asked = now
        return due

    async def _read_accounting(self, start: bool = False) -> dict[str, list[SgeJob]]:
        """The accounting file's new records of tracked jobs, by job number; the others'
        kept a while (a job may end before its qsub returns)."""
        try:
            if start:
                await anyio.to_thread.run_sync(self.accounting.start)
                return {}
            jobs = await anyio.to_thread.run_sync(self.accounting.read)
        except AccountingUnavailable as exc:
            if self._no_file is None:
                log.warning("SGE's accounting file cannot be read here, qacct will do: %s", exc)
            self._no_file = str(exc)
            return {}
        self._no_file = None
        records: dict[str, list[SgeJob]] = {}
        for job in jobs:
            if job.job_id in self._tracked:
                records.setdefault(job.job_id, []).append(job)
            else:
                self.accounting.keep(job)
        return records

    def _track(self, ref: str, watch: Watch) -> None:
        self._tracked[ref] = watch
        early = self.accounting.claim(ref)
        if early:  # it ended before it was tracked: its records go with the next cycle
            self._early[ref] = early
        self._hurry()

    def _went_down(self, exc: BackendError) -> None:
        if self._down is None:
            log.warning("SGE does not answer; jobs keep their last state: %s", exc)
        self._down = f"waiting for SGE's qmaster to answer again ({exc})"

    def _came_up(self) -> None:
        if self._down is not None:
            self._down = None
            self.context.wake()  # held submissions may go now

    def _hurry(self) -> None:
        self._soon = True
        if self._wake is not None:
            self._wake.set()

    # --- SGE commands ------------------------------------------------------------------

    async def _query(self, refs: Sequence[str]) -> dict[str, SgeJob]:
        """qstat for all; qacct (one call) for refs qstat no longer has."""
        live = await self._qstat()
        found = {r: live[r] for r in refs if r in live}
        missing = [r for r in refs if r not in found]
        if missing:
            ended = await self._qacct(missing)
            found |= {r: ended[r] for r in missing if r in ended}
        return found

    async def _qstat(self) -> dict[str, SgeJob]:
        result = await self.commands.run(["qstat", "-xml"])
        if not result.ok:
            raise BackendError(f"qstat failed: {result.message}")
        try:
            return parse_qstat_xml(result.stdout)
        except ValueError as exc:
            raise BackendError(str(exc)) from None

    async def _qacct(self, refs: Sequence[str]) -> dict[str, SgeJob]:
        """qacct of one job, or of every job (it reads the whole file either way)."""
        # qacct reads the accounting file itself: it answers while qmaster is down.
        argv = ["qacct", "-j", refs[0]] if len(refs) == 1 else ["qacct", "-j"]
        result = await self.commands.run(argv)
        if not result.ok:
            if result.says(("no jobs running since startup", "not found"), stdout=True):
                return {}
            raise BackendError(f"qacct failed: {result.message}")
        return parse_qacct(result.stdout)

    async def _qdel(self, target: str) -> None:
        result = await self.commands.run(["qdel", target])
        if not result.ok and not gone(result):
            raise BackendError(f"qdel {target} failed: {result.message}")

    async def _qsub(self, argv: list[str], script: str, env: dict[str, str], key: str) -> str:
        """qsub, retried with backoff while qmaster does not answer; the job's number."""

        async def once() -> Result:
            return await self.commands.run(argv, stdin=script, env=env)

        try:
            return await submit_with_retries(
                once,
                parse_qsub,
                lambda: self.find(key),
                unreachable,
                retries=self.settings.submit_retries,
                delay=self.settings.retry_delay,
                scheduler="SGE",
                key=key,
            )
        except SubmitFailed as exc:
            self._went_down(BackendError(exc.problem))
            self._hurry()
            raise BackendError(f"{exc}: {self._down}") from None
