"""The engine's in-memory picture of one job that has not ended."""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any

from gantry.jobs.states import JobState
from gantry.jobs.store import NewJob

_STATES = {state.value: state for state in JobState}
NOTHING: AbstractSet[int] = frozenset()


@dataclass(slots=True, eq=False)
class ActiveJob:
    id: int
    name: str
    backend: str
    state: JobState
    priority: int = 0
    attempt: int = 0
    ref: str | None = None
    spec: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    working_dir: str | None = None
    payload: dict[str, Any] | None = None
    max_retries: int = 0
    retry_delay: float = 10.0
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
        return f"{self.id} ({self.name})"

    @classmethod
    def from_new(cls, job_id: int, new: NewJob) -> ActiveJob:
        """A job just inserted by :func:`~gantry.jobs.store.insert_jobs`."""
        return cls(
            id=job_id,
            name=new.name,
            backend=new.backend,
            state=JobState.QUEUED,
            priority=new.priority,
            spec=new.spec,
            # Shared with the other jobs of its batch: never mutated.
            options=new.options,
            env=new.env,
            working_dir=new.working_dir,
            payload=new.payload,
            max_retries=new.max_retries,
            retry_delay=new.retry_delay,
        )

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> ActiveJob:
        return cls(
            id=row["id"],
            name=row["name"],
            backend=row["backend"],
            state=_STATES[row["state"]],
            priority=row["priority"],
            attempt=row["attempt"],
            ref=row["backend_ref"],
            spec=row["spec"],
            options=row["options"] or {},
            env=row["env"] or {},
            working_dir=row["working_dir"],
            payload=row.get("payload"),
            max_retries=row.get("max_retries", 0),
            retry_delay=row.get("retry_delay", 10.0),
            in_flight=bool(row.get("in_flight")),
            not_before=row["not_before"].timestamp() if row.get("not_before") else None,
            cancel_reason=row.get("reason") if row["state"] == JobState.CANCELLING else None,
        )
