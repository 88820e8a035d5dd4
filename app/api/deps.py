"""FastAPI dependencies: typed handles on what ``create_app`` put in ``app.state``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import anyio
from fastapi import Depends, Path, Request
from sqlalchemy import Connection
from sqlalchemy import Engine as Database

from gantry.instruments.service import Instruments
from gantry.jobs.engine import Engine
from gantry.jobs.errors import JobNotFound
from gantry.jobs.service import MAX_JOB_ID, Catalog
from gantry.jobs.store import get_job
from gantry.settings import Settings

T = TypeVar("T")


class Reader:
    """Runs a read-only query on a worker thread with a pooled connection."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def __call__(self, query: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        def run() -> T:
            with self._database.connect() as conn:
                return query(conn, *args, **kwargs)

        return await anyio.to_thread.run_sync(run)


def _from_state(name: str, kind: type[T]) -> Callable[[Request], Awaitable[T]]:
    """A dependency answering ``app.state.<name>`` (async: no worker thread per request)."""

    async def get(request: Request) -> T:
        value: T = getattr(request.app.state, name)
        return value

    get.__name__ = f"get_{name}"
    return get


JobId = Annotated[int, Path(ge=1, le=MAX_JOB_ID, description="The job's id.")]

EngineDep = Annotated[Engine, Depends(_from_state("engine", Engine))]
SettingsDep = Annotated[Settings, Depends(_from_state("settings", Settings))]
CatalogDep = Annotated[Catalog, Depends(_from_state("catalog", Catalog))]
ReaderDep = Annotated[Reader, Depends(_from_state("reader", Reader))]
InstrumentsDep = Annotated[Instruments, Depends(_from_state("instruments", Instruments))]


class JobRows:
    """The row of a job that exists; one that does not is :class:`JobNotFound` (a 404).

    Handed to routes as a dependency and called in their body: FastAPI checks
    a route's query only after its dependencies ran, and a bad query must stay
    a 422 even for a job that does not exist.
    """

    def __init__(self, read: Reader) -> None:
        self._read = read

    async def __call__(self, job_id: int) -> dict[str, Any]:
        job = await self._read(get_job, job_id)
        if job is None:
            raise JobNotFound(job_id)
        return job


async def get_job_rows(read: ReaderDep) -> JobRows:
    return JobRows(read)


JobRowsDep = Annotated[JobRows, Depends(get_job_rows)]

__all__ = [
    "CatalogDep",
    "Connection",
    "EngineDep",
    "InstrumentsDep",
    "JobId",
    "JobRows",
    "JobRowsDep",
    "Reader",
    "ReaderDep",
    "SettingsDep",
]
