"""Sums over jobs' accounting: jobs, CPU-hours and peak memory, by state."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, and_, func, select

from gantry.jobs.store.read import job_t, tag_t


def job_stats(conn: Connection, tag: str | None = None) -> dict[str, Any]:
    """What the jobs (with ``tag``, if given) cost: totals and per state, in one query.

    CPU-hours add user and system time of the jobs that measured them;
    ``measured`` counts those jobs, so a sum over partly measured jobs says so.
    """
    cpu = func.coalesce(job_t.c.cpu_user_seconds, 0.0) + func.coalesce(
        job_t.c.cpu_system_seconds, 0.0
    )
    measured = func.count(job_t.c.cpu_user_seconds)  # counts the non-null ones
    query = select(
        job_t.c.state,
        func.count().label("jobs"),
        func.sum(cpu).label("cpu_seconds"),
        func.max(job_t.c.max_rss_bytes).label("peak"),
        func.sum(job_t.c.wall_seconds).label("wall"),
        measured.label("measured"),
    )
    if tag is not None:
        query = query.join(tag_t, and_(tag_t.c.job_id == job_t.c.id, tag_t.c.tag == tag))
    by_state: dict[str, dict[str, Any]] = {}
    for row in conn.execute(query.group_by(job_t.c.state)):
        by_state[row.state] = _entry(row.jobs, row.measured, row.cpu_seconds, row.peak, row.wall)
    peaks = [s["peak_memory_bytes"] for s in by_state.values() if s["peak_memory_bytes"]]
    total = _entry(
        sum(s["jobs"] for s in by_state.values()),
        sum(s["measured"] for s in by_state.values()),
        sum(s["cpu_hours"] for s in by_state.values()) * 3600,
        max(peaks) if peaks else None,
        sum(s["wall_hours"] for s in by_state.values()) * 3600,
    )
    return {"tag": tag, **total, "by_state": by_state}


def _entry(
    jobs: int, measured: int, cpu_seconds: float | None, peak: int | None, wall: float | None
) -> dict[str, Any]:
    return {
        "jobs": jobs,
        "measured": measured,
        "cpu_hours": (cpu_seconds or 0.0) / 3600,
        "peak_memory_bytes": peak,
        "wall_hours": (wall or 0.0) / 3600,
    }
