"""/jobs/{id}/data: an instrument job's samples as JSON, CSV or NetCDF, or live (SSE).

JSON and CSV work while the job runs (page on with ``offset``, a sample
count per role); NetCDF is made once the job ended. ``follow=true`` streams
new samples as they are stored until the job ends.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Response
from fastapi.responses import FileResponse, StreamingResponse
from starlette.background import BackgroundTask

from gantry.api.deps import CatalogDep, EngineDep, JobId, JobRowsDep
from gantry.api.errors import unprocessable
from gantry.api.sse import Event, dumps, follow, stream
from gantry.instruments.schemas import DataPage
from gantry.instruments.service import JobData, roles_of
from gantry.jobs.engine import Engine
from gantry.schemas import ErrorBody

router = APIRouter(prefix="/jobs", tags=["data"])

MAX_PAGE = 100_000

RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "JSON (a page per role); `format=csv`: text/csv; `format=netcdf`: a "
        "NetCDF4 file; `follow=true`: a text/event-stream of `data` events.",
        "content": {
            "text/csv": {"schema": {"type": "string"}},
            "application/x-netcdf": {"schema": {"type": "string", "format": "binary"}},
            "text/event-stream": {"schema": {"type": "string"}},
        },
    },
    404: {"model": ErrorBody},
    409: {"model": ErrorBody, "description": "NetCDF of a job that has not ended."},
}


@router.get("/{job_id}/data", response_model=DataPage, responses=RESPONSES)
async def read_data(
    job_id: JobId,
    jobs: JobRowsDep,
    engine: EngineDep,
    catalog: CatalogDep,
    format: Annotated[Literal["json", "csv", "netcdf"], Query()] = "json",
    role: Annotated[str | None, Query(max_length=64, description="One role; default: all.")] = None,
    offset: Annotated[int, Query(ge=0, le=2**53, description="Samples to skip, per role.")] = 0,
    limit: Annotated[
        int | None, Query(ge=1, le=MAX_PAGE, description="Samples per role (JSON: 10,000).")
    ] = None,
    attempt: Annotated[int | None, Query(ge=1, le=10_000)] = None,
    follow: bool = False,
) -> Any:
    """An instrument job's data: every sample stored so far, per role."""
    job = await jobs(job_id)
    number = attempt or max(1, job["attempt"])
    # Where the data lives is the job's backend's to say, as for its logs.
    backend = catalog.running.get(job["backend"])
    directory = None if backend is None else backend.data(job_id, number)
    if job.get("payload") is None or directory is None:
        raise HTTPException(
            404, f"job {job_id} is a command job: it has no instrument data (read its logs)"
        )
    roles = roles_of(job["payload"])
    if role is not None:
        if role not in roles:
            return unprocessable(
                ("query", "role"),
                f"job {job_id} has no role {role!r}; its roles: {', '.join(roles)}",
            )
        roles = [role]
    data = JobData(directory, roles)
    if follow:
        return stream(await _follow(engine, job_id, data, offset))
    if format == "netcdf":
        return await _netcdf(engine, job, data, number)
    if format == "csv":
        headers = {"Content-Disposition": f'attachment; filename="job-{job_id}.csv"'}
        rows = await data.csv(offset, limit)
        return StreamingResponse(rows, media_type="text/csv", headers=headers)
    ended = not engine.is_active(job_id)  # before reading: no sample can be missed
    pages, complete = [], ended
    want = limit or 10_000
    for name in roles:
        lines, next_offset = await data.page(name, offset, want)
        complete = complete and len(lines) < want
        samples = b",".join(lines).decode("utf-8", errors="replace")
        pages.append(
            f'{{"role":{json.dumps(name)},"offset":{offset},"next_offset":{next_offset},'
            f'"samples":[{samples}]}}'
        )
    body = (
        f'{{"job_id":{job_id},"attempt":{number},"state":{json.dumps(job["state"])},'
        f'"complete":{json.dumps(complete)},"roles":[{",".join(pages)}]}}'
    )
    return Response(body, media_type="application/json")


async def _netcdf(engine: Engine, job: dict[str, Any], data: JobData, attempt: int) -> FileResponse:
    job_id = job["id"]
    if engine.is_active(job_id):
        raise HTTPException(
            409,
            f"job {job_id} has not ended (it is {job['state']}): NetCDF is made once it ended; "
            "read format=json or format=csv meanwhile",
        )
    path = await data.netcdf({**job, "attempt": attempt})
    return FileResponse(
        path,
        media_type="application/x-netcdf",
        filename=f"job-{job_id}.nc",
        background=BackgroundTask(path.unlink, missing_ok=True),
    )


async def _follow(engine: Engine, job_id: int, data: JobData, offset: int) -> AsyncIterator[Event]:
    lines_read = dict.fromkeys(data.roles, offset)
    positions = await data.positions(offset)

    async def read_new(ended: bool) -> list[Event]:
        events = []
        for name in data.roles:
            lines, positions[name] = await data.read_from(name, positions[name])
            if not lines:
                continue
            start = lines_read[name]
            lines_read[name] += len(lines)
            samples = b",".join(lines).decode("utf-8", errors="replace")
            events.append(
                {
                    "event": "data",
                    "id": f"{name}:{lines_read[name]}",
                    "data": f'{{"role":{json.dumps(name)},"offset":{start},"samples":[{samples}]}}',
                }
            )
        return events

    def end() -> Event:
        return {"event": "end", "data": dumps({"job_id": job_id, "offsets": lines_read})}

    return follow(lambda: engine.is_active(job_id), read_new, end)
