"""What the poller keeps per tracked job, and how one cycle's answers are combined.

A cycle asks squeue about every tracked job, and sacct about those squeue no
longer has plus those squeue saw end: sacct alone has what an ended job cost
(CPU times, peak memory), so an end squeue saw waits for sacct's record of
it, for at most ``accounting_wait`` seconds (slurmdbd may lag slurmctld).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from gantry.backends.base import BackendStatus
from gantry.backends.slurm.queries import SlurmJob


@dataclass(slots=True)
class PollStats:
    """What the poller did; the benchmark reads it."""

    cycles: int = 0
    commands: int = 0
    max_commands_per_cycle: int = 0
    seconds: float = 0.0
    max_seconds: float = 0.0


@dataclass(slots=True)
class Watch:
    last: BackendStatus | None
    missing_since: float | None = None  # since when sacct, asked, did not know it
    asked: float = 0.0  # when sacct was last asked about it
    ended_since: float | None = None  # since when squeue says it ended and sacct does not


def sacct_turn(
    tracked: Mapping[str, Watch], refs: Sequence[str], in_squeue: Mapping[str, SlurmJob]
) -> list[str]:
    """Whom to ask sacct about, least recently asked first: gone from squeue, or ended there."""
    wanted = [r for r in refs if r not in in_squeue or in_squeue[r].report().status.is_final]
    return sorted(wanted, key=lambda r: w.asked if (w := tracked.get(r)) else 0.0)


def merge_sacct(found: dict[str, SlurmJob], accounted: Mapping[str, SlurmJob]) -> set[str]:
    """Fold sacct's answers into squeue's (in place).

    sacct's word wins once it says a job ended, or if squeue has lost the job.
    Returns the jobs squeue saw end that sacct still has running: their
    accounting is yet to come.
    """
    waiting: set[str] = set()
    for ref, job in accounted.items():
        seen = found.get(ref)
        if seen is None or job.report().status.is_final:
            found[ref] = job
        elif seen.report().status.is_final:
            waiting.add(ref)
    return waiting
