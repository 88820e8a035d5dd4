"""/jobs/{id}/logs: read a log from an offset, or follow it as SSE."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, Literal

import anyio
from fastapi import APIRouter, HTTPException, Query, Response

from gantry.api.deps import EngineDep, JobId, JobRowsDep
from gantry.api.sse import SSE_RESPONSE, Event, dumps, follow, stream
from gantry.backends.base import task_log_path
from gantry.jobs.arrays import MAX_INDEX, parse_array
from gantry.jobs.states import TERMINAL
from gantry.schemas import ErrorBody, LogChunk

router = APIRouter(prefix="/jobs", tags=["logs"])

MAX_CHUNK = 1024 * 1024


def _utf8_prefix(data: bytes) -> bytes:
    """Drop an incomplete UTF-8 sequence at the end (it comes with the next read)."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte & 0xC0 != 0x80:  # not a continuation byte: the start of a char
            need = (
                1 if byte < 0x80 else 2 if byte >> 5 == 0b110 else 3 if byte >> 4 == 0b1110 else 4
            )
            return data if need <= back else data[:-back]
    return data


def _read(path: Path, offset: int, limit: int) -> tuple[bytes, int]:
    try:
        with path.open("rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            handle.seek(offset)
            return handle.read(limit), size
    except FileNotFoundError:
        return b"", 0


@router.get(
    "/{job_id}/logs",
    response_model=LogChunk,
    responses={**SSE_RESPONSE, 404: {"model": ErrorBody}},
)
async def read_logs(
    job_id: JobId,
    jobs: JobRowsDep,
    engine: EngineDep,
    stream_name: Annotated[Literal["stdout", "stderr"], Query(alias="stream")] = "stdout",
    offset: Annotated[int, Query(ge=0, le=2**53)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_CHUNK)] = MAX_CHUNK,
    attempt: Annotated[int | None, Query(ge=1, le=10_000)] = None,
    task: Annotated[
        int | None, Query(ge=0, le=MAX_INDEX, description="An array job's task: its own log.")
    ] = None,
    follow: bool = False,
) -> Any:
    """A job's stdout or stderr from ``offset``; ``follow=true`` streams until it ends.

    With ``task``, the log of that task of an array job (followed until the
    array ends).
    """
    job = await jobs(job_id)
    path = engine.log_path(job_id, job["backend"], attempt or job["attempt"], stream_name)
    if task is not None:
        path = _task_log(job, path, task)

    async def running() -> bool:
        # Another server may run it (several servers): then its row says whether it ended.
        return engine.is_active(job_id) or (await jobs(job_id))["state"] not in TERMINAL

    if follow:
        return stream(_follow(job_id, path, offset, running))
    active = engine.is_active(job_id) or job["state"] not in TERMINAL
    data, size = await anyio.to_thread.run_sync(_read, path, offset, limit)
    text = _utf8_prefix(data) if offset + len(data) < size or active else data
    ended = not active
    next_offset = offset + len(text)
    chunk = LogChunk(
        job_id=job_id,
        stream=stream_name,
        offset=offset,
        next_offset=next_offset,
        size=size,
        text=text.decode("utf-8", errors="replace"),
        complete=ended and next_offset >= size,
    )
    return Response(chunk.model_dump_json(), media_type="application/json")


def _task_log(job: dict[str, Any], path: Path, task: int) -> Path:
    """Where task ``task`` of the array job ``job`` writes the log ``path`` names."""
    spec = job.get("array")
    if not spec:
        raise HTTPException(
            404, f"job {job['id']} is not an array job: it has no task {task}; leave out task="
        )
    if task not in parse_array(spec, max_tasks=MAX_INDEX + 1):
        raise HTTPException(404, f"job {job['id']} has no task {task}: its tasks are {spec}")
    return task_log_path(path, task)


def _follow(
    job_id: int, path: Path, offset: int, running: Callable[[], Awaitable[bool]]
) -> AsyncIterator[Event]:
    active = True  # asked again each time nothing new was read, before the next read

    async def read_new(ended: bool) -> list[Event]:
        nonlocal offset, active
        data, _ = await anyio.to_thread.run_sync(_read, path, offset, MAX_CHUNK)
        text = data if ended else _utf8_prefix(data)
        if not text:
            active = await running()
            return []
        offset += len(text)
        return [{"event": "log", "id": str(offset), "data": text.decode("utf-8", errors="replace")}]

    def end() -> Event:
        return {"event": "end", "data": dumps({"job_id": job_id, "offset": offset})}

    return follow(lambda: active, read_new, end)
