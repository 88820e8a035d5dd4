"""FastAPI dependencies: typed handles on what ``create_app`` put in ``app.state``."""

from __future__ import annotations

from collections.abc import Callable
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


async def get_engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_catalog(request: Request) -> Catalog:
    catalog: Catalog = request.app.state.catalog
    return catalog


class Reader:
    """Runs a read-only query on a worker thread with a pooled connection."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def __call__(self, query: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        def run() -> T:
            with self._database.connect() as conn:
                return query(conn, *args, **kwargs)

        return await anyio.to_thread.run_sync(run)


async def get_reader(request: Request) -> Reader:
    reader: Reader = request.app.state.reader
    return reader


async def get_instruments(request: Request) -> Instruments:
    instruments: Instruments = request.app.state.instruments
    return instruments


JobId = Annotated[int, Path(ge=1, le=MAX_JOB_ID, description="The job's id.")]

EngineDep = Annotated[Engine, Depends(get_engine)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
CatalogDep = Annotated[Catalog, Depends(get_catalog)]
ReaderDep = Annotated[Reader, Depends(get_reader)]
InstrumentsDep = Annotated[Instruments, Depends(get_instruments)]


async def get_existing_job(job_id: JobId, read: ReaderDep) -> dict[str, Any]:
    """The job row of the path's ``job_id``; a job that does not exist is a 404."""
    job = await read(get_job, job_id)
    if job is None:
        raise JobNotFound(job_id)
    return job


#: The row of the job the path names (``/jobs/{job_id}/...``), known to exist.
ExistingJob = Annotated[dict[str, Any], Depends(get_existing_job)]

__all__ = [
    "CatalogDep",
    "Connection",
    "EngineDep",
    "ExistingJob",
    "InstrumentsDep",
    "JobId",
    "Reader",
    "ReaderDep",
    "SettingsDep",
]
