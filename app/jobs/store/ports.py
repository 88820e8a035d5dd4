"""What the engine needs of its storage: the :class:`JobStore` port.

:class:`~gantry.jobs.store.sql.SqlStore` is the server's (the Writer's group
commits over the database); :class:`~gantry.jobs.store.memory.MemoryStore`
keeps everything in dicts for fast unit tests of the scheduling rules.

``on_commit`` hooks run on the event loop once the write is durable and
before the caller resumes: the engine learns new jobs there, before anyone
can act on their ids.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from gantry.jobs.spec import NewJob
from gantry.jobs.store.records import ActiveRows, Created, Event, Transition


class JobStore(Protocol):
    async def insert(
        self,
        new_jobs: Sequence[NewJob],
        idempotency: tuple[str, str] | None,
        on_commit: Callable[[Created], None],
    ) -> Created:
        """One submission's jobs in one transaction (with an Idempotency-Key if given)."""
        ...

    async def insert_groups(
        self, groups: Sequence[Sequence[NewJob]], on_commit: Callable[[list[Created]], None]
    ) -> list[Created]:
        """Several submissions in one transaction: all of them, or none (then raise)."""
        ...

    async def apply(
        self,
        transitions: Sequence[Transition],
        on_commit: Callable[[list[Event]], None] | None = None,
    ) -> list[Event]:
        """State changes and the events they make, in one transaction."""
        ...

    async def claim(self, intents: Sequence[Transition]) -> set[int]:
        """Write the dispatch intents of the jobs this server may hand over now; their ids.

        With several servers, a job another server owns or holds is left out.
        """
        ...

    async def request_cancel(self, job_id: int, reason: str) -> str | None:
        """Ask the server that owns ``job_id`` to cancel it; its state, None if it ended."""
        ...

    async def states(self, job_ids: Sequence[int]) -> dict[int, tuple[str, str]]:
        """id -> (state, name) of the jobs that exist among ``job_ids``."""
        ...

    async def load_active(self) -> ActiveRows:
        """Every unfinished job with its dependencies (start-up reconciliation)."""
        ...
