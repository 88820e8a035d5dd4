"""The engine's in-memory picture of one job that has not ended."""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Any

from gantry.backends.base import JobSubmission
from gantry.jobs.arrays import parse_stored
from gantry.jobs.spec import JobSpec, spec_of_row
from gantry.jobs.states import JobState
from gantry.jobs.taskstate import TaskProgress

_STATES = {state.value: state for state in JobState}
NOTHING: AbstractSet[int] = frozenset()


@dataclass(slots=True, eq=False)
class ActiveJob:
    id: int
    #: what was asked for (for a new job: its NewJob itself, shared, never copied)
    spec: JobSpec
    state: JobState
    attempt: int = 0
    ref: str | None = None
    #: epoch seconds before which a retry may not be dispatched
    not_before: float | None = None
    #: the dispatch intent is committed but the backend's ref is not
    in_flight: bool = False
    #: ids of dependencies that have not completed yet (see :meth:`wait_for`)
    waiting_on: AbstractSet[int] = NOTHING
    #: ids of jobs that wait for this one (see :meth:`add_dependent`)
    dependents: AbstractSet[int] = NOTHING
    #: the intent is written and ``Backend.submit`` is in flight
    dispatching: bool = False
    #: why a cancel was asked for while ``dispatching``
    cancel_reason: str | None = None
    #: the backend's view of one attempt, built once for hold, submit and adopt
    submission: JobSubmission | None = None
    #: an array job's tasks (see :mod:`gantry.jobs.tasks`); None for other jobs
    tasks: TaskProgress | None = None
    #: epoch seconds it was submitted (its row's ``created_at``), for the meter
    created: float = 0.0

    def track_tasks(self) -> None:
        """Give an array job its task progress (none started yet)."""
        if self.spec.array is not None and self.tasks is None:
            self.tasks = TaskProgress(parse_stored(self.spec.array).count)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def backend(self) -> str:
        return self.spec.backend

    @property
    def priority(self) -> int:
        return self.spec.priority

    # The two id sets start as one shared empty frozenset and become sets of
    # their own when first added to: most of 100,000 queued jobs need none.

    def wait_for(self, dependency_id: int) -> None:
        if not isinstance(self.waiting_on, set):
            self.waiting_on = set()
        self.waiting_on.add(dependency_id)

    def stop_waiting_for(self, dependency_id: int) -> None:
        if isinstance(self.waiting_on, set):
            self.waiting_on.discard(dependency_id)

    def add_dependent(self, job_id: int) -> None:
        if not isinstance(self.dependents, set):
            self.dependents = set()
        self.dependents.add(job_id)

    @property
    def key(self) -> str:
        return f"{self.id}.{self.attempt}"

    @property
    def label(self) -> str:
        return f"{self.id} ({self.spec.name})"

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> ActiveJob:
        """A job as stored (start-up reconciliation)."""
        job = cls(
            id=row["id"],
            spec=spec_of_row(row),
            state=_STATES[row["state"]],
            attempt=row["attempt"],
            ref=row["backend_ref"],
            in_flight=bool(row.get("in_flight")),
            not_before=row["not_before"].timestamp() if row.get("not_before") else None,
            cancel_reason=row.get("reason") if row["state"] == JobState.CANCELLING else None,
            created=row["created_at"].timestamp(),
        )
        job.track_tasks()
        return job
