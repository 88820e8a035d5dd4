"""Grid Engine's answers, parsed: ``qstat -xml`` for live jobs, ``qacct -j`` for ended ones.

qstat knows pending and running jobs only; once a job ends, qmaster forgets
it and the accounting file (read by qacct, which needs no qmaster) has its
record: exit status, the ``failed`` code, CPU times and peak memory.
A state letter combination this module does not know becomes UNKNOWN with
the raw text kept, never an exception.
"""

from __future__ import annotations

import logging
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from gantry.backends.base import Accounting, BackendStatus, StatusReport

log = logging.getLogger(__name__)
S = BackendStatus


@dataclass(frozen=True, slots=True)
class SgeJob:
    """One job as qstat or qacct described it."""

    job_id: str
    name: str
    report: StatusReport


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
        if tasks:
            continue  # array tasks: gantry submits none to SGE yet
        name = (item.findtext("JB_name") or "").strip()
        jobs[job_id] = SgeJob(job_id, name, state_report(item.findtext("state") or ""))
    return jobs


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
            jobs[job_id] = SgeJob(job_id, fields.get("jobname", ""), ended_report(fields))
    return jobs


def ended_report(fields: dict[str, str]) -> StatusReport:
    """The final report of one qacct record."""
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
    if failed == 100 and "after job" in failed_text:
        # qdel of a running job ("assumedly after job"), exit 137: cancelled.
        return StatusReport(S.CANCELLED, reason="deleted in SGE (qdel)", raw=raw,
                            accounting=accounting)  # fmt: skip
    if failed == 37:
        return StatusReport(
            S.FAILED,
            exit_code=exit_status,
            raw=raw,
            accounting=accounting,
            reason="walltime exceeded (SGE enforced h_rt, h_cpu or h_vmem)",
        )
    if failed != 0:
        detail = failed_text.partition(":")[2].strip() or f"code {failed_text.strip()}"
        return StatusReport(S.FAILED, exit_code=exit_status, raw=raw, accounting=accounting,
                            reason=f"SGE could not run it: {detail}")  # fmt: skip
    if exit_status == 0:
        return StatusReport(S.COMPLETED, exit_code=0, raw=raw, accounting=accounting)
    reason = f"exited {exit_status}" if exit_status is not None else "no exit status"
    if exit_status is not None and exit_status > 128:
        reason = f"killed by signal {exit_status - 128}"
    return StatusReport(S.FAILED, exit_code=exit_status, reason=reason, raw=raw,
                        accounting=accounting)  # fmt: skip
