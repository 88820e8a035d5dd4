"""Job states and the transitions allowed between them (DESIGN.md, "States")."""

from __future__ import annotations

import enum


class JobState(enum.StrEnum):
    QUEUED = "queued"
    SUBMITTED = "submitted"
    RUNNING = "running"
    CANCELLING = "cancelling"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED})
ACTIVE = frozenset(JobState) - TERMINAL

_ALLOWED: dict[JobState, frozenset[JobState]] = {
    JobState.QUEUED: frozenset(
        {JobState.SUBMITTED, JobState.RUNNING, JobState.CANCELLING, JobState.FAILED}
    ),
    JobState.SUBMITTED: frozenset(
        {
            JobState.RUNNING,
            JobState.COMPLETED,
            JobState.FAILED,
            JobState.CANCELLING,
            JobState.QUEUED,
        }
    ),
    JobState.RUNNING: frozenset(
        {JobState.COMPLETED, JobState.FAILED, JobState.CANCELLING, JobState.QUEUED}
    ),
    JobState.CANCELLING: frozenset({JobState.CANCELLED, JobState.COMPLETED, JobState.FAILED}),
}


def can_move(src: JobState, dst: JobState) -> bool:
    """Terminal states never change; ``* -> queued`` is a retry of a new attempt."""
    return dst in _ALLOWED.get(src, frozenset())
