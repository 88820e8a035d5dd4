"""What the poller keeps per tracked job, and how one cycle's answers are combined.

A cycle asks squeue about every tracked job, and sacct about those squeue no
longer has plus those squeue saw end: sacct alone has what an ended job cost
(CPU times, peak memory), so an end squeue saw waits for sacct's record of
it, for at most ``accounting_wait`` seconds (slurmdbd may lag slurmctld).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from gantry.backends.base import ArraySpec, BackendStatus, StatusReport
from gantry.backends.slurm.queries import SlurmJob


@dataclass(slots=True)
class Watch:
    last: BackendStatus | None
    missing_since: float | None = None  # since when sacct, asked, did not know it
    asked: float = 0.0  # when sacct was last asked about it
    ended_since: float | None = None  # since when squeue says it ended and sacct does not


def merge_sacct(found: dict[str, SlurmJob], accounted: Mapping[str, SlurmJob]) -> set[str]:
    """Fold sacct's answers into squeue's (in place).

    sacct's word wins if squeue has lost the job, or once sacct says a job ended
    that squeue has running; for an end both saw, squeue says how and sacct
    adds the cost.
    Returns the jobs squeue saw end that sacct still has running: their
    accounting is yet to come.
    """
    waiting: set[str] = set()
    for ref, job in accounted.items():
        seen = found.get(ref)
        if seen is None:
            found[ref] = job
        elif not seen.report().status.is_final:
            if job.report().status.is_final:
                found[ref] = job
        elif job.report().status.is_final:
            # squeue's word on how it ended (its reasons are the fuller), sacct's on the cost
            found[ref] = replace(seen, accounting=job.accounting)
        else:
            waiting.add(ref)
    return waiting


@dataclass(slots=True)
class ArrayWatch:
    """An array job (one ``sbatch --array``): what each of its tasks last reported."""

    spec: ArraySpec
    last: dict[int, BackendStatus] = field(default_factory=dict)
    ended: set[int] = field(default_factory=set)
    ended_since: dict[int, float] = field(default_factory=dict)

    def finished(self) -> bool:
        return len(self.ended) >= self.spec.count


Tasks = dict[str, list[tuple[int, SlurmJob]]]


def array_tasks(found: Mapping[str, SlurmJob], arrays: Mapping[str, ArrayWatch]) -> Tasks:
    """The tasks found of each tracked array (keys ``<array id>_<index>``)."""
    grouped: Tasks = {}
    if arrays:
        for key, job in found.items():
            array_id, sep, index = key.partition("_")
            if sep and array_id in arrays and index.isdigit():
                grouped.setdefault(array_id, []).append((int(index), job))
    return grouped


def array_wants_sacct(
    watch: ArrayWatch, tasks: Sequence[tuple[int, SlurmJob]], rest: SlurmJob | None
) -> bool:
    """Gone from squeue, or a task ended there whose end (and accounting) is not reported."""
    if not tasks and rest is None:
        return True
    return any(i not in watch.ended and job.report().status.is_final for i, job in tasks)


def take_array(
    ref: str,
    watch: ArrayWatch,
    tasks: Sequence[tuple[int, SlurmJob]],
    rest: SlurmJob | None,
    waiting: set[str],
    now: float,
    accounting_wait: float,
) -> list[StatusReport]:
    """The task reports to send for one array this cycle (each change once).

    ``rest`` is the record of its tasks that had not started; once that is
    final (the array was cancelled), so is each of those tasks.
    """
    out: list[StatusReport] = []
    for index, job in tasks:
        if index in watch.ended:
            continue
        if f"{ref}_{index}" in waiting:  # ended; its accounting is on its way to sacct
            since = watch.ended_since.setdefault(index, now)
            if now - since < accounting_wait:
                continue
        report = job.report()
        if report.status is not watch.last.get(index):
            watch.last[index] = report.status
            out.append(replace(report, task=index))
        if report.status.is_final:
            watch.ended.add(index)
    end = rest.report() if rest is not None else None
    if end is not None and end.status.is_final:
        seen = {index for index, _ in tasks}
        for index in watch.spec.indices():
            if index not in watch.ended and index not in seen:
                watch.ended.add(index)
                out.append(replace(end, task=index, reason=end.reason or "never started"))
    return out


def sacct_turn(
    tracked: Mapping[str, Watch],
    refs: Sequence[str],
    in_squeue: Mapping[str, SlurmJob],
    arrays: Mapping[str, ArrayWatch],
    tasks: Tasks,
) -> list[str]:
    """Whom to ask sacct about, least recently asked first: gone from squeue, or ended there."""
    wanted = [
        r
        for r in refs
        if (
            array_wants_sacct(arrays[r], tasks.get(r, []), in_squeue.get(r))
            if r in arrays
            else r not in in_squeue or in_squeue[r].report().status.is_final
        )
    ]
    return sorted(wanted, key=lambda r: w.asked if (w := tracked.get(r)) else 0.0)
