"""A gwf backend (``gwf.backends`` entry point), unmodified, as a gantry backend.

gwf's backends are blocking and built for one ``gwf run``: an instance reads
the queue once when it is made (``squeue``, or the local workers' status
table) and answers ``status`` from that snapshot. So this adapter keeps one
instance at a time and replaces it at every poll: closing the old one
persists gwf's own tracking file, making the new one takes a fresh snapshot,
and all targets are then asked about from that one snapshot (a bulk status).
Every call into gwf runs on a worker thread, one at a time.

A job becomes a gwf ``Target`` named ``gantry_<job id>_<attempt>`` (so the
name alone finds it again after a restart) with the job's options, working
directory and spec; the spec is wrapped to record its exit status (see
:mod:`.script`), since gwf reports an ended target only as unknown.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import anyio
from anyio.abc import TaskStatus

from gantry.backends.base import (
    Backend,
    BackendError,
    BackendStatus,
    JobSubmission,
    LogStream,
    StatusReport,
    default_log_path,
)
from gantry.backends.gwf_host import script

log = logging.getLogger(__name__)
T = TypeVar("T")

#: An ended target whose script left no exit status is failed after this long
#: unknown to gwf (a shared file system may show the file late).
LOST_AFTER = 30.0
PREFIX = "gantry_"
#: Keys of ``backend.gwf-<name>.*`` that are the adapter's, not gwf's.
OWN_KEYS = frozenset({"poll_interval"})


def target_name(job_id: int, attempt: int) -> str:
    return f"{PREFIX}{job_id}_{attempt}"


def key_of(ref: str) -> tuple[int, int] | None:
    job_id, _, attempt = ref.removeprefix(PREFIX).partition("_")
    return (int(job_id), int(attempt)) if job_id.isdigit() and attempt.isdigit() else None


class GantryLogs:
    """gwf's log-manager interface, pointing at gantry's log files.

    gwf's backends ask ``self.log_manager.stdout_path(target)`` where to
    write; gwf's default is ``.gwf/logs`` in the current directory.
    """

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir

    def _path(self, target: Any, stream: LogStream) -> str:
        found = key_of(getattr(target, "name", str(target)))
        if found is None:
            return "/dev/null"
        return str(default_log_path(self.log_dir, found[0], found[1], stream))

    def stdout_path(self, target: Any) -> str:
        return self._path(target, "stdout")

    def stderr_path(self, target: Any) -> str:
        return self._path(target, "stderr")


class GwfHostedBackend(Backend):
    """Base of the generated ``gwf-<name>`` backends; see :func:`hosted`."""

    gwf_name: ClassVar[str] = ""
    gwf_class: ClassVar[type] = object
    #: gwf's backends are asked for no chaining: gantry's engine submits a job
    #: once its dependencies completed (gwf's local backend forgets completed
    #: targets, so a dependency could no longer be named to it).
    supports_dependencies: ClassVar[bool] = False

    def __init__(self, context: Any) -> None:
        super().__init__(context)
        self._lock = threading.Lock()
        self._instance: Any = None
        self._problem: str | None = None
        self._watching: set[str] = set()
        self._cancelled: set[str] = set()
        self._last: dict[str, BackendStatus] = {}
        self.poll_interval = float(context.config_value("poll_interval", "1.0") or 1.0)

    # --- the gwf instance, on a worker thread ------------------------------------------

    @property
    def label(self) -> str:
        cls = self.gwf_class
        return f"gwf backend {self.gwf_name!r} ({cls.__module__}.{cls.__qualname__})"

    def _fix(self) -> str:
        if self.gwf_name == "local":
            return "start its workers in another terminal with `gwf workers` (gwf's fix)"
        return f"check the {self.gwf_name} installation, or disable {self.context.name}"

    def _configure_gwf(self) -> None:
        """``backend.gwf-<name>.<key>`` settings into gwf's own configuration.

        gwf reads ``<name>.<key>`` (``local.port``) or ``backend.<name>.<key>``
        (``backend.slurm.log_mode``) from its global config; both are set.
        """
        from gwf.conf import config  # type: ignore[import-untyped]

        for key, text in self.context.config.items():
            if key in OWN_KEYS:
                continue
            value: str | int = int(text) if text.isdigit() else text
            config[f"{self.gwf_name}.{key}"] = value
            config[f"backend.{self.gwf_name}.{key}"] = value

    def _open(self) -> Any:
        if self._instance is None:
            self._configure_gwf()
            instance = self.gwf_class()
            instance.log_manager = GantryLogs(self.context.log_dir)
            self._instance = instance
        return self._instance

    def _close_instance(self) -> None:
        instance, self._instance = self._instance, None
        if instance is not None:
            instance.close()

    def _fresh(self) -> Any:
        """A new instance: the old one's tracking persisted, a new snapshot taken."""
        self._close_instance()
        return self._open()

    async def _call(self, work: Callable[[], T]) -> T:
        def locked() -> T:
            with self._lock:
                return work()

        return await anyio.to_thread.run_sync(locked)

    def run_dir(self, ref: str) -> Path:
        return self.context.data_dir / "runs" / self.context.name / ref

    # --- the contract --------------------------------------------------------------------

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            try:
                await self.poll_once()
            except Exception as exc:
                problem = f"{self.label}: {type(exc).__name__}: {exc}"
                if problem != self._problem:
                    log.warning("%s; polling goes on", problem)
                self._problem = problem
            await anyio.sleep(self.poll_interval)

    async def poll_once(self) -> None:
        refs = sorted(self._watching)
        reports = await self.status(refs) if refs else {}
        if not refs:
            await self._call(self._open)
        self._problem = None
        for ref, report in reports.items():
            if report.status.is_final:
                self._watching.discard(ref)
            if self._last.get(ref) != report.status:
                self._last[ref] = report.status
                self.context.report(ref, report)
            if report.status.is_final:
                self._last.pop(ref, None)

    async def health(self) -> tuple[bool, str]:
        if self._problem:
            return False, f"{self._problem}: {self._fix()}"
        return True, f"hosting {self.label}"

    async def submit(self, job: JobSubmission, dependencies: Sequence[str]) -> str:
        from gwf import Target  # type: ignore[import-untyped]

        ref = target_name(job.job_id, job.attempt)
        run_dir = self.run_dir(ref)
        env = {"GANTRY_JOB_ID": str(job.job_id), "GANTRY_JOB_NAME": job.name, **job.env}
        options = {k: v for k, v in job.options.items() if v is not None}

        def hand_over() -> None:
            script.prepare(run_dir)
            target = Target(
                name=ref,
                inputs=[],
                outputs=[],
                options=options,
                working_dir=str(job.working_dir),
                spec=script.wrap(job.spec, run_dir, env),
            )
            try:
                self._open().submit(target, dependencies=[])
            except Exception:
                self._instance = None  # a failing instance is never reused
                raise

        try:
            await self._call(hand_over)
        except Exception as exc:
            raise BackendError(
                f"{self.label} could not submit {job.name}: {type(exc).__name__}: {exc}: "
                f"{self._fix()}"
            ) from None
        self._watching.add(ref)
        return ref

    async def cancel(self, ref: str) -> None:
        from gwf import Target
        from gwf.backends.exceptions import TargetError, UnsupportedOperationError  # type: ignore[import-untyped]

        def cancel() -> None:
            self._open().cancel(Target.empty(ref))

        try:
            await self._call(cancel)
        except TargetError:
            return  # gwf no longer tracks it: it ended
        except UnsupportedOperationError:
            raise BackendError(
                f"{self.label} cannot cancel targets (gwf's own limit): the job runs to its end"
            ) from None
        except Exception as exc:
            raise BackendError(f"{self.label} could not cancel {ref}: {exc}") from None
        self._cancelled.add(ref)

    async def status(self, refs: Sequence[str]) -> dict[str, StatusReport]:
        from gwf import Target
        from gwf.backends import Status  # type: ignore[import-untyped]

        def ask() -> dict[str, Any]:
            instance = self._fresh()
            return {ref: instance.status(Target.empty(ref)) for ref in refs}

        raw = await self._call(ask)
        now = time.time()
        reports = {}
        for ref, state in raw.items():
            if state == Status.RUNNING:
                reports[ref] = StatusReport(BackendStatus.RUNNING, raw=state.name)
            elif state == Status.SUBMITTED:
                reports[ref] = StatusReport(BackendStatus.SUBMITTED, raw=state.name)
            else:
                reports[ref] = self._ended(ref, now)
        return reports

    def _ended(self, ref: str, now: float) -> StatusReport:
        """gwf does not know the target (any more): its exit file tells how it ended."""
        run_dir = self.run_dir(ref)
        code = script.exit_code(run_dir)
        if code is not None:
            status = BackendStatus.COMPLETED if code == 0 else BackendStatus.FAILED
            return StatusReport(status, exit_code=code, raw="UNKNOWN")
        if ref in self._cancelled:
            return StatusReport(BackendStatus.CANCELLED, reason="cancelled", raw="UNKNOWN")
        submitted = script.submitted_at(run_dir)
        if submitted is not None and now - submitted < LOST_AFTER:
            return StatusReport(BackendStatus.SUBMITTED, raw="UNKNOWN")
        return StatusReport(
            BackendStatus.FAILED,
            reason=f"{self.label} no longer knows the target and it left no exit status "
            "(killed, or its node failed): see the job's logs",
            raw="UNKNOWN",
        )

    async def adopt(self, job: JobSubmission, ref: str) -> None:
        self._watching.add(ref)

    async def lookup(self, keys: Sequence[str]) -> dict[str, str]:
        """Submissions gwf still tracks, or whose script already recorded its end."""
        refs = {key: target_name(*map(int, key.split("."))) for key in keys}
        reports = await self.status(list(refs.values())) if refs else {}
        found = {}
        for key, ref in refs.items():
            known = reports[ref].raw != "UNKNOWN" or script.exit_code(self.run_dir(ref)) is not None
            if known:
                found[key] = ref
                self._watching.add(ref)
        return found

    async def close(self) -> None:
        await self._call(self._close_instance)


def hosted(gwf_name: str, gwf_class: type) -> type[GwfHostedBackend]:
    """The gantry backend ``gwf-<gwf_name>`` hosting one gwf backend class."""
    return type(
        f"Gwf{gwf_name.title()}Backend",
        (GwfHostedBackend,),
        {
            "name": f"gwf-{gwf_name}",
            "gwf_name": gwf_name,
            "gwf_class": gwf_class,
            "option_defaults": dict(getattr(gwf_class, "option_defaults", {}) or {}),
            "__module__": __name__,
        },
    )
