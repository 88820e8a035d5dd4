"""Intake: new jobs are stored, then taken on by the engine at commit.

Single submits that arrive while an earlier group is being written are
inserted together (one INSERT per table for all of them): per-statement
cost, not per-job cost, is what limits one-job-per-request submits.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from gantry.jobs.active import ActiveJob
from gantry.jobs.gating import Gate
from gantry.jobs.registry import ActiveJobs
from gantry.jobs.spec import NewJob
from gantry.jobs.states import JobState
from gantry.jobs.store.ports import JobStore
from gantry.jobs.store.records import Created, Event


def _settle(future: asyncio.Future[Any], outcome: Any) -> None:
    if future.done():  # the caller went away; the write stands
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


class Intake:
    def __init__(
        self,
        store: JobStore,
        active: ActiveJobs,
        gate: Gate,
        publish: Callable[[Sequence[Event]], None],
    ) -> None:
        self._store = store
        self._active = active
        self._gate = gate
        self._publish = publish
        self._submissions: list[tuple[Sequence[NewJob], asyncio.Future[Created]]] = []
        self._submitting = False
        self._writing: asyncio.Task[None] | None = None

    async def submit(
        self, new_jobs: Sequence[NewJob], idempotency: tuple[str, str] | None = None
    ) -> Created:
        """Store jobs in one transaction; the engine takes them on at commit."""
        if idempotency is not None:
            return await self._store.insert(new_jobs, idempotency, self.adopt)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Created] = loop.create_future()
        self._submissions.append((new_jobs, future))
        if not self._submitting:
            self._submitting = True
            # Kept: the loop holds tasks only weakly.
            self._writing = loop.create_task(self._write_submissions())
        return await future

    async def _write_submissions(self) -> None:
        try:
            while self._submissions:
                group, self._submissions = self._submissions, []
                try:
                    created = await self._store.insert_groups(
                        [jobs for jobs, _ in group], self._adopt_all
                    )
                except Exception as exc:
                    if len(group) == 1:
                        _settle(group[0][1], exc)
                        continue
                    # One bad submission (an unknown dependency) fails alone.
                    for jobs, future in group:
                        try:
                            one = await self._store.insert(jobs, None, self.adopt)
                        except Exception as error:
                            _settle(future, error)
                        else:
                            _settle(future, one)
                    continue
                for (_, future), one in zip(group, created, strict=True):
                    _settle(future, one)
        finally:
            self._submitting = False

    def _adopt_all(self, results: list[Created]) -> None:
        for created in results:
            self.adopt(created)

    def adopt(self, created: Created) -> None:
        """Jobs just committed become active: wired to their dependencies, considered."""
        if created.replayed:
            return
        self._publish(created.events)
        add = self._active.add
        at = created.at.timestamp()
        adopted = [
            ActiveJob(job_id, new, JobState.QUEUED, created=at)
            for job_id, new in zip(created.ids, created.new, strict=True)
        ]
        for job in adopted:
            add(job)
            if job.spec.array is not None:
                job.track_tasks()
        if created.depends_on:
            final, read = self._active.final_states, created.dependency_states
            self._gate.link(created.depends_on, lambda dep_id: final.get(dep_id) or read[dep_id])
        self._gate.consider_new(adopted)
