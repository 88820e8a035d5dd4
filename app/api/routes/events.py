"""Job events (state transitions): a page as JSON, or a live SSE stream."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query

from gantry.api.deps import EngineDep, JobId, JobRowsDep, Reader, ReaderDep
from gantry.api.sse import SSE_RESPONSE, event_json, stream
from gantry.jobs.engine import Engine
from gantry.jobs.states import TERMINAL
from gantry.jobs.store import list_events
from gantry.schemas import ErrorBody, EventsPage

router = APIRouter(tags=["events"])

PAGE = 1000


class Cursor:
    """Where a page or stream of events starts: ``after`` or an SSE client's Last-Event-ID."""

    def __init__(
        self,
        after: Annotated[
            int, Query(ge=0, le=2**62, description="Only events with a larger id.")
        ] = 0,
        limit: Annotated[int, Query(ge=1, le=PAGE)] = PAGE,
        follow: bool = False,
        last_event_id: Annotated[int | None, Header(ge=0, le=2**62)] = None,
    ) -> None:
        self.after = max(after, last_event_id or 0)
        self.limit = limit
        self.follow = follow


CursorDep = Annotated[Cursor, Depends()]


async def _events(engine: Engine, read: Reader, job_id: int | None, cursor: Cursor) -> Any:
    if cursor.follow:
        return stream(_live(engine, read, job_id, cursor.after))
    return {
        "items": await read(list_events, job_id=job_id, after_id=cursor.after, limit=cursor.limit)
    }


@router.get("/events", response_model=EventsPage, responses=SSE_RESPONSE)
async def all_events(engine: EngineDep, read: ReaderDep, cursor: CursorDep) -> Any:
    """Events of all jobs, oldest first; ``follow=true`` streams them live (SSE)."""
    return await _events(engine, read, None, cursor)


@router.get(
    "/jobs/{job_id}/events",
    response_model=EventsPage,
    responses={**SSE_RESPONSE, 404: {"model": ErrorBody}},
)
async def job_events(
    job_id: JobId,
    jobs: JobRowsDep,
    engine: EngineDep,
    read: ReaderDep,
    cursor: CursorDep,
) -> Any:
    """One job's events; ``follow=true`` streams them until the job has ended."""
    await jobs(job_id)  # a job that does not exist is a 404
    return await _events(engine, read, job_id, cursor)


async def _live(
    engine: Engine, read: Reader, job_id: int | None, after: int
) -> AsyncIterator[dict[str, Any]]:
    # Subscribe first, then read the backlog: nothing falls between the two.
    # A job's stream ends with its terminal event (published after commit).
    with engine.hub.subscribe(job_id) as live:
        while True:
            backlog = await read(list_events, job_id=job_id, after_id=after, limit=PAGE)
            for row in backlog:
                after = row["id"]
                yield {"event": "job", "id": str(after), "data": event_json(row)}
                if job_id is not None and row["to_state"] in TERMINAL:
                    return
            if len(backlog) < PAGE:
                break
        async for row in live:
            if row["id"] <= after:
                continue
            after = row["id"]
            yield {"event": "job", "id": str(after), "data": event_json(row)}
            if job_id is not None and row["to_state"] in TERMINAL:
                return
