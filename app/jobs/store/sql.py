"""The server's :class:`~gantry.jobs.store.ports.JobStore`: Writer and database.

Writes are operations handed to the :class:`~gantry.jobs.writer.Writer`
(group commit, one thread); reads run on a worker thread of their own.

With several servers on one PostgreSQL, ``owner`` is this server's id: new
jobs are its own, it loads only its own, and a change it writes lands only
on a job it still owns (see :mod:`gantry.jobs.store.owners`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

import anyio
from sqlalchemy import Connection
from sqlalchemy import Engine as Database

from gantry.jobs.spec import NewJob
from gantry.jobs.store import owners
from gantry.jobs.store.read import job_states, load_active_rows
from gantry.jobs.store.records import ActiveRows, Created, Event, Transition
from gantry.jobs.store.write import apply_transitions, insert_job_groups, insert_jobs
from gantry.jobs.writer import Writer


class SqlStore:
    def __init__(self, writer: Writer, database: Database, owner: str | None = None) -> None:
        self.writer = writer
        self.database = database
        #: this server's id when several servers share the database; None: the only one
        self.owner = owner

    async def insert(
        self,
        new_jobs: Sequence[NewJob],
        idempotency: tuple[str, str] | None,
        on_commit: Callable[[Created], None],
    ) -> Created:
        return await self.writer.execute(
            partial(insert_jobs, new_jobs=new_jobs, idempotency=idempotency, owner=self.owner),
            on_commit,
        )

    async def insert_groups(
        self, groups: Sequence[Sequence[NewJob]], on_commit: Callable[[list[Created]], None]
    ) -> list[Created]:
        return await self.writer.execute(
            partial(insert_job_groups, groups=groups, owner=self.owner), on_commit
        )

    async def apply(
        self,
        transitions: Sequence[Transition],
        on_commit: Callable[[list[Event]], None] | None = None,
    ) -> list[Event]:
        return await self.writer.execute(
            partial(apply_transitions, transitions=transitions, owner=self.owner), on_commit
        )

    async def claim(self, intents: Sequence[Transition]) -> set[int]:
        """Write dispatch intents of the jobs this server may hand over; their ids.

        Alone, every intent is written. With several servers, a job is claimed
        with ``FOR UPDATE SKIP LOCKED`` first; one another server owns now, or
        holds locked, is left out (see :func:`owners.claim`).
        """
        owner = self.owner
        if owner is None:
            await self.apply(intents)
            return {t.job_id for t in intents}

        def write(conn: Connection) -> set[int]:
            attempts = {t.job_id: int(t.values["attempt"]) for t in intents}
            claimed = owners.claim(conn, owner, attempts).claimed
            # Locked FOR UPDATE above: no takeover can move them before the commit.
            apply_transitions(conn, [t for t in intents if t.job_id in claimed])
            return claimed

        return await self.writer.execute(write)

    async def request_cancel(self, job_id: int, reason: str) -> str | None:
        """Ask the server that owns a job to cancel it; its state, None if it ended."""
        return await self.writer.execute(
            partial(owners.request_cancel, job_id=job_id, reason=reason)
        )

    async def states(self, job_ids: Sequence[int]) -> dict[int, tuple[str, str]]:
        return await anyio.to_thread.run_sync(self._read_states, job_ids)

    async def load_active(self) -> ActiveRows:
        """This server's unfinished jobs."""
        return await anyio.to_thread.run_sync(self._read_active)

    def _read_states(self, job_ids: Sequence[int]) -> dict[int, tuple[str, str]]:
        with self.database.connect() as conn:
            return job_states(conn, job_ids)

    def _read_active(self) -> ActiveRows:
        with self.database.connect() as conn:
            return load_active_rows(conn, self.owner)
