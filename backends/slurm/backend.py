"""gantry's Slurm backend: sbatch to submit, one squeue (+ one sacct) per poll.

Its config keys are described in :mod:`gantry.backends.slurm.config`.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import anyio
from anyio.abc import TaskStatus

from gantry.backends.base import (
    BackendContext,
    BackendError,
    BackendStatus,
    JobSubmission,
    StatusReport,
)
from gantry.backends.scheduler.backend import SchedulerBackend
from gantry.backends.scheduler.commands import Result, id_order
from gantry.backends.scheduler.submitting import submit_with_retries
from gantry.backends.slurm.commands import (
    checked_ref,
    chunks,
    gone,
    parse_sbatch,
    slurm_commands,
    transient,
)
from gantry.backends.slurm.config import SlurmSettings
from gantry.backends.slurm.queries import (
    MAX_IDS_IN_ARGV,
    SlurmJob,
    parse_sacct,
    parse_squeue,
    sacct_argv,
    squeue_argv,
)
from gantry.backends.slurm.submission import (
    OPTION_DEFAULTS,
    batch_script,
    check_directives,
    normalise_options,
    passed_env,
    sbatch_argv,
    sbatch_environment,
)
from gantry.backends.slurm.tracking import (
    ArrayWatch,
    Watch,
    array_tasks,
    merge_sacct,
    sacct_turn,
    take_array,
)

log = logging.getLogger(__name__)
SUBMITTED_ARRAY = SlurmJob("", "PENDING", None, "", None, None, "")


class SlurmBackend(SchedulerBackend):
    """Runs command jobs as Slurm batch jobs on the cluster this machine submits to."""

    name: ClassVar[str] = "slurm"
    option_defaults: ClassVar[dict[str, Any]] = dict(OPTION_DEFAULTS)

    def __init__(self, context: BackendContext) -> None:
        self.settings = settings = SlurmSettings.from_config(context.config)
        commands = slurm_commands(settings.command_timeout)
        super().__init__(context, commands, settings.job_name_prefix)
        self._tracked: dict[str, Watch] = {}
        self._arrays: dict[str, ArrayWatch] = {}  # tracked array jobs, by ref
        self._wake: anyio.Event | None = None
        self._fast_left = 0
        self._last_poll = 0.0
        self._last_poll_seconds = 0.0
        self._submit_slots: anyio.Semaphore | None = None
        self._log_dirs: set[Path] = set()
        self._last_poll_error: str | None = None
        self._last_sacct_error: str | None = None

    # --- contract ----------------------------------------------------------------------

    def validate_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        return normalise_options(options)

    async def submit(self, job: JobSubmission, dependencies: Sequence[str]) -> str:
        given = {k: v for k, v in job.options.items() if v is not None}
        try:
            options = normalise_options({**self.settings.option_defaults, **given})
            deps = [checked_ref(d) for d in dependencies]
            check_directives(job.spec)
            argv = sbatch_argv(job, options, deps, self.job_name(job.key))
            env = sbatch_environment(job.env, passed_env())
        except ValueError as exc:
            raise BackendError(str(exc)) from None
        await self._make_log_dirs(job.stdout_path.parent, job.stderr_path.parent)
        script = batch_script(job.spec, array=job.array is not None)
        ref = await self._sbatch(argv, script, env, job.key)
        if job.array is not None:
            self._arrays[ref] = ArrayWatch(job.array)
        self._tracked[ref] = Watch(last=BackendStatus.SUBMITTED)
        self._hurry()
        return ref

    async def cancel(self, ref: str) -> None:
        ref = checked_ref(ref)
        result = await self.commands.run(["scancel", ref])
        if not result.ok and not gone(result):
            raise BackendError(f"scancel {ref} failed: {result.message}")
        self._tracked.setdefault(ref, Watch(last=None))  # so its end gets reported
        self._hurry()

    async def cancel_task(self, ref: str, index: int) -> None:
        task = f"{checked_ref(ref)}_{int(index)}"  # Slurm's own name for one task
        result = await self.commands.run(["scancel", task])
        if not result.ok and not gone(result):
            raise BackendError(f"scancel {task} failed: {result.message}")
        self._hurry()

    async def status(self, refs: Sequence[str]) -> dict[str, StatusReport]:
        checked = [checked_ref(r) for r in refs]
        found = await self._query(checked) if checked else {}
        unknown = StatusReport(BackendStatus.UNKNOWN, reason="Slurm has no record of this job")
        # An array's tasks are reported by the poller, one by one.
        found |= {r: SUBMITTED_ARRAY for r in checked if r in self._arrays}
        return {ref: found[ref].report() if ref in found else unknown for ref in checked}

    async def adopt(self, job: JobSubmission, ref: str) -> None:
        if job.array is not None:
            self._arrays.setdefault(checked_ref(ref), ArrayWatch(job.array))
        self._tracked.setdefault(checked_ref(ref), Watch(last=None))
        self._hurry()

    async def lookup(self, keys: Sequence[str]) -> dict[str, str]:
        by_name = {self.job_name(k): k for k in keys}
        found: dict[str, str] = {}
        for chunk in chunks(list(by_name), 500):
            jobs = await self._squeue(squeue_argv(names=chunk))
            rest = [n for n in chunk if n not in {j.name for j in jobs.values()}]
            if rest:
                jobs |= await self._sacct(sacct_argv(names=rest))
            # The newest submission of a name wins (ids only grow).
            for job in sorted(jobs.values(), key=lambda j: id_order(j.job_id)):
                if job.name in by_name:  # an array's tasks name the array's id
                    found[by_name[job.name]] = job.job_id.partition("_")[0]
        return found

    async def health(self) -> tuple[bool, str]:
        try:
            result = await self.commands.run(
                ["sinfo", "--noheader", "--format=%T %D"],
                time_limit=min(10.0, self.commands.timeout),
            )
        except BackendError as exc:
            return False, str(exc)
        if not result.ok:
            return False, f"Slurm does not answer: {result.message}"
        nodes: Counter[str] = Counter()
        for line in result.stdout.splitlines():
            state, _, count = line.partition(" ")
            nodes[state] += int(count) if count.strip().isdigit() else 0
        if not nodes:
            return False, "Slurm answers but has no nodes"
        summary = ", ".join(f"{n} {state}" for state, n in sorted(nodes.items()))
        return True, f"Slurm answers; nodes: {summary}"

    async def close(self) -> None:
        self._tracked.clear()
        self._arrays.clear()

    # --- polling -----------------------------------------------------------------------

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Poll while jobs are tracked: every ``poll_interval``, faster after a submit."""
        task_status.started()
        while True:
            self._wake = wake = anyio.Event()
            if not self._tracked:
                await wake.wait()  # nothing to watch: sleep until a submit or adopt
                continue
            interval = self.settings.poll_interval
            if self._fast_left > 0:
                # Fast, but leaving slurmctld free 3/4 of the time for sbatch.
                busy = 4 * self._last_poll_seconds
                interval = min(interval, max(self.settings.fast_poll_interval, busy))
            delay = self._last_poll + interval - time.monotonic()
            if delay > 0:
                with anyio.move_on_after(delay):
                    await wake.wait()
                    continue  # a submit may have shortened the interval: plan again
            self._last_poll = time.monotonic()
            self._fast_left = max(0, self._fast_left - 1)
            try:
                await self.poll_once()
            except Exception as exc:  # a bug must not stop the watching of every job
                if repr(exc) != self._last_poll_error:
                    log.exception("Slurm poll cycle failed; polling goes on")
                self._last_poll_error = repr(exc)

    async def poll_once(self) -> None:
        """One poll cycle: ask Slurm about every tracked job and report what moved."""
        refs = list(self._tracked)
        if not refs:
            return
        started = time.monotonic()
        try:
            found, asked, waiting = await self._poll_query(refs)
        except BackendError as exc:
            if str(exc) != self._last_poll_error:
                log.warning("polling Slurm failed (will retry): %s", exc)
            self._last_poll_error = str(exc)
            return
        finally:  # a failed poll's time counts too: a slow slurmctld shows
            took = self.poll_stats.took(time.monotonic() - started)
        self._last_poll_seconds = took
        self._last_poll_error = None
        self._take(refs, found, asked, waiting)

    async def _poll_query(self, refs: list[str]) -> tuple[dict[str, SlurmJob], list[str], set[str]]:
        """squeue for all refs; sacct for at most one argv-full of those it no longer has
        or saw end, least recently asked first. Returns what was found, whom sacct was
        asked about, and the ends whose accounting sacct does not have yet."""
        used = 1
        waiting: set[str] = set()
        try:
            found = await self._squeue_ids(refs)
            tasks = array_tasks(found, self._arrays)
            asked = sacct_turn(self._tracked, refs, found, self._arrays, tasks)[:MAX_IDS_IN_ARGV]
            if asked:
                used += 1
                try:
                    waiting = merge_sacct(found, await self._sacct_ids(asked))
                except BackendError as exc:
                    # squeue's ends still count, without accounting; sacct's silence does not.
                    if str(exc) != self._last_sacct_error:
                        log.warning("sacct failed (ends are reported without accounting): %s", exc)
                    self._last_sacct_error = str(exc)
                    asked = []
                else:
                    self._last_sacct_error = None
            return found, asked, waiting
        finally:
            self.poll_stats.count(used)

    def _take(
        self, refs: list[str], found: dict[str, SlurmJob], asked: list[str], waiting: set[str]
    ) -> None:
        """Report what moved; drop ended jobs, and jobs Slurm no longer knows at all."""
        now = time.monotonic()
        asked_set = set(asked)
        tasks = array_tasks(found, self._arrays)
        for ref in refs:
            watch = self._tracked.get(ref)
            if watch is None:
                continue  # dropped meanwhile (close)
            if ref in asked_set:
                watch.asked = now
            array = self._arrays.get(ref)
            job = found.get(ref)
            if array is not None and (ref in tasks or job is not None):
                watch.missing_since = None
                wait = self.settings.accounting_wait
                for report in take_array(ref, array, tasks.get(ref, []), job, waiting, now, wait):
                    self._emit(ref, report)
                if array.finished():
                    del self._tracked[ref], self._arrays[ref]
                continue
            if job is None:
                if ref in asked_set:  # only sacct's silence counts
                    watch.missing_since = watch.missing_since or now
                if watch.missing_since and now - watch.missing_since >= self.settings.forget_after:
                    del self._tracked[ref]
                    self._emit(ref, StatusReport(
                        BackendStatus.UNKNOWN,
                        reason=f"neither squeue nor sacct knows Slurm job {ref}",
                    ))  # fmt: skip
                continue
            watch.missing_since = None
            if ref in waiting:  # ended; its accounting is on its way to sacct
                watch.ended_since = watch.ended_since or now
                if now - watch.ended_since < self.settings.accounting_wait:
                    continue
            report = job.report()
            if report.status.is_final:
                del self._tracked[ref]
            if report.status is not watch.last:
                watch.last = report.status
                self._emit(ref, report)

    def _hurry(self) -> None:
        """Poll soon and often for a while (a job was submitted or cancelled)."""
        self._fast_left = self.settings.fast_poll_cycles
        if self._wake is not None:
            self._wake.set()

    # --- Slurm commands ----------------------------------------------------------------

    async def _query(self, refs: Sequence[str]) -> dict[str, SlurmJob]:
        """One squeue for all refs, then sacct (in chunks) for those squeue no longer has."""
        found = await self._squeue_ids(refs)
        missing = [ref for ref in refs if ref not in found]
        for chunk in chunks(missing, MAX_IDS_IN_ARGV):
            found |= await self._sacct_ids(chunk)
        return found

    async def _squeue_ids(self, refs: Sequence[str]) -> dict[str, SlurmJob]:
        wanted = set(refs)
        jobs = await self._squeue(squeue_argv(ids=refs))
        return {k: job for k, job in jobs.items() if k.partition("_")[0] in wanted}  # and tasks

    async def _sacct_ids(self, refs: Sequence[str]) -> dict[str, SlurmJob]:
        wanted = set(refs)
        jobs = await self._sacct(sacct_argv(ids=refs))
        return {k: job for k, job in jobs.items() if k.partition("_")[0] in wanted}

    async def _squeue(self, argv: list[str]) -> dict[str, SlurmJob]:
        result = await self.commands.run(argv)
        if result.ok:
            return parse_squeue(result.stdout)
        if gone(result):
            return {}  # every id asked for has left slurmctld's memory
        raise BackendError(f"squeue failed: {result.message}")

    async def _sacct(self, argv: list[str]) -> dict[str, SlurmJob]:
        result = await self.commands.run(argv)
        if not result.ok:
            raise BackendError(f"sacct failed: {result.message}")
        return parse_sacct(result.stdout)

    async def _sbatch(self, argv: list[str], script: str, env: dict[str, str], key: str) -> str:
        """sbatch with retries on transient errors; the job's Slurm id."""
        if self._submit_slots is None:
            self._submit_slots = anyio.Semaphore(self.settings.submit_concurrency)
        slots = self._submit_slots

        async def once() -> Result:
            async with slots:
                return await self.commands.run(argv, stdin=script, env=env)

        return await submit_with_retries(
            once,
            parse_sbatch,
            lambda: self.find(key),
            transient,
            retries=self.settings.submit_retries,
            delay=self.settings.retry_delay,
            scheduler="Slurm",
            key=key,
        )

    async def _make_log_dirs(self, *dirs: Path) -> None:
        """Slurm fails a job whose log directory is missing, so create it first."""
        for directory in dirs:
            if directory not in self._log_dirs:
                await anyio.Path(directory).mkdir(parents=True, exist_ok=True)
                self._log_dirs.add(directory)
