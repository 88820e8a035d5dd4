"""squeue and sacct: the argv of a bulk query and the parsing of its answer.

squeue knows the jobs still in slurmctld's memory (pending, running, and
finished ones for ``MinJobAge`` seconds); sacct knows every job slurmdbd
recorded. A poll asks squeue about all tracked jobs and sacct only about
those squeue no longer has.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from gantry.backends.base import StatusReport
from gantry.backends.slurm.states import (
    ExitInfo,
    parse_exit_code,
    parse_time,
    parse_wait_status,
    to_report,
)

log = logging.getLogger(__name__)

#: Above this many ids, squeue lists the user's jobs instead: one argv item
#: may not exceed 128 KiB.
MAX_IDS_IN_ARGV = 2000

# Name comes last: it is the one field a user could fill with "|".
SQUEUE_FIELDS = "JobID:|,State:|,exit_code:|,Reason:|,StartTime:|,EndTime:|,Name:|"
SACCT_FIELDS = "JobIDRaw,State,ExitCode,Reason,Start,End,JobName"


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

    def report(self) -> StatusReport:
        return to_report(self.state, self.exit, self.reason, self.started_at, self.ended_at)


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
    jobs: dict[str, SlurmJob] = {}
    for line in text.splitlines():
        parts = line.split("|", 6)
        if len(parts) != 7 or not parts[0].strip():
            if line.strip():
                log.warning("ignoring squeue line %r", line)
            continue
        job_id, state, status, reason, start, end, name = (p.strip() for p in parts)
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
    says which signal killed the script.
    """
    jobs: dict[str, SlurmJob] = {}
    batch_exits: dict[str, ExitInfo] = {}
    for line in text.splitlines():
        parts = line.split("|", 6)
        if len(parts) != 7:
            if line.strip():
                log.warning("ignoring sacct line %r", line)
            continue
        job_id, state, code, reason, start, end, name = parts
        base, _, step = job_id.partition(".")
        exit_info = parse_exit_code(code)
        if step == "batch":
            if exit_info is not None:
                batch_exits[base] = exit_info
        elif not step and base:
            jobs[base] = SlurmJob(
                base, state, exit_info, reason, parse_time(start), parse_time(end), name
            )
    for job_id, exit_info in batch_exits.items():
        job = jobs.get(job_id)
        if job is not None:
            jobs[job_id] = SlurmJob(
                job.job_id,
                job.state,
                exit_info,
                job.reason,
                job.started_at,
                job.ended_at,
                job.name,
            )
    return jobs
