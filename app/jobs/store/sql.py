"""The server's :class:`~gantry.jobs.store.ports.JobStore`: Writer and database.

Writes are operations handed to the :class:`~gantry.jobs.writer.Writer`
(group commit, one thread); reads run on a worker thread of their own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

import anyio
from sqlalchemy import Engine as Database

from gantry.jobs.spec import NewJob
from gantry.jobs.store.read import job_states, load_active_rows
from gantry.jobs.store.records import ActiveRows, Created, Event, Transition
from gantry.jobs.store.write import apply_transitions, insert_job_groups, insert_jobs
from gantry.jobs.writer import Writer


class SqlStore:
    def __init__(self, writer: Writer, database: Database) -> None:
        self.writer = writer
        self.database = database

    async def insert(
        self,
        new_jobs: Sequence[NewJob],
        idempotency: tuple[str, str] | None,
        on_commit: Callable[[Created], None],
    ) -> Created:
        return await self.writer.execute(
            partial(insert_jobs, new_jobs=new_jobs, idempotency=idempotency), on_commit
        )

    async def insert_groups(
        self, groups: Sequence[Sequence[NewJob]], on_commit: Callable[[list[Created]], None]
    ) -> list[Created]:
        return await self.writer.execute(partial(insert_job_groups, groups=groups), on_commit)

    async def apply(
        self,
        transitions: Sequence[Transition],
        on_commit: Callable[[list[Event]], None] | None = None,
    ) -> list[Event]:
        return await self.writer.execute(
            partial(apply_transitions, transitions=transitions), on_commit
        )

    async def states(self, job_ids: Sequence[int]) -> dict[int, tuple[str, str]]:
        return await anyio.to_thread.run_sync(self._read_states, job_ids)

    async def load_active(self) -> ActiveRows:
        return await anyio.to_thread.run_sync(self._read_active)

    def _read_states(self, job_ids: Sequence[int]) -> dict[int, tuple[str, str]]:
        with self.database.connect() as conn:
            return job_states(conn, job_ids)

    def _read_active(self) -> ActiveRows:
        with self.database.connect() as conn:
            return load_active_rows(conn)
