"""The server's Prometheus metrics: one registry per app, read when scraped.

What is counted anyway (jobs by state in the database, the writer's queue,
a backend's polls and commands, a driver's samples, each server's heartbeat)
is read at scrape time by one custom collector, so the hot path pays nothing
for it. The three latencies that exist only as they happen (dispatch, submit
to running, a writer commit) come through the engine's narrow
:class:`~gantry.jobs.meter.Meter` port, one ``observe()`` each.

Nothing here is created at import time and nothing uses prometheus_client's
global default registry: :class:`Metrics` is built by ``create_app``'s
lifespan, so two apps in one process (tests) never share a series.
"""

from __future__ import annotations

import logging
import time
from bisect import bisect_left
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import accumulate
from typing import Protocol

import anyio
from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.core import SummaryMetricFamily as SummaryFamily
from prometheus_client.exposition import choose_encoder
from prometheus_client.process_collector import ProcessCollector
from sqlalchemy import Connection, Table, func, select
from sqlalchemy import Engine as Database
from sqlalchemy.exc import SQLAlchemyError

from gantry.backends.base import Backend
from gantry.jobs.states import ACTIVE, TERMINAL, JobState
from gantry.jobs.store.read import job_t
from gantry.models import Server

log = logging.getLogger(__name__)
server_t: Table = Server.__table__  # type: ignore[attr-defined]
_ENDED = sorted(state.value for state in TERMINAL)
_UNFINISHED = sorted(state.value for state in ACTIVE)

#: Seconds; a job may wait for a cluster's queue for hours.
WAIT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 14400)
#: Seconds; sbatch takes tens of milliseconds, a local fork well under one.
DISPATCH_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
#: Seconds; one group commit on SQLite is about a millisecond.
COMMIT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)


class QueueDepth(Protocol):
    @property
    def depth(self) -> int: ...


class SampleCounts(Protocol):
    """Per driver name: samples stored, sampling ticks missed (``DriverHost``)."""

    @property
    def samples(self) -> Mapping[str, int]: ...

    @property
    def missed(self) -> Mapping[str, int]: ...


class Latencies:
    """One histogram by label, observed with a bisect and two additions (no lock).

    prometheus_client's own ``Histogram`` takes a lock per bucket and costs
    1.3 us per observe on the test machine; this one 0.35 us. Each series is observed from one
    thread only (the event loop; the writer's commits from its one thread at
    a time) and read at scrape, when its count is the sum of its buckets, so
    the exposition is always consistent.
    """

    def __init__(self, name: str, documentation: str, bounds: Sequence[float], label: str):
        self.name = name
        self.documentation = documentation
        self.label = label
        self._bounds = tuple(bounds)
        self._les = (*(str(float(bound)) for bound in bounds), "+Inf")
        #: label value -> [counts per bucket, +Inf last], and the sum of the values
        self._series: dict[str, tuple[list[int], list[float]]] = {}

    def observe(self, key: str, value: float) -> None:
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = ([0] * (len(self._bounds) + 1), [0.0])
        series[0][bisect_left(self._bounds, value)] += 1
        series[1][0] += value

    def family(self) -> Metric:
        labels = [self.label] if self.label else []
        family = HistogramMetricFamily(self.name, self.documentation, labels=labels)
        for key, (counts, total) in sorted(self._series.items()):
            buckets = list(zip(self._les, accumulate(counts), strict=True))
            family.add_metric([key] if self.label else [], buckets, total[0])
        return family


class PrometheusMeter:
    """The engine's :class:`~gantry.jobs.meter.Meter`: three histograms, read at scrape."""

    def __init__(self) -> None:
        self._dispatch = Latencies(
            "gantry_dispatch_seconds",
            "From a dispatcher taking a ready job (its intent write included) to the "
            "backend's submit returning a ref.",
            DISPATCH_BUCKETS,
            "backend",
        )
        self._started = Latencies(
            "gantry_job_submit_to_running_seconds",
            "From a job's submission to its backend reporting it running (dependencies, "
            "holds and the backend's queue included).",
            WAIT_BUCKETS,
            "backend",
        )
        self._commit = Latencies(
            "gantry_writer_commit_seconds",
            "One group commit of the database writer (all operations of a batch).",
            COMMIT_BUCKETS,
            "",
        )

    def dispatched(self, backend: str, seconds: float) -> None:
        self._dispatch.observe(backend, seconds)

    def started(self, backend: str, seconds: float) -> None:
        self._started.observe(backend, max(seconds, 0.0))  # a backend's clock may lag ours

    def committed(self, seconds: float) -> None:
        self._commit.observe("", seconds)

    def collect(self) -> Iterator[Metric]:
        yield self._dispatch.family()
        yield self._started.family()
        yield self._commit.family()


@dataclass(frozen=True, slots=True)
class Lease:
    server: str
    host: str
    #: seconds since its last heartbeat, by the database's clock
    age: float


@dataclass(frozen=True, slots=True)
class Stored:
    """What the database says at one scrape."""

    jobs: dict[tuple[str, str], int]
    leases: list[Lease]


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)  # SQLite: naive UTC


def count_jobs(conn: Connection, states: Collection[str]) -> dict[tuple[str, str], int]:
    c = job_t.c
    query = select(c.backend, c.state, func.count()).where(c.state.in_(states))
    return {
        (row[0], row[1]): int(row[2]) for row in conn.execute(query.group_by(c.backend, c.state))
    }


def lease_ages(conn: Connection) -> list[Lease]:
    now = _aware(conn.execute(select(func.now())).scalar_one())
    s = server_t.c
    return [
        Lease(row[0], row[1], (now - _aware(row[2])).total_seconds())
        for row in conn.execute(select(s.id, s.host, s.heartbeat_at).order_by(s.id))
    ]


class StoredCounts:
    """The database's side of a scrape, read on a worker thread.

    Unfinished jobs are few and indexed by state: counted at every scrape.
    Ended jobs are most of the table and their count by backend is a full
    scan (3.5 s for 1M jobs on SQLite on the test machine): it is reused for
    ``REUSE`` times as long as it took, so it never takes more than a
    twentieth of a core however large the table grows, and on a table of
    thousands (a millisecond) it is fresh at every scrape.
    """

    REUSE = 20

    def __init__(self, database: Database) -> None:
        self._database = database
        self._ended: dict[tuple[str, str], int] = {}
        self._ended_until = float("-inf")

    def read(self) -> Stored:
        with self._database.connect() as conn:
            if time.monotonic() >= self._ended_until:
                began = time.monotonic()
                self._ended = count_jobs(conn, _ENDED)
                took = time.monotonic() - began
                self._ended_until = began + (1 + self.REUSE) * took
            jobs = {**self._ended, **count_jobs(conn, _UNFINISHED)}
            return Stored(jobs, lease_ages(conn))


class StateCollector:
    """Reads what the server counts anyway, at each scrape (a prometheus_client collector)."""

    def __init__(
        self, backends: Mapping[str, Backend], writer: QueueDepth, drivers: SampleCounts | None
    ) -> None:
        self._backends = backends
        self._writer = writer
        self._drivers = drivers
        #: None: the database did not answer this scrape
        self.stored: Stored | None = Stored({}, [])

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "gantry_database_up", "1 if the database answered this scrape, else 0."
        )
        up.add_metric([], 0 if self.stored is None else 1)
        yield up
        if self.stored is not None:
            yield from self._jobs(self.stored)
            yield self._leases(self.stored)
        yield from self._backend_work()
        depth = GaugeMetricFamily(
            "gantry_writer_queue_depth", "Database operations waiting for the next commit."
        )
        depth.add_metric([], self._writer.depth)
        yield depth
        yield from self._driver_samples()

    def _leases(self, stored: Stored) -> Metric:
        lease = GaugeMetricFamily(
            "gantry_server_lease_age_seconds",
            "Seconds since each server's last heartbeat, by the database's clock; one past "
            "the lease time has lost its jobs to the others.",
            labels=["server", "host"],
        )
        for row in stored.leases:
            lease.add_metric([row.server, row.host], row.age)
        return lease

    def _jobs(self, stored: Stored) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "gantry_jobs",
            "Jobs in the database by backend and state (the same on every server of one "
            "database: aggregate with max, not sum).",
            labels=["backend", "state"],
        )
        counts = stored.jobs
        for backend in sorted({b for b, _ in counts} | set(self._backends)):
            for state in JobState:
                family.add_metric([backend, state.value], counts.get((backend, state.value), 0))
        yield family

    def _backend_work(self) -> Iterator[Metric]:
        polls = SummaryFamily(
            "gantry_backend_poll_seconds",
            "A backend's poll cycles (one scheduler query for all its jobs) and their time.",
            labels=["backend"],
        )
        commands = CounterMetricFamily(
            "gantry_backend_commands",
            "Scheduler commands a backend ran (sbatch, squeue, qstat), by name.",
            labels=["backend", "command"],
        )
        for name, backend in sorted(self._backends.items()):
            try:
                work = backend.metrics()
            except Exception:  # a plug-in's bug must not take /metrics down
                continue
            if work is None:
                continue
            polls.add_metric([name], work.polls, work.poll_seconds)
            for command, count in sorted(work.commands.items()):
                commands.add_metric([name, command], count)
        yield polls
        yield commands

    def _driver_samples(self) -> Iterator[Metric]:
        samples = CounterMetricFamily(
            "gantry_driver_samples",
            "Samples stored from a driver's components (rate() is samples per second).",
            labels=["driver"],
        )
        lost = CounterMetricFamily(
            "gantry_driver_samples_lost",
            "Sampling ticks a driver's components missed because they fell behind.",
            labels=["driver"],
        )
        if self._drivers is not None:
            for driver, count in sorted(self._drivers.samples.items()):
                samples.add_metric([driver], count)
            for driver, count in sorted(self._drivers.missed.items()):
                lost.add_metric([driver], count)
        yield samples
        yield lost


class Metrics:
    """One app's registry: the meter the engine observes into, and what is read at scrape."""

    def __init__(self, database: Database) -> None:
        self._stored = StoredCounts(database)
        self.registry = CollectorRegistry(auto_describe=False)
        self.meter = PrometheusMeter()
        self.registry.register(self.meter)
        ProcessCollector(registry=self.registry)
        self._state: StateCollector | None = None

    def read_from(
        self,
        *,
        backends: Mapping[str, Backend],
        writer: QueueDepth,
        drivers: SampleCounts | None = None,
    ) -> None:
        """What the scrape-time collector reads (live objects, never copied)."""
        self._state = StateCollector(backends, writer, drivers)
        self.registry.register(self._state)

    async def scrape(self, accept: str = "") -> tuple[bytes, str]:
        """The exposition and its content type: OpenMetrics if ``accept`` (a request's
        Accept header) asks for it, else Prometheus text; the database read first, on
        a worker thread."""
        if self._state is not None:
            try:
                self._state.stored = await anyio.to_thread.run_sync(self._stored.read)
            except SQLAlchemyError as exc:  # away (a restart): the rest still answers
                log.debug("metrics: the database did not answer: %s", exc)
                self._state.stored = None
        encode, content_type = choose_encoder(accept)
        return encode(self.registry), content_type
