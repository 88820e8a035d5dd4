"""/stats: what jobs cost, summed (jobs, CPU-hours, peak memory), by state."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from gantry.api.deps import ReaderDep
from gantry.jobs.store import job_stats
from gantry.schemas import JobStats

router = APIRouter(prefix="/stats", tags=["stats"])


@router.get("", response_model=JobStats)
async def get_stats(
    read: ReaderDep,
    tag: Annotated[str | None, Query(max_length=64, description="Only jobs with this tag.")] = None,
) -> dict[str, Any]:
    """Jobs, CPU-hours, peak memory and wall hours of all jobs (or those with ``tag``)."""
    return await read(job_stats, tag)
