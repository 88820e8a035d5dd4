"""Reads of the job tables: every function takes a ``Connection`` and is sync.

They run on a worker thread (``anyio.to_thread``) or inside a write
transaction; nothing here touches the event loop. SQL goes through
SQLAlchemy Core with bound parameters only.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Connection,
    Select,
    Table,
    and_,
    bindparam,
    func,
    select,
)

from gantry.backends.base import ArraySpec
from gantry.jobs.accounting import accounting_of_row
from gantry.jobs.arrays import parse_stored
from gantry.jobs.states import ACTIVE
from gantry.jobs.store.records import ActiveRows
from gantry.models import ArrayTask, IdempotencyKey, Job, JobDependency, JobEvent, JobTag

job_t: Table = Job.__table__  # type: ignore[attr-defined]
dep_t: Table = JobDependency.__table__  # type: ignore[attr-defined]
tag_t: Table = JobTag.__table__  # type: ignore[attr-defined]
event_t: Table = JobEvent.__table__  # type: ignore[attr-defined]
idem_t: Table = IdempotencyKey.__table__  # type: ignore[attr-defined]
task_t: Table = ArrayTask.__table__  # type: ignore[attr-defined]

#: How many of the newest ids a name-prefix page looks through first.
PREFIX_WINDOW = 20_000


def chunks(items: Sequence[int], size: int) -> Iterable[Sequence[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def get_job(conn: Connection, job_id: int) -> dict[str, Any] | None:
    row = conn.execute(select(job_t).where(job_t.c.id == job_id)).mappings().first()
    return dict(row) if row else None


def get_job_detail(conn: Connection, job_id: int) -> dict[str, Any] | None:
    """A job with its ``depends_on`` ids and its ``accounting``, in one read."""
    row = get_job(conn, job_id)
    if row is None:
        return None
    depends_on = get_dependencies(conn, [job_id]).get(job_id, [])
    detail = {**row, "depends_on": depends_on, "accounting": accounting_of_row(row)}
    if row.get("array"):
        detail["tasks"] = task_counts(conn, job_id, parse_stored(row["array"]))
    return detail


def task_counts(conn: Connection, job_id: int, spec: ArraySpec) -> dict[str, Any]:
    """An array job's tasks by state; those without a row have not started."""
    query = select(task_t.c.state, func.count()).where(task_t.c.job_id == job_id)
    by_state = {"pending": spec.count}
    for state, count in conn.execute(query.group_by(task_t.c.state)):
        by_state[state] = count
        by_state["pending"] -= count
    return {"count": spec.count, "limit": spec.limit, "by_state": by_state}


def list_tasks(
    conn: Connection, job_id: int, *, states: Sequence[str], after: int | None, limit: int
) -> list[dict[str, Any]]:
    """Tasks of an array job that started, by index, one page at a time."""
    query = select(task_t).where(task_t.c.job_id == job_id)
    if states:
        query = query.where(task_t.c.state.in_(list(states)))
    if after is not None:
        query = query.where(task_t.c.idx > after)
    found = conn.execute(query.order_by(task_t.c.idx).limit(limit)).mappings()
    rows = [dict(row) for row in found]
    return [{**row, "index": row["idx"], "accounting": accounting_of_row(row)} for row in rows]


def get_dependencies(conn: Connection, job_ids: Sequence[int]) -> dict[int, list[int]]:
    found: dict[int, list[int]] = {}
    for chunk in chunks(sorted(job_ids), 900):
        rows = conn.execute(
            select(dep_t.c.job_id, dep_t.c.depends_on_id)
            .where(dep_t.c.job_id.in_(chunk))
            .order_by(dep_t.c.job_id, dep_t.c.depends_on_id)
        )
        for row in rows:
            found.setdefault(row.job_id, []).append(row.depends_on_id)
    return found


@dataclass(frozen=True, slots=True)
class JobFilter:
    states: Sequence[str] = ()
    backend: str | None = None
    name_prefix: str | None = None
    tag: str | None = None


def list_jobs(
    conn: Connection, where: JobFilter, *, before_id: int | None, limit: int
) -> list[dict[str, Any]]:
    """Newest first; keyset pagination: pass the last id seen as ``before_id``."""
    columns = [c for c in job_t.c if c.name not in ("spec", "env", "payload")]
    query = select(*columns)
    conditions: list[ColumnElement[bool]] = []
    # The column the page is ordered by. With a tag it is job_tag.job_id (equal to
    # job.id): SQLite then walks the (tag, job_id) key backwards and stops after
    # ``limit`` rows instead of sorting every job with the tag.
    key = job_t.c.id
    if where.tag is not None:
        query = query.join(tag_t, and_(tag_t.c.job_id == job_t.c.id, tag_t.c.tag == where.tag))
        key = tag_t.c.job_id
    if where.states:
        conditions.append(job_t.c.state.in_(list(where.states)))
    if where.backend is not None:
        conditions.append(job_t.c.backend == where.backend)
    if where.name_prefix:
        if conn.dialect.name == "sqlite":
            # A range, not LIKE (case-insensitive in SQLite): uses the (name, id) index.
            conditions.append(job_t.c.name >= where.name_prefix)
            conditions.append(job_t.c.name < where.name_prefix + "\U0010ffff")
        else:
            # Collations elsewhere need not sort U+10FFFF last: an escaped LIKE is exact.
            conditions.append(job_t.c.name.startswith(where.name_prefix, autoescape=True))
    if before_id is not None:
        conditions.append(key < before_id)
    if conditions:
        query = query.where(*conditions)
    query = query.order_by(key.desc()).limit(limit)
    if where.name_prefix and where.tag is None and conn.dialect.name == "sqlite":
        recent = _recent_window(conn, query, before_id, limit)
        if recent is not None:
            return recent
    return [dict(row) for row in conn.execute(query).mappings()]


def _recent_window(
    conn: Connection, query: Any, before_id: int | None, limit: int
) -> list[dict[str, Any]] | None:
    """A name-prefix page found by walking the newest ids, if it is there.

    SQLite's planner always takes the (name, id) index for a prefix: right for
    a rare name, but a common one (10 % of a million jobs) makes it collect
    and sort every match. Walking the primary key backwards through a bounded
    window finds a common name's page at once; None sends a rare one to the
    index.
    """
    top = before_id
    if top is None:
        top = int(conn.execute(select(func.max(job_t.c.id))).scalar() or 0) + 1
    windowed = query.where(job_t.c.id >= top - PREFIX_WINDOW).with_hint(
        job_t, "NOT INDEXED", dialect_name="sqlite"
    )
    rows = [dict(row) for row in conn.execute(windowed).mappings()]
    return rows if len(rows) == limit or top - PREFIX_WINDOW <= 1 else None


def list_events(
    conn: Connection, *, job_id: int | None, after_id: int, limit: int
) -> list[dict[str, Any]]:
    query = select(event_t).where(event_t.c.id > after_id)
    if job_id is not None:
        query = query.where(event_t.c.job_id == job_id)
    query = query.order_by(event_t.c.id).limit(limit)
    return [dict(row) for row in conn.execute(query).mappings()]


def load_active(
    conn: Connection, owner: str | None = None, ids: Sequence[int] | None = None
) -> list[dict[str, Any]]:
    """Every job that has not ended, oldest first (start-up reconciliation).

    ``owner``: only the jobs of that server (several servers); ``ids``: only those.
    """
    states = [s.value for s in ACTIVE]
    query = select(job_t).where(job_t.c.state.in_(states)).order_by(job_t.c.id)
    if owner is not None:
        query = query.where(job_t.c.owner == owner)
    if ids is None:
        return [dict(row) for row in conn.execute(query).mappings()]
    rows: list[dict[str, Any]] = []
    for chunk in chunks(sorted(ids), 900):
        rows.extend(
            dict(row) for row in conn.execute(query.where(job_t.c.id.in_(chunk))).mappings()
        )
    return rows


def load_active_rows(
    conn: Connection, owner: str | None = None, ids: Sequence[int] | None = None
) -> ActiveRows:
    """Unfinished jobs, their dependencies, and the states of those that ended
    (or, with several servers, that another server runs)."""
    rows = load_active(conn, owner, ids)
    deps = get_dependencies(conn, [row["id"] for row in rows])
    ended = {d for ds in deps.values() for d in ds} - {row["id"] for row in rows}
    arrays = [row["id"] for row in rows if row.get("array")]
    return ActiveRows(
        rows, deps, job_states(conn, list(ended)), task_states(conn, arrays),
        task_costs(conn, arrays),
    )  # fmt: skip


def task_costs(
    conn: Connection, job_ids: Sequence[int]
) -> dict[int, tuple[float | None, float | None, int | None]]:
    """Array job id -> its tasks' CPU user and system seconds summed, the largest peak."""
    found: dict[int, tuple[float | None, float | None, int | None]] = {}
    c = task_t.c
    for chunk in chunks(sorted(job_ids), 900):
        query = select(
            c.job_id, func.sum(c.cpu_user_seconds), func.sum(c.cpu_system_seconds),
            func.max(c.max_rss_bytes),
        ).where(c.job_id.in_(chunk)).group_by(c.job_id)  # fmt: skip
        found.update({row[0]: (row[1], row[2], row[3]) for row in conn.execute(query)})
    return found


def task_states(conn: Connection, job_ids: Sequence[int]) -> dict[int, dict[int, str]]:
    """Array job id -> {index: state} of each task that started."""
    found: dict[int, dict[int, str]] = {}
    for chunk in chunks(sorted(job_ids), 900):
        query = select(task_t.c.job_id, task_t.c.idx, task_t.c.state)
        for row in conn.execute(query.where(task_t.c.job_id.in_(chunk))):
            found.setdefault(row.job_id, {})[row.idx] = row.state
    return found


def job_states(conn: Connection, job_ids: Sequence[int]) -> dict[int, tuple[str, str]]:
    """id -> (state, name) of the jobs that exist among ``job_ids``."""
    found: dict[int, tuple[str, str]] = {}
    query = _job_states_query()
    for chunk in chunks(sorted(set(job_ids)), 900):
        rows = conn.execute(query, {"ids": list(chunk)})
        found.update({row.id: (row.state, row.name) for row in rows})
    return found


@cache
def _job_states_query() -> Select[tuple[int, str, str]]:
    # Built once: constructing the statement cost more than running it for a
    # group of single submits.
    ids: BindParameter[list[int]] = bindparam("ids", expanding=True)
    return select(job_t.c.id, job_t.c.state, job_t.c.name).where(job_t.c.id.in_(ids))


def count_by_state(conn: Connection) -> dict[str, int]:
    rows = conn.execute(select(job_t.c.state, func.count()).group_by(job_t.c.state))
    return {row[0]: row[1] for row in rows}
