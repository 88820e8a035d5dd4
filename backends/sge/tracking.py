"""What the poller keeps per tracked SGE job, and what one cycle's answers mean for it.

A cycle has the accounting file's new records (every cycle: ends need no
qmaster) and, on most cycles, one ``qstat -xml`` of every live job, grouped
by job number (an array's started tasks, and a line for its tasks not
started yet). A record is a job's (or task's) end; qstat says the rest. A
job gone from qstat without a record is waited for: qmaster may flush the
accounting file late; a deleted job that never started leaves no record.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from gantry.backends.base import ArraySpec, BackendStatus, StatusReport
from gantry.backends.sge.parsing import SgeJob, in_ranges, task_ranges
from gantry.backends.sge.submission import SKIPPED_EXIT, TaskRange

S = BackendStatus
#: Whether the job (or task, ``<job>.<task>``) of this key skipped its spec: a
#: dependency did not complete.
Skipped = Callable[[str], bool]
SKIPPED_REASON = "a dependency did not complete, so it did not run"


@dataclass(frozen=True, slots=True)
class Timing:
    grace: float  # a deleted job SGE no longer lists, with no record: cancelled after this
    forget_after: float  # any job SGE no longer lists, with no record: UNKNOWN after this


@dataclass(slots=True)
class TaskWatch:
    """An array job (one ``qsub -t``): what each of its tasks last reported."""

    spec: ArraySpec
    tasks: TaskRange
    last: dict[int, BackendStatus] = field(default_factory=dict)
    ended: set[int] = field(default_factory=set)
    #: tasks deleted one by one -> since when SGE lists them nowhere (None: still listed)
    cancelled: dict[int, float | None] = field(default_factory=dict)

    def index(self, task: int) -> int:
        """gantry's index of SGE's task id."""
        return task - self.tasks.offset

    def finished(self) -> bool:
        return len(self.ended) >= self.spec.count


@dataclass(slots=True)
class Watch:
    last: BackendStatus | None = None
    idle: bool = False  # held or in SGE's error state: it cannot end by itself soon
    adopted: bool = False  # its end may be older than what the reader skipped at start
    cancelled: bool = False
    gone_since: float | None = None  # since when qstat no longer lists it, without a record
    asked: float = 0.0  # when qacct was last asked about it
    array: TaskWatch | None = None

    @property
    def busy(self) -> bool:
        """It may end any moment (running, or queued: it may start and end between two
        qstats), or has ended and its record is awaited."""
        return self.gone_since is not None or not self.idle

    def wants_qacct(self, now: float, wait: float, at_once: bool) -> bool:
        """Gone from qstat without a record for ``wait`` s (at once if ``at_once`` or
        adopted), and not asked within ``wait`` s: its record may be one the reader
        did not read (older than its start, or in a rotated file)."""
        if self.gone_since is None or now - self.asked < wait:
            return False
        return at_once or self.adopted or now - self.gone_since >= wait


def group(live: dict[str, SgeJob]) -> dict[str, list[SgeJob]]:
    """qstat's jobs by job number (an array's tasks under their array's)."""
    grouped: dict[str, list[SgeJob]] = {}
    for job in live.values():
        grouped.setdefault(job.job_id, []).append(job)
    return grouped


def _ended(job: SgeJob, skipped: Skipped) -> StatusReport:
    report = job.report
    if report.exit_code == SKIPPED_EXIT and skipped(job.key):
        return StatusReport(S.CANCELLED, reason=SKIPPED_REASON, raw=report.raw,
                            accounting=report.accounting)  # fmt: skip
    return report


def take(
    ref: str,
    watch: Watch,
    live: Sequence[SgeJob] | None,
    records: Sequence[SgeJob],
    now: float,
    timing: Timing,
    skipped: Skipped,
) -> tuple[list[StatusReport], bool]:
    """The reports to send for one job this cycle (each change once), and whether it
    is done (stop tracking). ``live`` is None on a cycle without qstat."""
    if watch.array is not None:
        return _take_array(ref, watch, watch.array, live, records, now, timing, skipped)
    if records:
        return [_ended(records[-1], skipped)], True
    if live is None:
        return [], False
    if live:
        watch.gone_since = None
        report = live[0].report
        watch.idle = any(c in (report.raw or "") for c in "hE")
        if report.status is watch.last:
            return [], False
        watch.last = report.status
        return [report], False
    since = watch.gone_since = now if watch.gone_since is None else watch.gone_since
    if watch.cancelled and now - since >= timing.grace:
        # qdel of a job that never started leaves no accounting record.
        return [StatusReport(S.CANCELLED, reason="deleted in SGE")], True
    if now - since >= timing.forget_after:
        reason = f"neither qstat nor the accounting file knows SGE job {ref}"
        return [StatusReport(S.UNKNOWN, reason=reason)], True
    return [], False


def _take_array(
    ref: str,
    watch: Watch,
    array: TaskWatch,
    live: Sequence[SgeJob] | None,
    records: Sequence[SgeJob],
    now: float,
    timing: Timing,
    skipped: Skipped,
) -> tuple[list[StatusReport], bool]:
    out: list[StatusReport] = []

    def end(index: int, report: StatusReport) -> None:
        array.ended.add(index)
        array.last[index] = report.status
        out.append(replace(report, task=index))

    for job in records:
        index = array.index(job.task or 0)
        if index not in array.ended and index in array.spec:
            end(index, _ended(job, skipped))
    if live is not None:
        started = {job.task: job for job in live if job.task is not None}
        waiting = [r for job in live if job.task is None for r in task_ranges(job.pending)]
        for task, job in sorted(started.items()):
            index = array.index(task)
            if index not in array.ended and array.last.get(index) is not job.report.status:
                array.last[index] = job.report.status
                out.append(replace(job.report, task=index))
        for index, since in list(array.cancelled.items()):
            task = index + array.tasks.offset
            if index in array.ended or task in started or in_ranges(task, waiting):
                array.cancelled[index] = None
                continue
            array.cancelled[index] = since = now if since is None else since
            if now - since >= timing.grace:
                end(index, StatusReport(S.CANCELLED, reason="deleted in SGE"))
        if live:
            watch.gone_since = None
            watch.idle = all(j.task is None and "h" in (j.report.raw or "") for j in live)
        else:
            since = watch.gone_since = now if watch.gone_since is None else watch.gone_since
            if watch.cancelled and now - since >= timing.grace:
                for index in array.spec.indices():
                    if index not in array.ended:
                        end(index, StatusReport(S.CANCELLED, reason="deleted in SGE"))
            elif now - since >= timing.forget_after:
                reason = f"neither qstat nor the accounting file knows SGE array {ref}"
                return [*out, StatusReport(S.UNKNOWN, reason=reason)], True
    return out, array.finished()
