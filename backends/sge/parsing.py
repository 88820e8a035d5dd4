"""Grid Engine's answers, parsed: ``qstat -xml`` for live jobs; for ended ones the
accounting file's lines (accounting(5)) and, as a fallback, ``qacct -j``.

qstat knows pending and running jobs only; once a job ends, qmaster forgets
it and the accounting file (read by qacct, which needs no qmaster) has its
record: exit status, the ``failed`` code, CPU times and peak memory.
Keys: ``"<job>"`` for a job (or the tasks of an array not started yet),
``"<job>.<task>"`` for one task of an array (SGE's own notation).
A state letter combination this module does not know becomes UNKNOWN with
the raw text kept, never an exception.
"""

from __future__ import annotations

import logging
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, replace

from gantry.backends.base import Accounting, BackendStatus, StatusReport

log = logging.getLogger(__name__)
S = BackendStatus


@dataclass(frozen=True, slots=True)
class SgeJob:
    """One job as qstat or qacct described it."""

    job_id: str
    name: str
    report: StatusReport
    #: an array's task (SGE's task id, from 1)
    task: int | None = None
    #: an array's tasks not started yet, as qstat lists them (``3-10:1``)
    pending: str = ""

    @property
    def key(self) -> str:
        return self.job_id if self.task is None else f"{self.job_id}.{self.task}"


def state_report(raw: str) -> StatusReport:
    """qstat's state letters (``qw``, ``hqw``, ``r``, ``dr``, ``Eqw``...) as a report."""
    letters = raw.strip()
    if "E" in letters:
        # Error state: SGE keeps the job pending until someone clears it, so it
        # is not failed; the reason says what to do.
        return StatusReport(S.SUBMITTED, reason="in SGE's error state (qstat -j; qmod -cj)",
                            raw=letters)  # fmt: skip
    if "d" in letters:
        return StatusReport(S.RUNNING, reason="being deleted", raw=letters)
    if letters in ("r", "t", "Rr", "Rt"):
        return StatusReport(S.RUNNING, raw=letters)
    if letters in ("s", "S", "T", "rs", "rS", "rT", "Rs"):
        return StatusReport(S.RUNNING, reason="suspended", raw=letters)
    if letters in ("qw", "Rq", "Rqw"):
        return StatusReport(S.SUBMITTED, raw=letters)
    if letters in ("hqw", "hRwq", "hRqw"):
        return StatusReport(S.SUBMITTED, reason="held (waiting for its dependencies)", raw=letters)
    return StatusReport(S.UNKNOWN, reason=f"SGE state {letters!r} is not known to gantry",
                        raw=letters or None)  # fmt: skip


def parse_qstat_xml(text: str) -> dict[str, SgeJob]:
    """Every job of ``qstat -xml`` (running ones under queue_info, pending under job_info)."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise ValueError(f"qstat printed no XML: {exc}") from None
    jobs: dict[str, SgeJob] = {}
    for item in root.iter("job_list"):
        job_id = (item.findtext("JB_job_number") or "").strip()
        if not job_id.isdigit():
            continue
        tasks = (item.findtext("tasks") or "").strip()
        name = (item.findtext("JB_name") or "").strip()
        report = state_report(item.findtext("state") or "")
        if tasks.isdigit() and item.get("state") != "pending":  # an array's task, started
            job = SgeJob(job_id, name, report, task=int(tasks))
        elif tasks and job_id in jobs:  # more of its tasks not started, in another state
            job = replace(jobs[job_id], pending=f"{jobs[job_id].pending},{tasks}")
        else:
            job = SgeJob(job_id, name, report, pending=tasks)
        jobs[job.key] = job
    return jobs


def task_ranges(text: str) -> list[tuple[int, int, int]]:
    """qstat's list of an array's tasks (``1-3:1,7``) as (first, last, step) ranges."""
    ranges = []
    for item in text.split(","):
        span, _, step = item.partition(":")
        first, _, last = span.partition("-")
        if first.isdigit() and (last or first).isdigit():
            ranges.append((int(first), int(last or first), int(step) if step.isdigit() else 1))
    return ranges


def in_ranges(task: int, ranges: list[tuple[int, int, int]]) -> bool:
    return any(a <= task <= b and (task - a) % s == 0 for a, b, s in ranges)


_FIELD = re.compile(r"^(\w+)\s+(.*?)\s*$")
_SIZE = {"B": 1, "KB": 1024, "K": 1024, "MB": 1024**2, "M": 1024**2, "GB": 1024**3,
         "G": 1024**3, "TB": 1024**4}  # fmt: skip


def parse_seconds(text: str) -> float | None:
    """qacct's ``0.005s`` / ``1s`` in seconds."""
    text = text.strip().removesuffix("s")
    try:
        return float(text)
    except ValueError:
        return None


def parse_size(text: str) -> int | None:
    """qacct's ``4.477KB`` / ``3.441MB`` in bytes."""
    match = re.fullmatch(r"([0-9.]+)\s*([KMGT]?B?)", text.strip())
    if match is None:
        return None
    return int(float(match[1]) * _SIZE.get(match[2] or "B", 1))


def parse_maxrss(text: str) -> int | None:
    """qacct's ``ru_maxrss``: getrusage's kilobytes, printed as if they were bytes
    (``4.477KB`` is 4,477 KiB), so scale back by 1000s and count KiB."""
    match = re.fullmatch(r"([0-9.]+)\s*([KMGT]?)B?", text.strip())
    if match is None:
        return None
    scale = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}[match[2]]
    return int(float(match[1]) * scale) * 1024


def parse_qacct(text: str) -> dict[str, SgeJob]:
    """One ended job per ``====`` record of ``qacct -j``; the newest record of an id wins."""
    jobs: dict[str, SgeJob] = {}
    for block in text.split("=" * 62):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            match = _FIELD.match(line)
            if match:
                fields[match[1]] = match[2]
        job_id = fields.get("jobnumber", "")
        if job_id.isdigit():
            task = fields.get("taskid", "")
            job = SgeJob(job_id, fields.get("jobname", ""), ended_report(fields),
                         task=int(task) if task.isdigit() else None)  # fmt: skip
            jobs[job.key] = job
    return jobs


#: accounting(5): where each field is on a line of the accounting file (0-based).
_ACCOUNTING = {"jobname": 4, "failed": 11, "exit_status": 12, "ru_wallclock": 13,
               "ru_utime": 14, "ru_stime": 15, "ru_maxrss": 16}  # fmt: skip
_NUMBER, _START, _END, _TASK = 5, 9, 10, 35


def parse_accounting_line(line: str) -> SgeJob | None:
    """One record of the accounting file (colon-separated; SGE allows no colon in
    names); None for a comment or a line that is not a record."""
    parts = line.rstrip("\n").split(":")
    if len(parts) <= _TASK or line.startswith("#") or not parts[_NUMBER].isdigit():
        return None
    fields = {name: parts[i] for name, i in _ACCOUNTING.items()}
    # ru_maxrss is getrusage's KiB, a bare number here: parse_maxrss reads it as such.
    start, end = (float(parts[i]) if parts[i].isdigit() else 0.0 for i in (_START, _END))
    task = int(parts[_TASK]) if parts[_TASK].isdigit() and int(parts[_TASK]) > 0 else None
    report = ended_report(fields, started_at=start or None, ended_at=end or None)
    return SgeJob(parts[_NUMBER], parts[4], report, task=task)


def ended_report(
    fields: dict[str, str], started_at: float | None = None, ended_at: float | None = None
) -> StatusReport:
    """The final report of one accounting record (qacct's or the file's)."""
    failed_text = fields.get("failed", "0")
    first = failed_text.split()[0] if failed_text.split() else ""
    failed = int(first) if first.isdigit() else -1
    exit_text = fields.get("exit_status", "").split()
    exit_status = int(exit_text[0]) if exit_text and exit_text[0].isdigit() else None
    accounting = Accounting(
        cpu_user=parse_seconds(fields.get("ru_utime", "")),
        cpu_system=parse_seconds(fields.get("ru_stime", "")),
        max_rss=parse_maxrss(fields.get("ru_maxrss", "")),
        wall=parse_seconds(fields.get("ru_wallclock", "")),
    )
    raw = f"failed={failed_text.strip()} exit_status={fields.get('exit_status', '').strip()}"

    def report(status: BackendStatus, reason: str | None = None) -> StatusReport:
        code = exit_status if status is not S.CANCELLED else None
        return StatusReport(status, exit_code=code, reason=reason, raw=raw,
                            accounting=accounting, started_at=started_at,
                            ended_at=ended_at)  # fmt: skip

    if failed == 100:
        # qdel of a running job ("assumedly after job"), exit 137: cancelled.
        return report(S.CANCELLED, "deleted in SGE (qdel)")
    if failed == 37:
        return report(S.FAILED, "walltime exceeded (SGE enforced h_rt, h_cpu or h_vmem)")
    if failed != 0:
        detail = failed_text.partition(":")[2].strip() or f"code {failed_text.strip()}"
        return report(S.FAILED, f"SGE could not run it: {detail}")
    if exit_status == 0:
        return report(S.COMPLETED)
    reason = f"exited {exit_status}" if exit_status is not None else "no exit status"
    if exit_status is not None and exit_status > 128:
        reason = f"killed by signal {exit_status - 128}"
    return report(S.FAILED, reason)
