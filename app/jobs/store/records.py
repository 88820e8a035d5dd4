"""What the write path hands back: new jobs' ids and rows, state changes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gantry.jobs.spec import SPEC_FIELDS, NewJob
from gantry.jobs.states import JobState
from gantry.models import utcnow

Event = dict[str, Any]

#: The columns of a new job that its :class:`NewJob` gives.
NEW_JOB_FIELDS = (*SPEC_FIELDS, "warnings")
#: The other columns of a new job, but for ``id`` and the two times.
INITIAL_VALUES: dict[str, Any] = {
    "state": JobState.QUEUED.value,
    "reason": None,
    "backend_ref": None,
    "exit_code": None,
    "attempt": 0,
    "started_at": None,
    "ended_at": None,
    "in_flight": False,
    "not_before": None,
}
#: The columns of an event but its id, as :class:`Transition` names them.
EVENT_COLUMNS = ("job_id", "at", "from_state", "to_state", "message")


def new_job_row(job_id: int, job: NewJob, at: datetime) -> dict[str, Any]:
    """The row :func:`insert_jobs` stored for ``job``, as :func:`get_job` reads it."""
    row = {"id": job_id, **{key: getattr(job, key) for key in NEW_JOB_FIELDS}}
    return {**row, **INITIAL_VALUES, "created_at": at, "updated_at": at}


@dataclass(frozen=True, slots=True)
class Created:
    """What :func:`insert_jobs` made: ids, their dependencies, and deps' states.

    ``new[k]`` was stored as job ``ids[k]`` at ``at``; a replayed submission
    has no new jobs and carries the stored row instead.
    """

    ids: list[int]
    new: Sequence[NewJob]
    at: datetime
    depends_on: dict[int, list[int]]
    #: id -> (state, name) of each dependency named by id
    dependency_states: dict[int, tuple[str, str]]
    events: list[Event]
    #: the job existed already (same Idempotency-Key and body): nothing was made
    replayed_row: dict[str, Any] | None = None

    @property
    def replayed(self) -> bool:
        return self.replayed_row is not None

    def rows(self) -> list[dict[str, Any]]:
        """The stored rows (built on demand: a big batch's caller needs only ids)."""
        if self.replayed_row is not None:
            return [self.replayed_row]
        return [new_job_row(i, job, self.at) for i, job in zip(self.ids, self.new, strict=True)]


@dataclass(slots=True)
class Transition:
    """One state change of one job, plus columns that change with it.

    ``to_state=None`` changes only columns and writes no event.
    """

    job_id: int
    from_state: str | None
    to_state: str | None
    message: str | None = None
    values: dict[str, Any] = field(default_factory=dict)
    at: datetime = field(default_factory=utcnow)
    #: a change of task ``task`` of array job ``job_id`` (an ``array_task`` row), not of the job
    task: int | None = None


@dataclass(frozen=True, slots=True)
class ActiveRows:
    """What start-up reconciliation reads: every unfinished job and its dependencies."""

    rows: list[dict[str, Any]]
    #: job id -> ids of the jobs it runs after
    depends_on: dict[int, list[int]]
    #: id -> (state, name) of the dependencies that have ended
    ended: dict[int, tuple[str, str]]
    #: array job id -> {task index: state} of its tasks that started
    tasks: dict[int, dict[int, str]] = field(default_factory=dict)
    #: array job id -> its ended tasks' (CPU user s, CPU system s, largest peak RSS)
    task_costs: dict[int, tuple[float | None, float | None, int | None]] = field(
        default_factory=dict
    )


class IdempotencyConflict(RuntimeError):
    """An ``Idempotency-Key`` was used before with a different body."""

    def __init__(self, key: str, job_id: int) -> None:
        super().__init__(
            f"Idempotency-Key {key!r} was used for job {job_id} with a different body: "
            "use a new key for a new job"
        )
        self.job_id = job_id


class UnknownDependencies(LookupError):
    """Some ``depends_on`` ids name no job."""

    def __init__(self, missing: Sequence[int]) -> None:
        self.missing = sorted(missing)
        super().__init__(f"unknown job ids in depends_on: {self.missing}")
