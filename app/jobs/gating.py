"""Dependency gating: a job goes to its dispatcher only once nothing holds it back.

Slurm's ``afterok``: a job runs after its dependencies completed; one that
ended ``failed`` or ``cancelled`` cancels its dependents, with a reason naming
it. A backend that chains jobs itself (``supports_dependencies``) gets a job
as soon as its dependencies on the same backend have refs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Protocol

from gantry.backends.base import Backend
from gantry.jobs.active import ActiveJob
from gantry.jobs.registry import ActiveJobs
from gantry.jobs.states import ACTIVE, JobState

#: How an ended dependency is looked up: id -> (state, name).
EndedLookup = Callable[[int], tuple[str, str]]
_UNFINISHED = frozenset(s.value for s in ACTIVE)


class DispatchQueue(Protocol):
    """Where a ready job goes (one per backend)."""

    def push(self, job: ActiveJob) -> None: ...


class Gate:
    def __init__(
        self,
        active: ActiveJobs,
        backends: Mapping[str, Backend],
        queues: Mapping[str, DispatchQueue],
        cancel: Callable[[ActiveJob, str], None],
    ) -> None:
        self._active = active
        self._backends = backends
        self._queues = queues
        self._cancel = cancel
        #: dependencies another server runs (several servers) -> ids of my jobs waiting
        self.foreign: dict[int, set[int]] = {}

    def consider(self, job: ActiveJob) -> None:
        """Queue ``job`` for dispatch if nothing holds it back any more."""
        if job.state is not JobState.QUEUED or job.dispatching or job.ref is not None:
            return
        if job.not_before is not None and job.not_before > time.time():
            return  # a retry timer considers it again
        queue = self._queues.get(job.backend)
        if queue is None:
            return  # its backend is not available; the job waits with a reason
        jobs = self._active.jobs
        # A dependency another server runs (not in ``jobs``) holds the job back.
        if all(d in jobs and self._dependency_allows(job, jobs[d]) for d in job.waiting_on):
            queue.push(job)

    def consider_new(self, jobs: Iterable[ActiveJob]) -> None:
        """Jobs just submitted: only those that may be ready are checked."""
        chains = {name for name, b in self._backends.items() if b.supports_dependencies}
        for job in jobs:
            # A job waiting for an unfinished dependency on a backend that does
            # not chain jobs is not ready: skip the check (most of a big batch).
            if job.state is JobState.QUEUED and (not job.waiting_on or job.backend in chains):
                self.consider(job)

    def _dependency_allows(self, job: ActiveJob, dep: ActiveJob) -> bool:
        """An unfinished dependency holds a job back unless the backend chains them."""
        backend = self._backends.get(job.backend)
        return (
            backend is not None
            and backend.supports_dependencies
            and dep.backend == job.backend
            and dep.ref is not None
            and not dep.dispatching
        )

    def dependency_refs(self, job: ActiveJob) -> list[str]:
        jobs = self._active.jobs
        return sorted(jobs[d].ref or "" for d in job.waiting_on if d in jobs)

    def link(self, depends_on: Mapping[int, Sequence[int]], ended: EndedLookup) -> None:
        """Wire jobs to the dependencies they wait for; cancel those an ended one dooms."""
        jobs = self._active.jobs
        doomed: list[tuple[ActiveJob, str]] = []
        for job_id, dep_ids in depends_on.items():
            job = jobs[job_id]
            for dep_id in dep_ids:
                dep = jobs.get(dep_id)
                if dep is not None:
                    job.wait_for(dep_id)
                    dep.add_dependent(job_id)
                    continue
                state, name = ended(dep_id)
                if state in _UNFINISHED:  # another server runs it: asked after again
                    job.wait_for(dep_id)
                    self.foreign.setdefault(dep_id, set()).add(job_id)
                elif state != JobState.COMPLETED:
                    doomed.append((job, f"dependency {dep_id} ({name}) {state}"))
        for job, reason in doomed:
            self._cancel(job, reason)

    def foreign_ended(self, dep_id: int, state: str, name: str) -> None:
        """A dependency another server ran has ended: its dependents here go, or are cancelled."""
        jobs = self._active.jobs
        for dependent_id in sorted(self.foreign.pop(dep_id, ())):
            dependent = jobs.get(dependent_id)
            if dependent is None:
                continue
            dependent.stop_waiting_for(dep_id)
            if state == JobState.COMPLETED:
                self.consider(dependent)
            else:
                self._cancel(dependent, f"dependency {dep_id} ({name}) {state}")

    def handed_over(self, job: ActiveJob) -> None:
        """``job`` has a ref now: dependents on a chaining backend may go."""
        jobs = self._active.jobs
        for dependent_id in job.dependents:
            dependent = jobs.get(dependent_id)
            if dependent is not None:
                self.consider(dependent)

    def ended(self, job: ActiveJob) -> None:
        """``job`` reached a final state: its dependents go, or are cancelled."""
        jobs = self._active.jobs
        for dependent_id in sorted(job.dependents):
            dependent = jobs.get(dependent_id)
            if dependent is None:
                continue
            dependent.stop_waiting_for(job.id)
            if job.state is JobState.COMPLETED:
                self.consider(dependent)
            else:
                self._cancel(dependent, f"dependency {job.label} {job.state.value}")
