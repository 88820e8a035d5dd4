"""Shared fixtures: a server on a real SQLite file in a temporary data dir."""

from __future__ import annotations

import inspect
import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from gantry.main import create_app
from gantry.settings import Settings
from tests import postgres as postgres_cluster
from tests.fakes import ChainingFakeBackend, FakeBackend

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(collector: pytest.Collector, name: str, obj: object) -> None:
    # Every coroutine test runs under anyio's plugin, which runs async fixtures
    # in the test's own task: a fixture may then hold a task group (the app's
    # lifespan) across the test, which pytest-asyncio cannot do.
    if name.startswith("test") and inspect.iscoroutinefunction(obj):
        pytest.mark.anyio(obj)


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


def need(available: bool, how: str) -> None:
    """Skip a test whose component is missing, saying how to get it; in CI, fail."""
    if available:
        return
    if IN_CI:
        pytest.fail(f"required in CI but missing: {how}")
    pytest.skip(how)


@pytest.fixture(scope="session")
def postgres() -> Iterator[postgres_cluster.Cluster]:
    """One PostgreSQL cluster for the session; each test gets its own database."""
    need(postgres_cluster.available(), postgres_cluster.HOW)
    from tests.acceptance.server import free_port

    cluster, root = postgres_cluster.start(free_port())
    yield cluster
    postgres_cluster.stop(root)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test that asks for it runs on a SQLite file and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'var' / 'gantry.db'}"
    cluster: postgres_cluster.Cluster = request.getfixturevalue("postgres")
    return cluster.new_database()


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(data_dir=tmp_path / "var", default_backend="fake", database_url=database_url)


@pytest.fixture
def make_client(settings: Settings) -> Callable[..., Any]:
    """``async with make_client() as (client, app)``: the real app, in process."""
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def make(
        backends: dict[str, Any] | None = None, **overrides: Any
    ) -> AsyncIterator[tuple[httpx.AsyncClient, FastAPI]]:
        chosen = backends or {"fake": FakeBackend, "chain": ChainingFakeBackend}
        app = create_app(settings.model_copy(update=overrides), backends=chosen)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://gantry") as client:
                yield client, app

    return make


@pytest.fixture
async def client(make_client: Callable[..., Any]) -> AsyncIterator[httpx.AsyncClient]:
    async with make_client() as (client, _app):
        yield client
