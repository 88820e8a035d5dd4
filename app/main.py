"""``create_app(settings)``: builds the whole server; nothing exists before.

The lifespan migrates the database, opens one anyio task group and starts
the writer and the engine in it (the engine starts one task group per
backend), each with ``tg.start`` so the app serves only once all are ready.
Shutdown cancels the group: running jobs keep running (their supervisors
outlive the server) and are re-adopted on the next start.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager

import anyio
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from sqlalchemy import Connection

from gantry import db
from gantry.api import errors
from gantry.api.auth import TokenCache
from gantry.api.deps import Reader
from gantry.api.limits import BodyLimit
from gantry.api.main import api_router, root_router
from gantry.backends.base import Backend, BackendContext
from gantry.backends.registry import BackendEntry, discover
from gantry.config_store import ConfigStore
from gantry.drivers.interface_2_0 import ModelInterface
from gantry.instruments.backend import NAME as INSTRUMENT
from gantry.instruments.backend import InstrumentBackend, build_instruments, driver_registry
from gantry.instruments.service import Instruments
from gantry.jobs.engine import Engine
from gantry.jobs.events import EventHub
from gantry.jobs.servers import Seat
from gantry.jobs.service import Catalog
from gantry.jobs.states import ACTIVE
from gantry.jobs.store import job_states
from gantry.jobs.store.sql import SqlStore
from gantry.jobs.writer import Writer
from gantry.metrics import Metrics
from gantry.settings import Settings
from gantry.startup import StartupRefused, devices_or_refuse, is_loopback, refuse_exposure

log = logging.getLogger(__name__)


__all__ = ["StartupRefused", "create_app"]

_ACTIVE_STATES = frozenset(s.value for s in ACTIVE)


def _active_among(conn: Connection, job_ids: Collection[int]) -> set[int]:
    """The jobs among ``job_ids`` that have not ended (for the pipelines' start-up)."""
    states = job_states(conn, list(job_ids))
    return {job_id for job_id, (state, _) in states.items() if state in _ACTIVE_STATES}


def create_app(
    settings: Settings | None = None,
    *,
    backends: dict[str, type[Backend]] | None = None,
    drivers: dict[str, type[ModelInterface]] | None = None,
) -> FastAPI:
    """The server. ``backends``/``drivers`` replace entry-point discovery (tests, embedding)."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        data_dir = settings.resolved_data_dir
        for sub in ("logs", "runs", "work"):
            (data_dir / sub).mkdir(parents=True, exist_ok=True)
        url = settings.resolved_database_url
        seat = Seat(url, settings.server_lease)  # a second server on SQLite is refused here
        await anyio.to_thread.run_sync(db.upgrade, url)
        database = db.make_engine(url)
        await anyio.to_thread.run_sync(seat.join, database)
        exposed = not is_loopback(settings.host)
        tokens = TokenCache(database, always_required=exposed)
        registry = driver_registry(drivers)
        try:
            if exposed:
                refuse_exposure(settings.host, bool(await tokens.current()))
            devices = devices_or_refuse(settings.resolved_devices_file, registry.names())
        except StartupRefused:
            seat.leave()
            database.dispose()
            raise
        config = ConfigStore(data_dir / "config.json")
        installed = (
            discover(enabled=settings.enabled_backends)
            if backends is None
            else {
                name: BackendEntry(name, f"{cls.__module__}:{cls.__qualname__}", cls, None)
                for name, cls in backends.items()
            }
        )
        wanted = settings.enabled_backends or list(installed)
        metrics = Metrics(database)  # this app's own registry
        writer = Writer(database, metrics.meter)
        hub = EventHub()
        running: dict[str, Backend] = {}
        engine = Engine(
            store=SqlStore(writer, database, seat.owner),
            backends=running,
            hub=hub,
            data_dir=data_dir,
            meter=metrics.meter,
        )
        # Instrument jobs: drivers of the devices file, through the Backend contract.
        instruments = build_instruments(
            data_dir=data_dir,
            devices=devices,
            registry=registry,
            config=config,
            transact=writer.execute,
            active_among=_active_among,
            report=engine.reporter(INSTRUMENT),
            wake=engine.waker(INSTRUMENT),
        )
        for name in wanted:
            entry = installed.get(name)
            if entry is None or entry.cls is None:
                log.warning(
                    "backend %s is not available: %s",
                    name,
                    entry.error if entry else "not installed",
                )
                continue
            context = BackendContext(
                name=name,
                data_dir=data_dir,
                config=config.section(f"backend.{name}"),
                report=engine.reporter(name),
                wake=engine.waker(name),
            )
            try:
                running[name] = entry.cls(context)
            except Exception as exc:
                log.exception("backend %s failed to start", name)
                installed[name] = BackendEntry(name, entry.value, None, f"failed to start: {exc}")
        running[INSTRUMENT] = instruments
        target = f"{InstrumentBackend.__module__}:{InstrumentBackend.__qualname__}"
        installed[INSTRUMENT] = BackendEntry(INSTRUMENT, target, InstrumentBackend, None)
        app.state.instruments = Instruments(instruments)
        app.state.settings = settings
        app.state.engine = engine
        app.state.catalog = Catalog(
            running=running,
            installed=installed,
            default=settings.default_backend,
            max_array_tasks=settings.max_array_tasks,
        )
        app.state.reader = Reader(database)
        app.state.tokens = tokens
        app.state.config = config
        metrics.read_from(backends=running, writer=writer, drivers=instruments.host)
        app.state.metrics = metrics
        try:
            async with anyio.create_task_group() as tg:
                await tg.start(writer.run)
                await tg.start(engine.run)
                await tg.start(seat.run, engine)
                log.info(
                    "gantry is serving",
                    extra={"data_dir": str(data_dir), "backends": sorted(running)},
                )
                # Start-up objects are never garbage: frozen out of every collection.
                # Nearly everything a request makes is freed by reference counting,
                # so cycles are looked for only after 300,000 net new objects: a
                # young collection then mostly finds long-lived jobs (~80 ms on the
                # test machine, every ~150,000 batch-submitted jobs) instead of
                # rescanning each batch's live objects (8-10 % of batch-submit CPU
                # at 20,000). See docs/benchmarks.md.
                gc.collect()
                gc.freeze()
                gc.set_threshold(300_000, 5, 100)
                yield
                await engine.drain()
                tg.cancel_scope.cancel()
        finally:
            await anyio.to_thread.run_sync(seat.leave)
            database.dispose()

    app = FastAPI(
        title="gantry",
        version="0.1.0",
        summary="Job execution service: command jobs on backends, instrument jobs on drivers.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    errors.install(app)
    app.include_router(api_router)
    app.include_router(root_router)
    from gantry.dashboard import router as dashboard_router

    app.include_router(dashboard_router)
    if settings.cors_origins:  # off unless a site asks for it
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["*"],
        )
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    return app
