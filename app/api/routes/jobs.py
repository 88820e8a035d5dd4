"""/jobs: submit, batch, list, show, cancel. Routes translate and delegate."""

from __future__ import annotations

import hashlib
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Path, Query, Response
from fastapi.responses import JSONResponse
from pydantic_core import to_json

from gantry.api.auth import TokenNameDep
from gantry.api.deps import CatalogDep, EngineDep, JobId, ReaderDep, SettingsDep
from gantry.jobs.arrays import MAX_INDEX
from gantry.jobs.errors import JobNotFound, SubmissionError
from gantry.jobs.service import MAX_JOB_ID, build_jobs
from gantry.jobs.states import JobState
from gantry.jobs.store import JobFilter, get_job, get_job_detail, list_jobs, list_tasks
from gantry.schemas import (
    CancelResult,
    ErrorBody,
    JobBatchCreate,
    JobBatchSubmitted,
    JobCreate,
    JobShown,
    JobsPage,
    JobSubmitted,
    State,
    TaskCancelResult,
    TasksPage,
)

TaskState = Literal["running", "completed", "failed", "cancelled"]

router = APIRouter(prefix="/jobs", tags=["jobs"])

NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorBody}}
SUBMITTED_FIELDS = tuple(JobSubmitted.model_fields)


@router.post(
    "",
    status_code=201,
    response_model=JobSubmitted,
    responses={
        200: {"model": JobSubmitted, "description": "Replayed: same Idempotency-Key and body."},
        409: {"model": ErrorBody, "description": "Idempotency-Key reused with another body."},
    },
)
async def submit_job(
    job: JobCreate,
    engine: EngineDep,
    catalog: CatalogDep,
    token_name: TokenNameDep,
    idempotency_key: Annotated[str | None, Header(min_length=1, max_length=200)] = None,
) -> Response:
    """Submit one command job. Unsupported options are dropped; see ``warnings``.

    With an ``Idempotency-Key`` header, a retried request (same key, same body)
    returns the job the first one made instead of making another.
    """
    new = await build_jobs([job], catalog, engine.work_dir, batch=False, submitted_by=token_name)
    idempotency = None
    if idempotency_key is not None:
        digest = hashlib.sha256(job.model_dump_json().encode()).hexdigest()
        idempotency = (idempotency_key, digest)
    created = await engine.submit(new, idempotency)
    row = {**created.rows()[0], "depends_on": created.depends_on.get(created.ids[0], [])}
    # Our own row needs no validation: serialized directly (pydantic-core's JSON
    # rules, as FastAPI's), it skips the response-model round trip, a tenth of
    # a single submit's CPU.
    response = Response(
        to_json({key: row[key] for key in SUBMITTED_FIELDS}),
        status_code=200 if created.replayed else 201,
        media_type="application/json",
    )
    if created.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


@router.post("/batch", status_code=201, response_model=JobBatchSubmitted)
async def submit_batch(
    batch: JobBatchCreate,
    engine: EngineDep,
    catalog: CatalogDep,
    settings: SettingsDep,
    token_name: TokenNameDep,
) -> JSONResponse:
    """Submit many jobs in one transaction: all are stored, or none.

    Within a batch, ``depends_on`` may name jobs of the batch, and a job whose
    ``inputs`` include another's ``outputs`` runs after it (gwf's rule).
    """
    if len(batch.jobs) > settings.max_batch_jobs:
        raise SubmissionError(
            ("jobs",),
            f"a batch holds at most {settings.max_batch_jobs} jobs: split it",
        )
    new = await build_jobs(
        batch.jobs, catalog, engine.work_dir, batch=True, submitted_by=token_name
    )
    created = await engine.submit(new)
    warnings = [f"job {job.name}: {w}" for job in created.new for w in job.warnings]
    refs = [
        {
            "id": job_id,
            "name": job.name,
            "kind": job.kind,
            "backend": job.backend,
            "state": JobState.QUEUED.value,
            "warnings": job.warnings,
        }
        for job_id, job in zip(created.ids, created.new, strict=True)
    ]
    # A JSONResponse: these plain values need no response-model round trip,
    # which cost a 5,000-job batch a tenth of its time. JobRef lists the keys.
    return JSONResponse({"jobs": refs, "warnings": warnings}, status_code=201)


@router.get("", response_model=JobsPage)
async def list_jobs_page(
    read: ReaderDep,
    state: Annotated[list[State] | None, Query(description="Repeat for several.")] = None,
    backend: Annotated[str | None, Query(max_length=64)] = None,
    name: Annotated[str | None, Query(max_length=200, description="Name prefix.")] = None,
    tag: Annotated[str | None, Query(max_length=64)] = None,
    before: Annotated[
        int | None, Query(ge=1, le=MAX_JOB_ID, description="Keyset cursor: next_before.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """Jobs, newest first, one page at a time (keyset pagination)."""
    where = JobFilter(states=tuple(state or ()), backend=backend, name_prefix=name, tag=tag)
    rows = await read(list_jobs, where, before_id=before, limit=limit)
    next_before = rows[-1]["id"] if len(rows) == limit else None
    return {"items": rows, "next_before": next_before}


@router.get("/{job_id}", response_model=JobShown, responses=NOT_FOUND)
async def show_job(job_id: JobId, read: ReaderDep) -> dict[str, Any]:
    row = await read(get_job_detail, job_id)
    if row is None:
        raise JobNotFound(job_id)
    return row


@router.post(
    "/{job_id}/cancel",
    response_model=CancelResult,
    status_code=202,
    responses={**NOT_FOUND, 409: {"model": ErrorBody, "description": "The job already ended."}},
)
async def cancel_job(job_id: JobId, engine: EngineDep) -> dict[str, Any]:
    """Cancel a job. Idempotent while it has not ended; an ended job answers 409."""
    state = await engine.cancel(job_id)
    return {"id": job_id, "state": state}


@router.get("/{job_id}/tasks", response_model=TasksPage, responses=NOT_FOUND)
async def list_job_tasks(
    job_id: JobId,
    read: ReaderDep,
    state: Annotated[list[TaskState] | None, Query(description="Repeat for several.")] = None,
    after: Annotated[int | None, Query(ge=-1, description="Keyset cursor: next_after.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """The tasks of an array job that started, by index (pending ones have no entry)."""
    if await read(get_job, job_id) is None:
        raise JobNotFound(job_id)
    rows = await read(list_tasks, job_id, states=tuple(state or ()), after=after, limit=limit)
    next_after = rows[-1]["index"] if len(rows) == limit else None
    return {"items": rows, "next_after": next_after}


@router.post(
    "/{job_id}/tasks/{index}/cancel",
    response_model=TaskCancelResult,
    status_code=202,
    responses={**NOT_FOUND, 409: {"model": ErrorBody, "description": "The task ended."}},
)
async def cancel_job_task(
    job_id: JobId, index: Annotated[int, Path(ge=0, le=MAX_INDEX)], engine: EngineDep
) -> dict[str, Any]:
    """Cancel one task of an array job; the other tasks run on."""
    state = await engine.cancel_task(job_id, index)
    return {"id": job_id, "index": index, "state": state}
