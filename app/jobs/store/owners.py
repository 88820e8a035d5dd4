"""The SQL of several servers on one PostgreSQL: server rows, leases, job owners.

Every time here is the database's clock (``now()``), never a server's own:
a server whose clock jumps neither loses its lease nor takes a live one.
Functions take a ``Connection`` and are sync, like the rest of the store.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, and_, bindparam, delete, func, select, update

from gantry.jobs.states import ACTIVE
from gantry.jobs.store.read import chunks, job_t
from gantry.models import Server

server_t: Table = Server.__table__  # type: ignore[attr-defined]
_ACTIVE = [state.value for state in ACTIVE]


@dataclass(frozen=True, slots=True)
class ServerRow:
    id: str
    host: str
    machine: str
    pid: int
    #: seconds since its last heartbeat, by the database's clock
    silent_for: float
    #: it stopped, or was taken over: it never comes back
    retired: bool


def db_now(conn: Connection) -> datetime:
    now: datetime = conn.execute(select(func.now())).scalar_one()
    return now


def register(conn: Connection, server_id: str, host: str, machine: str, pid: int) -> None:
    now = func.now()
    conn.execute(
        server_t.insert().values(
            id=server_id, host=host, machine=machine, pid=pid, started_at=now, heartbeat_at=now
        )
    )


def heartbeat(conn: Connection, server_id: str) -> bool:
    """Renew the lease; False if it is retired: the others took this server's jobs."""
    done = conn.execute(
        update(server_t)
        .where(server_t.c.id == server_id, server_t.c.retired_at.is_(None))
        .values(heartbeat_at=func.now())
    )
    return done.rowcount == 1


def retire(conn: Connection, server_id: str) -> None:
    """The server never renews its lease again (a clean stop, or a takeover):
    the others take its jobs at once."""
    conn.execute(
        update(server_t)
        .where(server_t.c.id == server_id, server_t.c.retired_at.is_(None))
        .values(retired_at=func.now())
    )


def other_servers(conn: Connection, server_id: str) -> list[ServerRow]:
    silent = func.extract("epoch", func.now() - server_t.c.heartbeat_at)
    c = server_t.c
    query = select(c.id, c.host, c.machine, c.pid, silent, c.retired_at.is_not(None)).where(
        c.id != server_id
    )
    return [ServerRow(r[0], r[1], r[2], r[3], float(r[4]), bool(r[5])) for r in conn.execute(query)]


def take_jobs(
    conn: Connection, me: str, dead: str | None, *, host_bound: Sequence[str], same_host: bool
) -> list[int]:
    """Make ``me`` the owner of the unfinished jobs of ``dead`` (None: jobs with no owner).

    Jobs on a backend bound to its machine (``host_bound``: local processes,
    instruments) move only to a server on the same host. One UPDATE: two
    servers taking over at once each get a job or not, never both.
    """
    owner = job_t.c.owner
    conditions = [job_t.c.state.in_(_ACTIVE), owner.is_(None) if dead is None else owner == dead]
    if not same_host and host_bound:
        conditions.append(job_t.c.backend.not_in(list(host_bound)))
    stmt = update(job_t).where(*conditions).values(owner=me).returning(job_t.c.id)
    return sorted(row[0] for row in conn.execute(stmt))


def forget_if_empty(conn: Connection, dead: str) -> bool:
    """Retire a dead server; delete its row once it owns no unfinished job
    (one bound to its host waits for a server there). True if deleted."""
    retire(conn, dead)
    left = select(job_t.c.id).where(job_t.c.owner == dead, job_t.c.state.in_(_ACTIVE)).limit(1)
    if conn.execute(left).first() is not None:
        return False
    conn.execute(delete(server_t).where(server_t.c.id == dead))
    return True


def owned(conn: Connection, me: str, job_ids: Iterable[int], *, lock: bool) -> set[int]:
    """The jobs among ``job_ids`` that ``me`` owns; ``lock``: held against a takeover
    until the transaction ends (FOR SHARE)."""
    found: set[int] = set()
    for chunk in chunks(sorted(set(job_ids)), 900):
        query = select(job_t.c.id).where(job_t.c.id.in_(chunk), job_t.c.owner == me)
        if lock:
            query = query.with_for_update(read=True)
        found.update(row[0] for row in conn.execute(query))
    return found


@dataclass(frozen=True, slots=True)
class Claim:
    """What a dispatch claim found: jobs to hand over, lost, or locked by another server."""

    claimed: set[int]
    lost: set[int]
    busy: set[int]


def claim(conn: Connection, me: str, attempts: dict[int, int]) -> Claim:
    """Lock the jobs ``me`` may hand over now: owned by it, still at the attempt before.

    ``attempts`` maps job id -> the attempt about to be made. ``FOR UPDATE
    SKIP LOCKED``: a row another server holds (it is taking the job over) is
    skipped, never waited for; the caller tries it again. A row whose owner
    or attempt differs is lost: another server owns it or dispatched it.
    """
    claimed: set[int] = set()
    ids = sorted(attempts)
    for chunk in chunks(ids, 900):
        query = (
            select(job_t.c.id, job_t.c.attempt)
            .where(job_t.c.id.in_(chunk), job_t.c.owner == me)
            .with_for_update(skip_locked=True)
        )
        claimed.update(row[0] for row in conn.execute(query) if row[1] == attempts[row[0]] - 1)
    rest = [i for i in ids if i not in claimed]
    lost: set[int] = set()
    for chunk in chunks(rest, 900):
        query = select(job_t.c.id, job_t.c.owner, job_t.c.attempt).where(job_t.c.id.in_(chunk))
        lost.update(
            row[0] for row in conn.execute(query) if row[1] != me or row[2] != attempts[row[0]] - 1
        )
    return Claim(claimed, lost, set(rest) - lost)


def request_cancel(conn: Connection, job_id: int, reason: str) -> str | None:
    """Ask a job's owner to cancel it; the job's state, or None if it has ended."""
    stmt = (
        update(job_t)
        .where(job_t.c.id == job_id, job_t.c.state.in_(_ACTIVE))
        .values(cancel_request=reason)
        .returning(job_t.c.state)
    )
    return conn.execute(stmt).scalar()


def cancel_requests(conn: Connection, me: str) -> dict[int, str]:
    """Cancels other servers asked of ``me``'s jobs, taken (cleared) at once."""
    c = job_t.c
    mine = and_(c.owner == me, c.cancel_request.is_not(None))
    found = {row[0]: row[1] for row in conn.execute(select(c.id, c.cancel_request).where(mine))}
    if found:
        ids: Any = bindparam("ids", expanding=True)
        conn.execute(
            update(job_t).where(c.id.in_(ids)).values(cancel_request=None), {"ids": list(found)}
        )
    return found
