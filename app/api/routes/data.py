"""/jobs/{id}/data: an instrument job's samples as JSON, CSV or NetCDF, or live (SSE).

JSON and CSV work while the job runs (page on with ``offset``, a sample
count per role); NetCDF is made once the job ended. ``follow=true`` streams
new samples as they are stored until the job ends.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any, Literal

import anyio
from fastapi import APIRouter, HTTPException, Query, Response
from fastapi.responses import FileResponse, StreamingResponse
from starlette.background import BackgroundTask

from gantry.api.deps import EngineDep, JobId, ReaderDep, SettingsDep
from gantry.api.errors import unprocessable
from gantry.api.sse import dumps, stream
from gantry.instruments import export
from gantry.instruments.data import job_data_dir, role_file
from gantry.instruments.schemas import DataPage
from gantry.jobs.errors import JobNotFound
from gantry.jobs.store import get_job
from gantry.schemas import ErrorBody

router = APIRouter(prefix="/jobs", tags=["data"])

MAX_PAGE = 100_000
CSV_CHUNK = 5_000
FOLLOW_INTERVAL = 0.2

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
    engine: EngineDep,
    read: ReaderDep,
    settings: SettingsDep,
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
    job = await read(get_job, job_id)
    if job is None:
        raise JobNotFound(job_id)
    if job.get("payload") is None:
        raise HTTPException(
            404, f"job {job_id} is a command job: it has no instrument data (read its logs)"
        )
    roles = sorted({t["component_role"] for t in job["payload"].get("method", [])})
    if role is not None:
        if role not in roles:
            return unprocessable(
                ("query", "role"),
                f"job {job_id} has no role {role!r}; its roles: {', '.join(roles)}",
            )
        roles = [role]
    number = attempt or max(1, job["attempt"])
    directory = job_data_dir(settings.resolved_data_dir, job_id, number)
    if follow:
        return stream(_follow(engine, job_id, directory, roles, offset))
    if format == "netcdf":
        return await _netcdf(engine, job, directory, number)
    if format == "csv":
        return await _csv(job_id, directory, roles, offset, limit)
    ended = not engine.is_active(job_id)  # before reading: no sample can be missed
    pages, complete = [], ended
    want = limit or 10_000
    for name in roles:
        lines, next_offset = await anyio.to_thread.run_sync(
            export.read_lines, role_file(directory, name), offset, want
        )
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


async def _csv(
    job_id: int, directory: Path, roles: list[str], offset: int, limit: int | None
) -> StreamingResponse:
    columns = await anyio.to_thread.run_sync(export.value_columns, directory, roles)

    async def rows() -> AsyncIterator[str]:
        yield export.csv_header(columns)
        for name in roles:
            position, left = offset, limit
            while left is None or left > 0:
                size = CSV_CHUNK if left is None else min(CSV_CHUNK, left)
                text, position_after = await anyio.to_thread.run_sync(
                    export.csv_rows, directory, name, columns, position, size
                )
                if text:
                    yield text
                read = position_after - position
                position = position_after
                if left is not None:
                    left -= read
                if read < size:
                    break

    headers = {"Content-Disposition": f'attachment; filename="job-{job_id}.csv"'}
    return StreamingResponse(rows(), media_type="text/csv", headers=headers)


async def _netcdf(
    engine: EngineDep, job: dict[str, Any], directory: Path, attempt: int
) -> FileResponse:
    job_id = job["id"]
    if engine.is_active(job_id):
        raise HTTPException(
            409,
            f"job {job_id} has not ended (it is {job['state']}): NetCDF is made once it ended; "
            "read format=json or format=csv meanwhile",
        )
    path = await anyio.to_thread.run_sync(
        export.netcdf_file, directory, {**job, "attempt": attempt}
    )
    return FileResponse(
        path,
        media_type="application/x-netcdf",
        filename=f"job-{job_id}.nc",
        background=BackgroundTask(path.unlink, missing_ok=True),
    )


async def _follow(
    engine: EngineDep, job_id: int, directory: Path, roles: list[str], offset: int
) -> AsyncIterator[dict[str, Any]]:
    files = {r: role_file(directory, r) for r in roles}
    lines_read = dict.fromkeys(roles, offset)
    positions = {
        r: await anyio.to_thread.run_sync(export.position_of, p, offset) for r, p in files.items()
    }
    while True:
        ended = not engine.is_active(job_id)  # read before the files: no lost tail
        sent = False
        for name, path in files.items():
            lines, positions[name] = await anyio.to_thread.run_sync(
                export.read_from, path, positions[name]
            )
            if not lines:
                continue
            sent = True
            start = lines_read[name]
            lines_read[name] += len(lines)
            samples = b",".join(lines).decode("utf-8", errors="replace")
            yield {
                "event": "data",
                "id": f"{name}:{lines_read[name]}",
                "data": f'{{"role":{json.dumps(name)},"offset":{start},"samples":[{samples}]}}',
            }
        if sent:
            continue
        if ended:
            yield {"event": "end", "data": dumps({"job_id": job_id, "offsets": lines_read})}
            return
        await anyio.sleep(FOLLOW_INTERVAL)
