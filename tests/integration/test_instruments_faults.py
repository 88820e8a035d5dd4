"""Drivers that raise or hang: the job fails with the driver's reason within
max_duration plus a grace period; the server and the other components go on;
the component is usable again. And devices files that must stop start-up."""

from __future__ import annotations

import time
from pathlib import Path

import anyio
import pytest

from gantry.main import StartupRefused
from gantry.settings import Settings
from tests.integration.instruments import (
    API,
    DEVICES,
    devices_file,
    instrument_app,
    job_body,
    ready,
    samples,
    submit,
    task,
    wait_job,
)

FAULTY = {"max_duration": 2.0, "sampling_interval": 0.1}
#: FaultyDevice.grace_period, plus scheduling slack
GRACE = 0.2 + 0.5


@pytest.mark.parametrize(
    ("fault", "reason", "limit"),
    [
        ("raise", "RuntimeError: injected fault: sensor unplugged", 0.1 + GRACE),
        ("broken", "RuntimeError: injected fault: cannot write", 0.1 + GRACE),
        ("hang", "did not finish within max_duration (2.0 s) + grace (0.2 s)", 2.0 + GRACE),
    ],
)
async def test_a_faulty_driver_fails_its_job_and_nothing_else(
    settings: Settings, fault: str, reason: str, limit: float
) -> None:
    async with instrument_app(settings) as (client, _):
        await ready(client, "pip-faulty")
        await ready(client, "pip-1")
        healthy = await submit(client, job_body(task(max_duration=3, sampling_interval=0.1)))
        params = {"fault": fault, "delay": 0} if fault == "broken" else {"fault": fault}
        body = job_body(task("flaky", task_params=params, **FAULTY), name="flaky")
        begun = time.monotonic()
        job = await submit(client, body)
        done = await wait_job(client, job["id"])
        took = time.monotonic() - begun
        assert done["state"] == "failed"
        assert reason in done["reason"] and "task 0" in done["reason"], done["reason"]
        assert took < limit + 0.5, took
        # the server and the other job went on
        assert (await client.get("/healthz")).json()["status"] == "ok"
        other = await wait_job(client, healthy["id"])
        assert other["state"] == "completed" and other["reason"].endswith("30 samples")
        # the component was reset and serves the next job
        status = (await client.get(f"{API}/components/faulty/1")).json()
        assert status["status"]["running"] is False
        await ready(client, "pip-faulty")
        again = await submit(
            client, job_body(task("flaky", max_duration=0.3, sampling_interval=0.1))
        )
        assert (await wait_job(client, again["id"]))["state"] == "completed"
        assert len((await samples(client, again["id"]))["roles"][0]["samples"]) == 3


async def test_a_hung_step_after_some_samples_keeps_them(settings: Settings) -> None:
    async with instrument_app(settings) as (client, _):
        await ready(client, "pip-faulty")
        body = job_body(
            task("flaky", task_params={"work": "30 s"}, max_duration=1, sampling_interval=0.1)
        )
        job = await submit(client, body)
        done = await wait_job(client, job["id"])
        assert done["state"] == "failed" and "did not finish" in done["reason"]
        # the first step is the one that hangs: no sample was stored, nothing invented
        assert (await samples(client, job["id"]))["roles"][0]["samples"] == []


async def test_cancelling_a_hung_job_ends_it_within_the_grace_period(settings: Settings) -> None:
    async with instrument_app(settings) as (client, _):
        await ready(client, "pip-faulty")
        job = await submit(
            client,
            job_body(
                task("flaky", task_params={"fault": "hang"}, max_duration=60, sampling_interval=0.1)
            ),
        )
        await wait_job(client, job["id"], "running")
        await anyio.sleep(0.2)
        begun = time.monotonic()
        await client.post(f"{API}/jobs/{job['id']}/cancel")
        assert (await wait_job(client, job["id"]))["state"] == "cancelled"
        assert time.monotonic() - begun < 0.1 + GRACE + 0.3


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (
            ('driver = "faulty"', 'driver = "nope"'),
            "line 9: devices[1].driver: no driver named 'nope' is installed",
        ),
        (('channels = ["1"]', 'channels = ["1", "1"]'), "line 11: devices[1].channels"),
        (
            (
                '{ role = "right", device = "counter", channel = "4" }',
                '{ role = "right", device = "counter", channel = "9" }',
            ),
            "line 31: pipelines[2].components[1].channel: device 'counter' has no channel '9'",
        ),
        (('name = "pip-2"', 'name = "pip-1"'), "line 24: pipelines[1].name: pipeline name"),
        (
            ('address = "bench"', 'adress = "bench"'),
            "line 10: devices[1].adress: unknown field: did you mean 'address'?",
        ),
        (('[[pipelines]]\nname = "pip-1"', '[[pipelines]\nname = "pip-1"'), "not valid TOML"),
    ],
)
async def test_a_malformed_devices_file_stops_start_up_naming_line_and_field(
    settings: Settings, tmp_path: Path, change: tuple[str, str], words: str
) -> None:
    assert change[0] in DEVICES
    path = devices_file(tmp_path, DEVICES.replace(*change))
    with pytest.raises(StartupRefused) as refused:
        async with instrument_app(settings, devices_file=path):
            pass
    assert f"devices file {path}" in str(refused.value)
    assert words in str(refused.value), str(refused.value)


async def test_no_devices_file_means_no_instruments(settings: Settings) -> None:
    async with instrument_app(settings, devices_file=None) as (client, _):
        assert (await client.get(f"{API}/pipelines")).json() == []
        response = await client.post(f"{API}/jobs", json=job_body())
        assert response.status_code == 422
        assert "no devices file" in response.text
