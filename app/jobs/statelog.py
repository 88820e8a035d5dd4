"""The state log: every state change in memory first, then written in batches.

:meth:`StateLog.move` changes a job's state at once (the engine's truth) and
queues the transition; the flusher writes what piled up in one store write,
an event row per change, and publishes the events once committed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import anyio

from gantry.jobs.active import ActiveJob
from gantry.jobs.states import JobState, can_move
from gantry.jobs.store.outage import is_outage
from gantry.jobs.store.ports import JobStore
from gantry.jobs.store.records import Event, Transition

log = logging.getLogger(__name__)


class StateLog:
    def __init__(
        self,
        store: JobStore,
        publish: Callable[[Sequence[Event]], None],
        on_final: Callable[[ActiveJob], None],
    ) -> None:
        self._store = store
        self._publish = publish
        #: called once a job reached a final state (in memory)
        self._on_final = on_final
        self._pending: list[Transition] = []
        self._wanted = anyio.Event()

    def move(self, job: ActiveJob, to: JobState, message: str | None, **values: Any) -> bool:
        """Change a job's state in memory and queue its write; False if not allowed."""
        if not can_move(job.state, to):
            log.debug("job %s: ignoring %s -> %s", job.label, job.state, to)
            return False
        if to.is_terminal or message is not None:
            values.setdefault("reason", message)
        self._pending.append(Transition(job.id, job.state.value, to.value, message, values))
        job.state = to
        self._wanted.set()
        if to.is_terminal:
            self._on_final(job)
        return True

    def write(self, job_id: int, **values: Any) -> None:
        """Queue a column change that is not a state change (no event)."""
        self._pending.append(Transition(job_id, None, None, None, values))
        self._wanted.set()

    def write_task(self, job_id: int, index: int, **values: Any) -> None:
        """Queue the row of one task of an array job (written with the batch it joins)."""
        self._pending.append(Transition(job_id, None, None, None, values, task=index))
        self._wanted.set()

    async def run(self) -> None:
        """Write what piles up, batch after batch, until cancelled."""
        while True:
            await self._wanted.wait()
            self._wanted = anyio.Event()
            batch, self._pending = self._pending, []
            if batch:
                await self._flush(batch)

    async def drain(self) -> None:
        """Write every pending change now (shutdown, start-up, tests)."""
        batch, self._pending = self._pending, []
        if batch:
            await self._flush(batch)

    async def _flush(self, batch: list[Transition]) -> None:
        try:
            await self._store.apply(batch, self._publish)
        except Exception as exc:
            if not is_outage(exc):
                log.exception("could not write %d state changes", len(batch))
                return
            # The database is away: keep the changes (first) and write them once it is back.
            log.warning("database unavailable; %d state changes wait: %s", len(batch), exc)
            self._pending[:0] = batch
            await anyio.sleep(1.0)
            self._wanted.set()
