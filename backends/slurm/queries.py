"""squeue and sacct: the argv of a bulk query and the parsing of its answer.

squeue knows the jobs still in slurmctld's memory (pending, running, and
finished ones for ``MinJobAge`` seconds); sacct knows every job slurmdbd
recorded. A poll asks squeue about all tracked jobs and sacct only about
those squeue no longer has.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace

from gantry.backends.base import Accounting, StatusReport
from gantry.backends.slurm.states import (
    ExitInfo,
    parse_cpu_time,
    parse_exit_code,
    parse_memory,
    parse_time,
    parse_wait_status,
    to_report,
)

log = logging.getLogger(__name__)

#: Above this many ids, squeue lists the user's jobs instead: one argv item
#: may not exceed 128 KiB.
MAX_IDS_IN_ARGV = 2000

# Name comes last: it is the one field a user could fill with "|".
# An array's task is <ArrayJobID>_<ArrayTaskID>; its tasks not started yet are
# one line with a range as ArrayTaskID ("2-99%5"), keyed by the array's id.
SQUEUE_FIELDS = (
    "JobID:|,ArrayJobID:|,ArrayTaskID:|,State:|,exit_code:|,Reason:|,StartTime:|,EndTime:|,Name:|"
)
_SQUEUE_COUNT = SQUEUE_FIELDS.count(",") + 1
# UserCPU + SystemCPU is TotalCPU, split; MaxRSS is per step (needs
# JobAcctGatherType=jobacct_gather/linux or cgroup, else it is empty).
SACCT_FIELDS = "JobID,State,ExitCode,Reason,Start,End,UserCPU,SystemCPU,MaxRSS,ElapsedRaw,JobName"
_SACCT_COUNT = SACCT_FIELDS.count(",") + 1


@dataclass(frozen=True, slots=True)
class SlurmJob:
    """One job as squeue or sacct described it."""

    job_id: str
    state: str
    exit: ExitInfo | None
    reason: str
    started_at: float | None
    ended_at: float | None
    name: str
    #: sacct only: what the job cost (on its final report)
    accounting: Accounting | None = None

    def report(self) -> StatusReport:
        report = to_report(self.state, self.exit, self.reason, self.started_at, self.ended_at)
        if self.accounting is not None and report.status.is_final:
            return replace(report, accounting=self.accounting)
        return report


def squeue_argv(ids: Sequence[str] | None = None, names: Sequence[str] | None = None) -> list[str]:
    """squeue for these ids (or these job names), in every state, one line per job."""
    argv = ["squeue", "--noheader", "--states=all", f"--Format={SQUEUE_FIELDS}"]
    if names is not None:
        argv += ["--me", "--name=" + ",".join(names)]  # other users may run gantry too
    elif ids is not None and len(ids) <= MAX_IDS_IN_ARGV:
        argv.append("--jobs=" + ",".join(ids))
    else:
        argv.append("--me")
    return argv


def parse_squeue(text: str) -> dict[str, SlurmJob]:
    """One SlurmJob per line, keyed by job id, or ``<array id>_<index>`` for an array's task."""
    jobs: dict[str, SlurmJob] = {}
    for line in text.splitlines():
        parts = line.split("|", _SQUEUE_COUNT - 1)
        if len(parts) != _SQUEUE_COUNT or not parts[0].strip():
            if line.strip():
                log.warning("ignoring squeue line %r", line)
            continue
        raw_id, array_id, task, state, status, reason, start, end, name = (p.strip() for p in parts)
        job_id = raw_id
        if task.isdigit():
            job_id = f"{array_id}_{task}"
        elif task not in ("", "N/A") and array_id.isdigit():
            job_id = array_id  # the array's tasks that have not started
        jobs[job_id] = SlurmJob(
            job_id, state, parse_wait_status(status), reason,
            parse_time(start), parse_time(end), name.removesuffix("|"),
        )  # fmt: skip
    return jobs


def sacct_argv(ids: Sequence[str] | None = None, names: Sequence[str] | None = None) -> list[str]:
    """sacct for these ids (or names): allocations and their batch steps, '|'-separated."""
    argv = ["sacct", "--parsable2", "--noheader", f"--format={SACCT_FIELDS}"]
    if names is not None:
        # By name sacct looks back only to midnight unless told otherwise.
        argv += ["--starttime=1970-01-02", "--name=" + ",".join(names)]
    if ids is not None:
        argv.append("--jobs=" + ",".join(ids))
    return argv


def parse_sacct(text: str) -> dict[str, SlurmJob]:
    """One SlurmJob per allocation; the exit code comes from its batch step when there is one.

    The allocation's ExitCode is 0:0 for a job Slurm killed; the batch step
    says which signal killed the script. CPU times and the elapsed time are
    the allocation's (its steps summed), peak memory the largest of its steps'.
    """
    jobs: dict[str, SlurmJob] = {}
    batch_exits: dict[str, ExitInfo] = {}
    peaks: dict[str, int] = {}
    for line in text.splitlines():
        parts = line.split("|", _SACCT_COUNT - 1)
        if len(parts) != _SACCT_COUNT:
            if line.strip():
                log.warning("ignoring sacct line %r", line)
            continue
        job_id, state, code, reason, start, end, user, system, rss, elapsed, name = parts
        base, _, step = job_id.partition(".")
        base = base.split("_[", 1)[0]  # an array's tasks not started: "12_[3-99%5]"
        exit_info = parse_exit_code(code)
        peak = parse_memory(rss)
        if step and peak is not None:
            peaks[base] = max(peaks.get(base, 0), peak)
        if step == "batch":
            if exit_info is not None:
                batch_exits[base] = exit_info
        elif not step and base:
            wall = float(elapsed) if elapsed.isdigit() else None
            measured: Accounting | None = Accounting(
                parse_cpu_time(user), parse_cpu_time(system), wall=wall
            )
            jobs[base] = SlurmJob(
                base, state, exit_info, reason, parse_time(start), parse_time(end), name,
                measured,
            )  # fmt: skip
    for job_id, job in jobs.items():
        exit_info = batch_exits.get(job_id, job.exit)
        accounting = job.accounting
        if accounting is not None and job_id in peaks:
            accounting = replace(accounting, max_rss=peaks[job_id])
        if accounting == Accounting():
            accounting = None
        jobs[job_id] = replace(job, exit=exit_info, accounting=accounting)
    return jobs
