"""A :class:`~gantry.jobs.store.ports.JobStore` in dicts, shipped for tests.

It keeps what the SQL store keeps (rows, dependencies, events, idempotency
keys) with the same rules (unknown dependencies and reused keys are
refused), so an engine built on it schedules exactly as the server's does,
without a database or a writer thread. Every write commits at once; an
engine restarted on the same store recovers what the last one left.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import anyio

from gantry.jobs.spec import NewJob
from gantry.jobs.states import ACTIVE, JobState
from gantry.jobs.store.records import (
    ActiveRows,
    Created,
    Event,
    IdempotencyConflict,
    Transition,
    UnknownDependencies,
    new_job_row,
)
from gantry.jobs.store.write import (
    dependencies_of,
    merge_tasks,
    merge_transitions,
    regroup,
    split_groups,
)
from gantry.models import utcnow

_ACTIVE = {state.value for state in ACTIVE}


class MemoryStore:
    def __init__(self) -> None:
        self.rows: dict[int, dict[str, Any]] = {}
        self.depends_on: dict[int, list[int]] = {}
        self.events: list[Event] = []
        #: (array job id, index) -> its task row
        self.tasks: dict[tuple[int, int], dict[str, Any]] = {}
        self._keys: dict[str, tuple[str, int]] = {}

    # --- the port ---------------------------------------------------------------

    async def insert(
        self,
        new_jobs: Sequence[NewJob],
        idempotency: tuple[str, str] | None,
        on_commit: Callable[[Created], None],
    ) -> Created:
        await anyio.lowlevel.checkpoint()  # a write is never synchronous
        created = self._insert(new_jobs, idempotency)
        on_commit(created)
        return created

    async def insert_groups(
        self, groups: Sequence[Sequence[NewJob]], on_commit: Callable[[list[Created]], None]
    ) -> list[Created]:
        await anyio.lowlevel.checkpoint()
        flat, bounds = split_groups(groups)
        created = regroup(self._insert(flat, None), bounds)
        on_commit(created)
        return created

    async def apply(
        self,
        transitions: Sequence[Transition],
        on_commit: Callable[[list[Event]], None] | None = None,
    ) -> list[Event]:
        await anyio.lowlevel.checkpoint()
        for job_id, values in merge_transitions(transitions).items():
            self.rows[job_id].update(values)
        for key, values in merge_tasks(transitions).items():
            self.tasks.setdefault(key, {}).update(values)
        events = [
            self._event(t.job_id, t.at, t.from_state, t.to_state, t.message)
            for t in transitions
            if t.to_state is not None
        ]
        if on_commit is not None:
            on_commit(events)
        return events

    async def claim(self, intents: Sequence[Transition]) -> set[int]:
        """One server: every dispatch intent is written and claimed."""
        await self.apply(intents)
        return {t.job_id for t in intents}

    async def request_cancel(self, job_id: int, reason: str) -> str | None:
        """One server owns every job: no other one is ever asked."""
        await anyio.lowlevel.checkpoint()
        row = self.rows.get(job_id)
        return row["state"] if row is not None and row["state"] in _ACTIVE else None

    async def states(self, job_ids: Sequence[int]) -> dict[int, tuple[str, str]]:
        await anyio.lowlevel.checkpoint()
        return self._states(job_ids)

    async def load_active(self) -> ActiveRows:
        await anyio.lowlevel.checkpoint()
        rows = [dict(row) for _, row in sorted(self.rows.items()) if row["state"] in _ACTIVE]
        ids = {row["id"] for row in rows}
        deps = {i: list(self.depends_on[i]) for i in sorted(ids) if i in self.depends_on}
        ended = {d for ds in deps.values() for d in ds} - ids
        tasks: dict[int, dict[int, str]] = {}
        for (job_id, index), task in sorted(self.tasks.items()):
            if job_id in ids:
                tasks.setdefault(job_id, {})[index] = task["state"]
        costs: dict[int, tuple[float | None, float | None, int | None]] = {}
        for (job_id, _), task in self.tasks.items():
            if job_id in ids and task.get("cpu_user_seconds") is not None:
                user, system, rss = costs.get(job_id, (0.0, 0.0, None))
                peak = max(rss or 0, task.get("max_rss_bytes") or 0) or None
                costs[job_id] = (
                    (user or 0.0) + task["cpu_user_seconds"],
                    (system or 0.0) + (task.get("cpu_system_seconds") or 0.0),
                    peak,
                )
        return ActiveRows(rows, deps, self._states(sorted(ended)), tasks, costs)

    # --- for tests ----------------------------------------------------------------

    def state(self, job_id: int) -> str:
        return str(self.rows[job_id]["state"])

    def events_of(self, job_id: int) -> list[Event]:
        return [e for e in self.events if e["job_id"] == job_id]

    # --- inside -----------------------------------------------------------------

    def _states(self, job_ids: Sequence[int]) -> dict[int, tuple[str, str]]:
        return {i: (self.rows[i]["state"], self.rows[i]["name"]) for i in job_ids if i in self.rows}

    def _insert(self, new_jobs: Sequence[NewJob], idempotency: tuple[str, str] | None) -> Created:
        if idempotency is not None and idempotency[0] in self._keys:
            body_hash, job_id = self._keys[idempotency[0]]
            if body_hash != idempotency[1]:
                raise IdempotencyConflict(idempotency[0], job_id)
            row = dict(self.rows[job_id])
            deps = {job_id: self.depends_on[job_id]} if job_id in self.depends_on else {}
            return Created([job_id], [], row["created_at"], deps, {}, [], replayed_row=row)
        existing = sorted({i for job in new_jobs for i in job.after_ids})
        states = self._states(existing)
        missing = [i for i in existing if i not in states]
        if missing:
            raise UnknownDependencies(missing)
        now = utcnow()
        first = max(self.rows, default=0) + 1
        ids = list(range(first, first + len(new_jobs)))
        for job_id, new in zip(ids, new_jobs, strict=True):
            self.rows[job_id] = new_job_row(job_id, new, now)
        depends_on = dependencies_of(ids, new_jobs)
        self.depends_on.update(depends_on)
        queued = JobState.QUEUED.value
        events = [self._event(i, now, None, queued, "submitted to gantry") for i in ids]
        if idempotency is not None:
            self._keys[idempotency[0]] = (idempotency[1], ids[0])
        return Created(ids, new_jobs, now, depends_on, states, events)

    def _event(
        self, job_id: int, at: Any, from_state: str | None, to_state: str | None, message: Any
    ) -> Event:
        event = {
            "id": len(self.events) + 1,
            "job_id": job_id,
            "at": at,
            "from_state": from_state,
            "to_state": to_state,
            "message": message,
        }
        self.events.append(event)
        return event
