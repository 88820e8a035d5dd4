"""Several servers on one PostgreSQL: identity, heartbeat, takeover, fencing.

Each server has a row in ``gantry_server`` and renews its lease (the row's
``heartbeat_at``, by the database's clock) every tick from a thread of its
own, so a busy event loop does not lose it; each unfinished job has one
owner, the server that submitted it or took it over. Every tick a server

- takes over the jobs of a dead server: one whose process is gone (same
  machine: its pid is checked), one retired (it stopped, or was taken over),
  or one whose lease ran out while this server was
  itself connected for a whole lease (so a restart of the database, which
  silences everyone at once, kills no one); jobs of a backend bound to its
  machine (``local``, ``instrument``) move only to a server on the same host.
  Taken jobs go through recovery (:func:`~gantry.jobs.recovery.take_back`):
  re-adopted through the backend's ``lookup``/``adopt``, never run again;
- carries out the cancels other servers asked of its jobs;
- releases its jobs waiting for a dependency another server ran, once it ended;
- publishes other servers' job events to its own streams.

A server that finds its row retired has lost its lease: the others own its
jobs now. It stops its backends (nothing more starts) and its process, and
touches nothing it no longer owns (its writes are fenced by owner in
:mod:`gantry.jobs.store`). Its process manager starts it again as a new server.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import anyio
from anyio.abc import TaskStatus
from sqlalchemy import Engine as Database
from sqlalchemy import func, select

from gantry.jobs.engine import Engine
from gantry.jobs.recovery import take_back
from gantry.jobs.store import owners
from gantry.jobs.store.read import event_t, job_states, job_t, load_active_rows
from gantry.jobs.store.records import ActiveRows
from gantry.startup import SingleServer

log = logging.getLogger(__name__)

#: Backends whose jobs run on their server's machine: taken over only on the same host.
HOST_BOUND = ("local", "instrument")
#: Event ids looked back over, since ids are handed out before their commits land.
EVENT_LOOKBACK = 500


def machine_id() -> str:
    """Boot id and pid namespace: where a pid names the same process as here."""
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as file:
            boot = file.read().strip()
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        return f"unknown-{uuid.uuid4().hex}"  # never equal to another's: pids go unchecked
    return f"{boot} {namespace}"[:100]


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` runs; a zombie (dead, not yet reaped by its parent) does not."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as file:
            stat = file.read()
    except FileNotFoundError:
        return False
    except OSError:
        return True  # cannot tell: alive, to be safe
    state = stat.rfind(b")") + 2  # after "pid (comm) "
    return stat[state : state + 1] != b"Z"


class LeaseLost(RuntimeError):
    """The other servers took this server's jobs: it must stop."""


class Membership:
    """This server among the others on one database (PostgreSQL only)."""

    def __init__(
        self,
        database: Database,
        *,
        lease: float,
        on_lost: Callable[[], None],
        host_bound: Sequence[str] = HOST_BOUND,
    ) -> None:
        self.database = database
        self.lease = lease
        self.tick = min(1.0, lease / 4)
        self.id = uuid.uuid4().hex
        self.host = socket.gethostname()[:255]
        self.machine = machine_id()
        self.on_lost = on_lost
        self.host_bound = tuple(host_bound)
        self._connected_since: float | None = None
        self._events_after: int | None = None
        self._seen: deque[int] = deque(maxlen=4 * EVENT_LOOKBACK)
        self._stopping = threading.Event()
        self._lost = False

    # --- start and stop (blocking: run in a thread) ------------------------------

    def join(self) -> list[int]:
        """Register, and take the jobs of servers here whose process is gone and of none."""
        with self.database.begin() as conn:
            owners.register(conn, self.id, self.host, self.machine, os.getpid())
            self._events_after = conn.execute(select(func.max(event_t.c.id))).scalar()
        taken = self._take(None, same_host=True)
        for other in self._others():
            if other.retired or self._gone(other):
                taken += self._take(other.id, same_host=other.host == self.host)
        self._connected_since = time.monotonic()
        # The lease is renewed by a thread of its own from here: through the rest
        # of the start-up (backends can take seconds), and whatever keeps the event
        # loop busy (a takeover of thousands of jobs, a machine under load).
        threading.Thread(target=self._keep_lease, name="gantry-lease", daemon=True).start()
        return taken

    def _keep_lease(self) -> None:
        while not self._stopping.wait(self.tick):
            try:
                renewed = self._heartbeat()
            except Exception as exc:
                # The database is away: this server is not connected, and judges no
                # other until it has been connected for a whole lease again.
                self._connected_since = None
                log.warning("server %s could not renew its lease: %s", self.id, exc)
                continue
            if not renewed:
                self._lost = True
                return
            if self._connected_since is None:
                self._connected_since = time.monotonic()

    def leave(self) -> None:
        """A clean stop: the lease ends now, so the others take the jobs at once."""
        self._stopping.set()
        with self.database.begin() as conn:
            owners.retire(conn, self.id)

    # --- the loop ------------------------------------------------------------------

    async def run(
        self,
        engine: Engine,
        *,
        task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        task_status.started()
        while True:
            await anyio.sleep(self.tick)
            try:
                await self._round(engine)
            except LeaseLost as exc:
                log.critical("%s", exc)
                for backend in engine.backends.values():
                    with anyio.CancelScope(shield=True):
                        await backend.close()
                self.on_lost()
                return
            except Exception as exc:  # the database is away: the next round tries again
                log.warning("server %s could not reach the database: %s", self.id, exc)

    async def _round(self, engine: Engine) -> None:
        if self._lost:
            raise LeaseLost(
                f"server {self.id} lost its lease (no heartbeat for {self.lease:g} s): "
                "other servers own its jobs now; stopping"
            )
        since = self._connected_since
        judge = since is not None and time.monotonic() - since >= self.lease
        for other in await anyio.to_thread.run_sync(self._others):
            if other.retired or self._gone(other) or (judge and other.silent_for > self.lease):
                take = partial(self._take, other.id, same_host=other.host == self.host)
                ids = await anyio.to_thread.run_sync(take)
                if ids:
                    log.warning(
                        "server %s took over %d jobs of server %s (%s, pid %d)",
                        self.id, len(ids), other.id, other.host, other.pid,
                    )  # fmt: skip
                    await take_back(engine, await anyio.to_thread.run_sync(self._load, ids))
        for job_id, reason in (await anyio.to_thread.run_sync(self._cancel_requests)).items():
            if job_id in engine.jobs:
                await engine.cancel(job_id, reason)
        await self._foreign_dependencies(engine)
        if engine.hub.subscriber_count:
            self._publish(engine, await anyio.to_thread.run_sync(self._new_events))
        else:  # nobody streams here: a stream that starts reads its backlog itself
            self._events_after = None

    def _gone(self, other: owners.ServerRow) -> bool:
        """Certainly dead: on this machine, and its process is not there."""
        return other.machine == self.machine and not pid_alive(other.pid)

    async def _foreign_dependencies(self, engine: Engine) -> None:
        gate = engine.gate
        if not gate.foreign:
            return
        waited = list(gate.foreign)
        states = await anyio.to_thread.run_sync(self._states, waited)
        for dep_id in waited:
            state, name = states.get(dep_id, ("missing", "?"))
            if state in ("completed", "failed", "cancelled", "missing"):
                gate.foreign_ended(dep_id, state, name)

    def _publish(self, engine: Engine, events: list[dict[str, Any]]) -> None:
        fresh = [e for e in events if e["id"] not in self._seen]
        self._seen.extend(e["id"] for e in fresh)
        if fresh:
            engine.hub.publish(fresh)

    # --- SQL, each on its own connection (never behind the writer's queue) ---------

    def _heartbeat(self) -> bool:
        with self.database.begin() as conn:
            return owners.heartbeat(conn, self.id)

    def _others(self) -> list[owners.ServerRow]:
        with self.database.connect() as conn:
            return owners.other_servers(conn, self.id)

    def _take(self, dead: str | None, *, same_host: bool) -> list[int]:
        with self.database.begin() as conn:
            ids = owners.take_jobs(
                conn, self.id, dead, host_bound=self.host_bound, same_host=same_host
            )
            if dead is not None:
                owners.forget_if_empty(conn, dead)
        return ids

    def _load(self, job_ids: list[int]) -> ActiveRows:
        with self.database.connect() as conn:
            return load_active_rows(conn, self.id, job_ids)

    def _cancel_requests(self) -> dict[int, str]:
        with self.database.begin() as conn:
            return owners.cancel_requests(conn, self.id)

    def _states(self, job_ids: list[int]) -> dict[int, tuple[str, str]]:
        with self.database.connect() as conn:
            return job_states(conn, job_ids)

    def _new_events(self) -> list[dict[str, Any]]:
        """Events of jobs other servers own, committed since the last look."""
        if self._events_after is None:
            with self.database.connect() as conn:
                self._events_after = conn.execute(select(func.max(event_t.c.id))).scalar() or 0
        after = self._events_after
        query = (
            select(event_t)
            .join(job_t, job_t.c.id == event_t.c.job_id)
            .where(event_t.c.id > after - EVENT_LOOKBACK, job_t.c.owner.is_distinct_from(self.id))
            .order_by(event_t.c.id)
            .limit(10_000)
        )
        with self.database.connect() as conn:
            rows = [dict(row) for row in conn.execute(query).mappings()]
        if rows:
            self._events_after = max(after, rows[-1]["id"])
        return rows


class Seat:
    """This server's place on its database, from start to stop.

    SQLite: the database is this server's alone; a second one is refused
    (:class:`~gantry.startup.SingleServer`). PostgreSQL: a :class:`Membership`.
    """

    def __init__(self, url: str, lease: float) -> None:
        self.lock: SingleServer | None = None
        self.membership: Membership | None = None
        self._lease = lease
        if url.startswith("sqlite") and ":memory:" not in url:
            self.lock = SingleServer(url)
            self.lock.acquire()

    @property
    def owner(self) -> str | None:
        """The owner of the jobs this server submits; None when it is the only one."""
        return None if self.membership is None else self.membership.id

    def join(self, database: Database) -> None:
        """Blocking: register with the other servers (PostgreSQL)."""
        if self.lock is not None or database.dialect.name == "sqlite":
            return
        self.membership = Membership(database, lease=self._lease, on_lost=stop_process)
        taken = self.membership.join()
        if taken:
            log.warning("took over %d jobs of servers that are gone", len(taken))

    async def run(
        self, engine: Engine, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        if self.membership is None:
            task_status.started()
            return
        await self.membership.run(engine, task_status=task_status)

    def leave(self) -> None:
        """Blocking: give the place up (the lease ends now, or the lock is released)."""
        if self.membership is not None:
            try:
                self.membership.leave()
            except Exception as exc:  # the database is away: the lease runs out instead
                log.warning("could not end this server's lease: %s", exc)
        if self.lock is not None:
            self.lock.release()


def stop_process() -> None:
    """A server that lost its lease stops, as after SIGTERM; it is started again anew."""
    signal.raise_signal(signal.SIGTERM)
