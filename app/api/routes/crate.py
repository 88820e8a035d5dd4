"""/jobs/{id}/crate: a job and its chain as an RO-Crate (zip), for repositories.

The crate is built on a worker thread into a temporary file (files are
copied in chunks, never held in memory) and deleted once sent.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from gantry.api.deps import CatalogDep, EngineDep, JobId, ReaderDep
from gantry.api.errors import unprocessable
from gantry.export.chain import ChainTooLong, ExportJob, read_jobs
from gantry.export.crate import build_crate
from gantry.jobs.engine import Engine
from gantry.jobs.errors import JobNotFound
from gantry.jobs.service import Catalog
from gantry.jobs.states import TERMINAL
from gantry.schemas import ErrorBody

router = APIRouter(prefix="/jobs", tags=["data"])

#: An SPDX licence id, or the URL of a licence.
LICENSE = (
    r"^([A-Za-z0-9][A-Za-z0-9.+-]*"
    r"|https?://[A-Za-z0-9.-]+(:[0-9]+)?(/[A-Za-z0-9_.~!$&'()*+,;=:@%/-]*)?)$"
)

RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "An RO-Crate 1.3 zip: ro-crate-metadata.json plus a folder per job.",
        "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
    },
    404: {"model": ErrorBody},
    409: {"model": ErrorBody, "description": "The job or a job of its chain has not ended."},
}


@router.get("/{job_id}/crate", response_class=FileResponse, responses=RESPONSES)
async def read_crate(
    request: Request,
    job_id: JobId,
    read: ReaderDep,
    engine: EngineDep,
    catalog: CatalogDep,
    chain: Annotated[
        bool,
        Query(description="Also the jobs it depends on and those depending on it (transitively)."),
    ] = True,
    license: Annotated[
        str | None,
        Query(
            max_length=200,
            # checked below, to answer in words rather than with the expression
            json_schema_extra={"pattern": LICENSE},
            description="The data's licence: an SPDX id (CC-BY-4.0) or a URL.",
        ),
    ] = None,
) -> Any:
    """An ended job (and by default its chain) with data, metadata and provenance."""
    if license is not None and not re.match(LICENSE, license):
        return unprocessable(
            ("query", "license"),
            f"license {license!r} is neither an SPDX licence id (such as CC-BY-4.0) nor an "
            "http(s) URL of a licence: give one of those",
        )
    try:
        jobs = await read(read_jobs, job_id, whole=chain)
    except ChainTooLong as exc:
        return unprocessable(("query", "chain"), str(exc))
    if not jobs:
        raise JobNotFound(job_id)
    pending = [j for j in jobs if engine.is_active(j.id) or j.row["state"] not in TERMINAL]
    if pending:
        which = ", ".join(f"{j.id} ({j.row['name']}) is {j.row['state']}" for j in pending[:5])
        more = f" and {len(pending) - 5} more" if len(pending) > 5 else ""
        them = "them" if len(pending) > 1 else "it"
        itself = any(j.id == job_id for j in pending)
        alone = "" if itself else f"; or export job {job_id} alone with chain=false"
        raise HTTPException(
            409,
            f"a crate holds only ended jobs, and job {which}{more}: wait for {them} to end{alone}",
        )
    for job in jobs:
        _locate(job, engine, catalog)
    api = str(request.url_for("read_crate", job_id=job_id)).rsplit("/jobs/", 1)[0]
    path = await anyio.to_thread.run_sync(build_crate, jobs, job_id, api, _license(license))
    return FileResponse(
        path,
        media_type="application/zip",
        filename=f"job-{job_id}-crate.zip",
        background=BackgroundTask(path.unlink, missing_ok=True),
    )


def _locate(job: ExportJob, engine: Engine, catalog: Catalog) -> None:
    """Where the job's files are: its backend says (data, logs), as for /data and /logs."""
    row = job.row
    attempt = max(1, row["attempt"])
    backend = catalog.running.get(row["backend"])
    if row.get("payload") is not None and backend is not None:
        job.data_dir = backend.data(job.id, attempt)
    job.logs = {
        s: engine.log_path(job.id, row["backend"], attempt, s) for s in ("stdout", "stderr")
    }
    job.working_dir = Path(row["working_dir"] or engine.work_dir)


def _license(value: str | None) -> str | None:
    if value is None or "://" in value:
        return value
    return f"https://spdx.org/licenses/{value}"
