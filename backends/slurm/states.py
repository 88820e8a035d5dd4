"""Slurm's job states and exit codes, turned into gantry's ``StatusReport``.

Slurm names a state in full (``squeue -O State``, sacct: ``CANCELLED by 0``)
or compactly (``squeue -o %t``: ``CA``); both are understood. A state this
module does not know becomes ``UNKNOWN`` with the raw word kept, never an
exception: Slurm adds states between releases.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass

from gantry.backends.base import BackendStatus, StatusReport

S = BackendStatus

#: Full state name -> (status, reason for people or None).
STATES: dict[str, tuple[BackendStatus, str | None]] = {
    "PENDING": (S.SUBMITTED, None),
    "CONFIGURING": (S.SUBMITTED, "nodes are being configured"),
    "REQUEUED": (S.SUBMITTED, "requeued"),
    "REQUEUE_FED": (S.SUBMITTED, "requeued (federation)"),
    "REQUEUE_HOLD": (S.SUBMITTED, "requeued and held"),
    "RESV_DEL_HOLD": (S.SUBMITTED, "held: its reservation was deleted"),
    "RUNNING": (S.RUNNING, None),
    "COMPLETING": (S.RUNNING, "completing"),
    "SUSPENDED": (S.RUNNING, "suspended"),
    "STOPPED": (S.RUNNING, "stopped"),
    "RESIZING": (S.RUNNING, "resizing"),
    "SIGNALING": (S.RUNNING, "being signalled"),
    "STAGE_OUT": (S.RUNNING, "staging out"),
    "COMPLETED": (S.COMPLETED, None),
    "FAILED": (S.FAILED, None),
    "TIMEOUT": (S.FAILED, "walltime exceeded"),
    "OUT_OF_MEMORY": (S.FAILED, "out of memory"),
    "NODE_FAIL": (S.FAILED, "its node failed"),
    "BOOT_FAIL": (S.FAILED, "its node failed to boot"),
    "DEADLINE": (S.FAILED, "deadline reached before it could run"),
    "PREEMPTED": (S.FAILED, "preempted by Slurm"),
    "SPECIAL_EXIT": (S.FAILED, "special exit: held by Slurm for requeue"),
    "LAUNCH_FAILED": (S.FAILED, "Slurm could not launch it"),
    "CANCELLED": (S.CANCELLED, None),
    "REVOKED": (S.CANCELLED, "revoked: it runs on another cluster of the federation"),
}

#: squeue's compact codes (``%t``).
COMPACT = {
    "PD": "PENDING", "CF": "CONFIGURING", "RQ": "REQUEUED", "RF": "REQUEUE_FED",
    "RH": "REQUEUE_HOLD", "RD": "RESV_DEL_HOLD", "R": "RUNNING", "CG": "COMPLETING",
    "S": "SUSPENDED", "ST": "STOPPED", "RS": "RESIZING", "SI": "SIGNALING",
    "SO": "STAGE_OUT", "CD": "COMPLETED", "F": "FAILED", "TO": "TIMEOUT",
    "OOM": "OUT_OF_MEMORY", "NF": "NODE_FAIL", "BF": "BOOT_FAIL", "DL": "DEADLINE",
    "PR": "PREEMPTED", "SE": "SPECIAL_EXIT", "CA": "CANCELLED", "RV": "REVOKED",
}  # fmt: skip

#: Slurm "reasons" worth a sentence of their own.
REASONS = {
    "DependencyNeverSatisfied": "a dependency failed, so Slurm cancelled it",
    "Dependency": "waiting for its dependencies",
    "Resources": "waiting for resources",
    "Priority": "waiting for higher-priority jobs",
    "BeginTime": "waiting for its start time",
    "JobHeldUser": "held by its user",
    "JobHeldAdmin": "held by an administrator",
    "PartitionDown": "its partition is down",
    "PartitionInactive": "its partition is inactive",
}

_NO_REASON = {"", "None", "NONE", "(null)"}


def state_name(raw: str) -> str:
    """``'CANCELLED by 0'`` -> ``'CANCELLED'``; ``'CA'`` -> ``'CANCELLED'``."""
    words = raw.split()
    word = words[0].rstrip("+").upper() if words else ""
    return COMPACT.get(word, word)


@dataclass(frozen=True, slots=True)
class ExitInfo:
    """A job's exit: the code its script returned, or the signal that killed it."""

    code: int
    signal: int = 0

    @property
    def exit_code(self) -> int:
        """The shell's convention: 128 + signal for a killed job."""
        return 128 + self.signal if self.signal else self.code

    def describe(self) -> str:
        if self.signal:
            try:
                name = signal.Signals(self.signal).name
            except ValueError:
                name = f"signal {self.signal}"
            return f"killed by {name}"
        return f"exited {self.code}"


def parse_exit_code(text: str) -> ExitInfo | None:
    """sacct's ``ExitCode`` (``'1:0'``, ``'0:9'``); None if not a code."""
    code, colon, sig = text.strip().partition(":")
    if not code.isdigit() or (colon and not sig.isdigit()):
        return None
    return ExitInfo(int(code), int(sig) if sig else 0)


def parse_wait_status(text: str) -> ExitInfo | None:
    """squeue's ``exit_code`` field: a raw wait(2) status (256 = exit 1)."""
    text = text.strip()
    if not text.isdigit():
        return None
    status = int(text)
    return ExitInfo((status >> 8) & 0xFF, status & 0x7F)


def parse_time(text: str) -> float | None:
    """Seconds since the epoch (we set ``SLURM_TIME_FORMAT=%s``); None if unset."""
    text = text.strip()
    return float(text) if text.isdigit() and text != "0" else None


def to_report(
    raw_state: str,
    exit_info: ExitInfo | None = None,
    slurm_reason: str = "",
    started_at: float | None = None,
    ended_at: float | None = None,
) -> StatusReport:
    """One report from what squeue or sacct said about a job."""
    name = state_name(raw_state)
    status, reason = STATES.get(name, (BackendStatus.UNKNOWN, None))
    slurm_reason = slurm_reason.strip()
    if status is BackendStatus.UNKNOWN:
        reason = f"Slurm state {raw_state.strip()!r} is not known to gantry"
    elif slurm_reason not in _NO_REASON and (reason is None or name == "CANCELLED"):
        reason = REASONS.get(slurm_reason, reason)
    if name == "CANCELLED" and reason is None:
        by = raw_state.split(" by ", 1)
        reason = f"cancelled in Slurm by uid {by[1].strip()}" if len(by) == 2 else None
    if status is BackendStatus.FAILED and reason is None and exit_info is not None:
        reason = exit_info.describe()
    final = status.is_final
    # A cancelled job's code says only how Slurm stopped it (or 0 if it never ran).
    has_code = exit_info is not None and status in (BackendStatus.COMPLETED, BackendStatus.FAILED)
    return StatusReport(
        status=status,
        exit_code=exit_info.exit_code if exit_info is not None and has_code else None,
        reason=reason,
        raw=raw_state.strip() or None,
        started_at=started_at,
        ended_at=ended_at if final else None,
    )


_MEMORY_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4, "P": 1024**5}


def parse_cpu_time(text: str) -> float | None:
    """sacct's CPU times (``[DD-][HH:]MM:SS[.mmm]``, e.g. ``00:01.245``) in seconds."""
    text = text.strip()
    days, _, clock = text.rpartition("-")
    parts = clock.split(":")
    try:
        seconds = float(parts[-1])
        minutes = int(parts[-2]) if len(parts) >= 2 else 0
        hours = int(parts[-3]) if len(parts) >= 3 else 0
        whole_days = int(days) if days else 0
    except ValueError:
        return None
    if len(parts) > 3 or not text:
        return None
    return ((whole_days * 24 + hours) * 60 + minutes) * 60 + seconds


def parse_memory(text: str) -> int | None:
    """sacct's MaxRSS (``221336K``, ``1.50G``, ``0``) in bytes; None if empty."""
    text = text.strip().upper()
    number, unit = (text[:-1], text[-1]) if text[-1:].isalpha() else (text, "")
    if unit not in _MEMORY_UNITS:
        return None
    try:
        return int(float(number) * _MEMORY_UNITS[unit])
    except ValueError:
        return None
