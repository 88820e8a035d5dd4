"""gantry's Grid Engine backend: qsub to submit, one qstat (+ one qacct) per poll.

Config keys (``backend.sge.<key>``): ``poll_interval`` (s, default 1),
``submit_retries`` (default 5) and ``retry_delay`` (s, default 0.5, doubled each
time) while qmaster does not answer, ``command_timeout`` (s, default 30),
``forget_after`` (s, default 60: a job neither qstat nor qacct knows that long
is reported UNKNOWN), ``job_name_prefix`` (default ``gantry``), and a default
for any job option (``queue``, ``account``, ``parallel_env``...).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import anyio
from anyio.abc import TaskStatus

from gantry.backends.base import (
    Backend,
    BackendContext,
    BackendError,
    BackendMetrics,
    BackendStatus,
    JobSubmission,
    StatusReport,
)
from gantry.backends.sge.commands import Result, SgeCommands, checked_ref
from gantry.backends.sge.parsing import SgeJob, parse_qacct, parse_qstat_xml
from gantry.backends.sge.submission import (
    OPTION_DEFAULTS,
    SKIPPED_EXIT,
    job_script,
    normalise_options,
    qsub_argv,
    qsub_environment,
)

log = logging.getLogger(__name__)
S = BackendStatus
_FLOATS = ("poll_interval", "retry_delay", "command_timeout", "forget_after")


class SgeBackend(Backend):
    """Runs command jobs as Grid Engine jobs in the cell this machine submits to."""

    name: ClassVar[str] = "sge"
    option_defaults: ClassVar[dict[str, Any]] = dict(OPTION_DEFAULTS)
    supports_dependencies: ClassVar[bool] = True

    def __init__(self, context: BackendContext) -> None:
        super().__init__(context)
        config = context.config
        self.settings: dict[str, float] = {"poll_interval": 1.0, "retry_delay": 0.5,
                                           "command_timeout": 30.0, "forget_after": 60.0,
                                           "submit_retries": 5}  # fmt: skip
        for key in (*_FLOATS, "submit_retries"):
            if key in config:
                try:
                    self.settings[key] = float(config[key])
                except ValueError:
                    raise BackendError(
                        f"backend.sge.{key} {config[key]!r} is not a number"
                    ) from None
        self.prefix = config.get("job_name_prefix", "gantry")
        try:
            given = {k: config[k] for k in OPTION_DEFAULTS if config.get(k) not in (None, "")}
            self.defaults = normalise_options(given)
        except ValueError as exc:
            raise BackendError(f"backend.sge config: {exc}") from None
        #: Where jobs record their exit codes for their dependents (see job_script).
        self.ends_dir = context.log_dir / "sge-ends"
        self.commands = SgeCommands(self.settings["command_timeout"])
        #: ref -> last status reported (None: not yet); polled while here.
        self._tracked: dict[str, BackendStatus | None] = {}
        self._missing: dict[str, float] = {}
        self._cancelled: set[str] = set()
        self._down: str | None = None  # why qmaster is thought unreachable
        self._wake: anyio.Event | None = None
        #: poll cycles and the largest number of commands one of them ran (bench).
        self.cycles = 0
        self.max_commands_per_cycle = 0
        self.poll_seconds = 0.0

    # --- contract ----------------------------------------------------------------------

    def validate_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        return normalise_options(options)

    def job_name(self, key: str) -> str:
        return f"{self.prefix}-{key}"

    def hold(self, job: JobSubmission) -> str | None:
        # Jobs stay queued (with this reason) while qmaster is down; run() wakes
        # the dispatcher once it answers again.
        return self._down

    async def submit(self, job: JobSubmission, dependencies: Sequence[str]) -> str:
        given = {k: v for k, v in job.options.items() if v is not None}
        try:
            options = normalise_options({**self.defaults, **given})
            deps = [checked_ref(d) for d in dependencies]
            argv = qsub_argv(job, options, deps, self.job_name(job.key))
            env = qsub_environment(job.env)
        except ValueError as exc:
            raise BackendError(str(exc)) from None
        for path in (job.stdout_path.parent, job.stderr_path.parent, self.ends_dir):
            await anyio.Path(path).mkdir(parents=True, exist_ok=True)
        script = job_script(job.spec, str(self.ends_dir), deps)
        ref = await self._qsub(argv, script, env, job.key)
        self._tracked[ref] = S.SUBMITTED
        self._hurry()
        return ref

    async def cancel(self, ref: str) -> None:
        ref = checked_ref(ref)
        result = await self.commands.run(["qdel", ref])
        if not result.ok and "does not exist" not in result.stderr + result.stdout:
            raise BackendError(f"qdel {ref} failed: {result.message}")
        self._cancelled.add(ref)
        self._tracked.setdefault(ref, None)
        self._hurry()

    async def status(self, refs: Sequence[str]) -> dict[str, StatusReport]:
        checked = [checked_ref(r) for r in refs]
        found = await self._query(checked) if checked else {}
        unknown = StatusReport(S.UNKNOWN, reason="SGE has no record of this job")
        return {r: found[r].report if r in found else unknown for r in checked}

    async def adopt(self, job: JobSubmission, ref: str) -> None:
        self._tracked.setdefault(checked_ref(ref), None)
        self._hurry()

    async def lookup(self, keys: Sequence[str]) -> dict[str, str]:
        by_name = {self.job_name(k): k for k in keys}
        jobs = await self._qstat()
        if set(by_name) - {j.name for j in jobs.values()}:
            jobs = {**(await self._qacct()), **jobs}
        found: dict[str, str] = {}
        for job in sorted(jobs.values(), key=lambda j: int(j.job_id)):  # newest wins
            if job.name in by_name:
                found[by_name[job.name]] = job.job_id
        return found

    def metrics(self) -> BackendMetrics:
        return BackendMetrics(self.cycles, self.poll_seconds, dict(self.commands.counts))

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
        task_status.started()
        while True:
            self._wake = wake = anyio.Event()
            if not self._tracked and self._down is None:
                await wake.wait()
                continue
            with anyio.move_on_after(self.settings["poll_interval"]):
                await wake.wait()
            try:
                await self.poll_once()
            except Exception:  # a bug must not stop the watching of every job
                log.exception("SGE poll cycle failed; polling goes on")

    async def poll_once(self) -> None:
        """One cycle: qstat for all, qacct once if a tracked job left qstat; report changes."""
        before = sum(self.commands.counts.values())
        started = time.monotonic()
        refs = list(self._tracked)
        try:
            found = await self._query(refs)
        except BackendError as exc:
            if self._down is None:
                log.warning("SGE does not answer; jobs keep their last state: %s", exc)
            self._down = f"waiting for SGE's qmaster to answer again ({exc})"
            return
        finally:
            used = sum(self.commands.counts.values()) - before
            self.cycles += 1
            self.max_commands_per_cycle = max(self.max_commands_per_cycle, used)
            self.poll_seconds += time.monotonic() - started
        if self._down is not None:
            self._down = None
            self.context.wake()  # held submissions may go now
        now = time.monotonic()
        for ref in refs:
            job = found.get(ref)
            if job is None:
                since = self._missing.setdefault(ref, now)
                if ref in self._cancelled and now - since >= 2 * self.settings["poll_interval"]:
                    # qdel of a job that never started leaves no accounting record.
                    job = SgeJob(ref, "", StatusReport(S.CANCELLED, reason="deleted in SGE"))
                elif now - since >= self.settings["forget_after"]:
                    reason = f"neither qstat nor qacct knows SGE job {ref}"
                    job = SgeJob(ref, "", StatusReport(S.UNKNOWN, reason=reason))
                else:
                    continue
            self._missing.pop(ref, None)
            report, last = job.report, self._tracked.get(ref)
            if report.exit_code == SKIPPED_EXIT and (self.ends_dir / f"{ref}.skipped").exists():
                reason = "a dependency did not complete, so it did not run"
                report = StatusReport(S.CANCELLED, reason=reason, raw=report.raw)
            if report.status.is_final or ref not in found:
                self._tracked.pop(ref, None)
                self._cancelled.discard(ref)
            else:
                self._tracked[ref] = report.status
            if report.status is not last:
                self._emit(ref, report)

    def _emit(self, ref: str, report: StatusReport) -> None:
        try:
            self.context.report(ref, report)
        except Exception:  # the engine's problem; the poller must go on
            log.exception("reporting %s for SGE job %s failed", report.status, ref)

    def _hurry(self) -> None:
        if self._wake is not None:
            self._wake.set()

    # --- SGE commands ------------------------------------------------------------------

    async def _query(self, refs: Sequence[str]) -> dict[str, SgeJob]:
        """qstat for all; qacct (one call, every record) for refs qstat no longer has."""
        live = await self._qstat()
        found = {r: live[r] for r in refs if r in live}
        if len(found) < len(refs):
            ended = await self._qacct()
            found |= {r: ended[r] for r in refs if r not in found and r in ended}
        return found

    async def _qstat(self) -> dict[str, SgeJob]:
        result = await self.commands.run(["qstat", "-xml"])
        if not result.ok:
            raise BackendError(f"qstat failed: {result.message}")
        try:
            return parse_qstat_xml(result.stdout)
        except ValueError as exc:
            raise BackendError(str(exc)) from None

    async def _qacct(self) -> dict[str, SgeJob]:
        # qacct reads the accounting file itself: it answers while qmaster is down.
        result = await self.commands.run(["qacct", "-j"])
        if not result.ok:
            if "no jobs running since startup" in result.stderr + result.stdout:
                return {}
            raise BackendError(f"qacct failed: {result.message}")
        return parse_qacct(result.stdout)

    async def _qsub(self, argv: list[str], script: str, env: dict[str, str], key: str) -> str:
        """qsub, retried with backoff while qmaster does not answer; the job's number."""
        retries = int(self.settings["submit_retries"])
        result: Result | None = None
        for attempt in range(retries + 1):
            if attempt:
                try:  # the failed call may have submitted the job after all
                    found = (await self.lookup([key])).get(key)
                except BackendError:
                    found = None
                if found is not None:
                    return found
                await anyio.sleep(self.settings["retry_delay"] * 2 ** (attempt - 1))
            result = await self.commands.run(argv, stdin=script, env=env)
            if result.ok:
                ref = result.stdout.strip().split(".")[0]
                if not ref.isdigit():
                    raise BackendError(f"qsub printed no job number: {result.stdout.strip()!r}")
                return ref
            if not result.unreachable:
                raise BackendError(f"SGE refused the job: {result.message}")
            log.warning("qsub for job %s: qmaster unreachable; retry %d/%d", key, attempt + 1,
                        retries)  # fmt: skip
        self._down = (
            f"waiting for SGE's qmaster to answer again ({result.message if result else ''})"
        )
        self._hurry()
        raise BackendError(f"qsub failed {retries + 1} times: {self._down}")
