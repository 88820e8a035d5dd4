"""Shared pieces of the instrument tests: a devices file, the app with real drivers, helpers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
from fastapi import FastAPI

from gantry.drivers.example_counter import DriverInterface as Counter
from gantry.drivers.psutil_driver import DriverInterface as Psutil
from gantry.drivers.testing import FaultyDriver
from gantry.main import create_app
from gantry.settings import Settings
from tests.fakes import FakeBackend

API = "/api/v1"
TERMINAL = ("completed", "failed", "cancelled")

DEVICES = """\
[[devices]]
name = "counter"
driver = "example_counter"
address = "lab"
channels = ["1", "2", "3", "4"]

[[devices]]
name = "faulty"
driver = "faulty"
address = "bench"
channels = ["1"]

[[devices]]
name = "machine"
driver = "psutil"
address = "localhost"
channels = ["cpu", "gpu"]

[[pipelines]]
name = "pip-1"
components = [{ role = "counter", device = "counter", channel = "1" }]

[[pipelines]]
name = "pip-2"
components = [{ role = "counter", device = "counter", channel = "2" }]

[[pipelines]]
name = "pip-duo"
components = [
    { role = "left", device = "counter", channel = "3" },
    { role = "right", device = "counter", channel = "4" },
]

[[pipelines]]
name = "pip-faulty"
components = [{ role = "flaky", device = "faulty", channel = "1" }]

[[pipelines]]
name = "pip-machine"
components = [{ role = "cpu", device = "machine", channel = "cpu" }]

[[pipelines]]
name = "pip-gpu"
components = [{ role = "gpu", device = "machine", channel = "gpu" }]
"""

DRIVERS: dict[str, Any] = {"example_counter": Counter, "psutil": Psutil, "faulty": FaultyDriver}


def devices_file(root: Path, text: str = DEVICES) -> Path:
    path = root / "devices.toml"
    path.write_text(text)
    return path


@asynccontextmanager
async def instrument_app(
    settings: Settings, drivers: dict[str, Any] | None = None, **overrides: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, FastAPI]]:
    """The real app (fake command backend, real drivers) with the test devices file."""
    if "devices_file" not in overrides:
        overrides["devices_file"] = devices_file(settings.data_dir.parent)
    app = create_app(
        settings.model_copy(update=overrides),
        backends={"fake": FakeBackend},
        drivers=DRIVERS if drivers is None else drivers,
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gantry") as client:
            yield client, app


def task(role: str = "counter", **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "component_role": role,
        "technique_name": "count",
        "max_duration": 0.5,
        "sampling_interval": 0.05,
    }
    return body | fields


def job_body(*tasks: dict[str, Any], sample: str = "S1", **fields: Any) -> dict[str, Any]:
    method = list(tasks) or [task()]
    return {"name": "measure", "payload": {"sample": {"name": sample}, "method": method}} | fields


async def submit(client: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(f"{API}/jobs", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def ready(client: httpx.AsyncClient, pipeline: str, sample: str = "S1") -> None:
    state = (await client.get(f"{API}/pipelines/{pipeline}")).json()
    if state["sample"] != sample:
        if state["sample"] is not None:
            assert (await client.post(f"{API}/pipelines/{pipeline}/eject")).status_code == 200
        loaded = await client.post(f"{API}/pipelines/{pipeline}/load", json={"sample": sample})
        assert loaded.status_code == 200, loaded.text
    made = await client.post(f"{API}/pipelines/{pipeline}/ready")
    assert made.status_code == 200, made.text


async def wait_job(
    client: httpx.AsyncClient,
    job_id: int,
    *states: str,
    limit: float = 20,
    check: Callable[[dict[str, Any]], bool] | None = None,
) -> dict[str, Any]:
    """Poll until the job is in one of ``states`` (default: any terminal one)."""
    wanted = states or TERMINAL
    with anyio.fail_after(limit):
        while True:
            job: dict[str, Any] = (await client.get(f"{API}/jobs/{job_id}")).json()
            if job["state"] in wanted and (check is None or check(job)):
                return job
            await anyio.sleep(0.01)


async def samples(client: httpx.AsyncClient, job_id: int, role: str | None = None) -> Any:
    params = {"role": role} if role else {}
    response = await client.get(f"{API}/jobs/{job_id}/data", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def messages(response: httpx.Response) -> str:
    detail = response.json()["detail"]
    if isinstance(detail, str):
        return detail
    return " | ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in detail)
