"""Drivers, devices, components and pipelines over the REST API, with real drivers
inside the real server (in process), on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest

from gantry.settings import Settings
from tests.integration.instruments import (
    API,
    instrument_app,
    job_body,
    messages,
    ready,
    submit,
    task,
    wait_job,
)


async def test_lists_drivers_devices_components_and_pipelines(settings: Settings) -> None:
    async with instrument_app(settings) as (client, _):
        drivers = {d["name"]: d for d in (await client.get(f"{API}/drivers")).json()}
        assert drivers["example_counter"]["running"] is True
        assert drivers["example_counter"]["components"] == [f"counter/{i}" for i in "1234"]
        devices = (await client.get(f"{API}/devices")).json()
        assert [d["name"] for d in devices] == ["counter", "faulty", "machine"]
        comps = {
            f"{c['device']}/{c['channel']}": c
            for c in (await client.get(f"{API}/components")).json()
        }
        assert comps["counter/1"]["capabilities"] == ["count", "random"]
        assert comps["counter/1"]["roles"] == [{"pipeline": "pip-1", "role": "counter"}]
        # psutil has no "gpu" sensor: that component is unavailable, the rest works
        assert comps["machine/gpu"]["available"] is False
        assert "gpu" in comps["machine/gpu"]["error"]
        assert comps["machine/cpu"]["capabilities"] == ["monitor"]
        gpu = (await client.get(f"{API}/components/machine/gpu")).json()
        assert gpu["available"] is False and gpu["status"] == {}
        measured = await client.post(f"{API}/components/machine/gpu/measure")
        assert measured.status_code == 503 and "unavailable" in measured.json()["detail"]
        pipes = {p["name"]: p for p in (await client.get(f"{API}/pipelines")).json()}
        assert pipes["pip-duo"]["components"][1] == {
            "role": "right",
            "device": "counter",
            "channel": "4",
            "available": True,
        }
        assert pipes["pip-gpu"]["available"] is False
        assert pipes["pip-1"] | {"updated_at": None} == {
            "name": "pip-1",
            "sample": None,
            "ready": False,
            "job_id": None,
            "available": True,
            "components": pipes["pip-1"]["components"],
            "updated_at": None,
        }
        backends = {b["name"]: b for b in (await client.get(f"{API}/backends")).json()}
        assert backends["instrument"]["healthy"] is False  # the gpu component is down
        assert "machine/gpu" in backends["instrument"]["message"]


async def test_component_status_attrs_get_set_and_measure(settings: Settings) -> None:
    async with instrument_app(settings) as (client, _):
        base = f"{API}/components/counter/1"
        status = (await client.get(base)).json()
        assert status["status"] | {"val": 0} == {
            "val": 0,
            "delay": 0.0,
            "mode": "up",
            "running": False,
            "task": None,
            "queued": [],
        }
        assert status["constants"] == {"model": "example counter", "serial": "lab/1"}
        attrs = (await client.get(f"{base}/attrs")).json()
        assert attrs["delay"] == {
            "type": "float",
            "rw": True,
            "status": True,
            "units": "s",
            "minimum": 0.0,
            "maximum": 10.0,
            "options": None,
        }
        assert attrs["mode"]["options"] == ["down", "up"]
        # a value with units is converted to the attr's units
        put = await client.put(f"{base}/attrs/delay", json={"value": "5 ms"})
        assert put.status_code == 200, put.text
        assert put.json()["value"] == pytest.approx(0.005) and put.json()["units"] == "s"
        got = (await client.get(f"{base}/attrs/delay")).json()
        assert got["value"] == pytest.approx(0.005)
        sample = await client.post(f"{base}/measure")
        assert sample.status_code == 200
        assert set(sample.json()["values"]) == {"val", "delay", "min", "max", "mode"}
        assert sample.json()["units"] == {"delay": "s"}
        last = (await client.get(base)).json()["last_data"]
        assert last["uts"] == sample.json()["uts"]


@pytest.mark.parametrize(
    ("attr", "value", "status", "words"),
    [
        ("delay", "5 kg", 422, "units of [mass]"),
        ("delay", 11, 422, "above the maximum"),
        ("mode", "sideways", 422, "use one of 'down', 'up'"),
        ("val", 3, 422, "read-only"),
        ("nope", 1, 404, "'nope' is not an attr of component counter/1"),
    ],
)
async def test_bad_attr_writes_are_refused_with_the_reason(
    settings: Settings, attr: str, value: Any, status: int, words: str
) -> None:
    async with instrument_app(settings) as (client, _):
        response = await client.put(
            f"{API}/components/counter/1/attrs/{attr}", json={"value": value}
        )
        assert response.status_code == status, response.text
        assert words in messages(response)


async def test_unknown_component_and_pipeline_are_404(settings: Settings) -> None:
    async with instrument_app(settings) as (client, _):
        response = await client.get(f"{API}/components/counter/9")
        assert response.status_code == 404 and "counter/1" in response.json()["detail"]
        response = await client.post(f"{API}/pipelines/nope/ready")
        assert response.status_code == 404 and "pip-1" in response.json()["detail"]


async def test_pipeline_load_ready_eject_rules_and_state_survives_restart(
    settings: Settings,
) -> None:
    async with instrument_app(settings) as (client, _):
        url = f"{API}/pipelines/pip-1"
        refused = await client.post(f"{url}/ready")
        assert refused.status_code == 409 and "load one first" in refused.json()["detail"]
        loaded = await client.post(f"{url}/load", json={"sample": "S1"})
        assert loaded.json()["sample"] == "S1" and loaded.json()["ready"] is False
        twice = await client.post(f"{url}/load", json={"sample": "S2"})
        assert twice.status_code == 409 and "eject it first" in twice.json()["detail"]
        assert (await client.post(f"{url}/ready")).json()["ready"] is True
        bad = await client.post(f"{url}/load", json={"sample": "a b"})
        assert bad.status_code == 422
    async with instrument_app(settings) as (client, _):
        state = (await client.get(f"{API}/pipelines/pip-1")).json()
        assert (state["sample"], state["ready"]) == ("S1", True)
        ejected = (await client.post(f"{API}/pipelines/pip-1/eject")).json()
        assert (ejected["sample"], ejected["ready"]) == (None, False)


async def test_a_busy_pipeline_and_its_components_refuse_changes(settings: Settings) -> None:
    async with instrument_app(settings) as (client, _):
        await ready(client, "pip-1")
        job = await submit(client, job_body(task(max_duration=5, sampling_interval=0.1)))
        await wait_job(client, job["id"], "running")
        for action, body in (("eject", None), ("ready", {"ready": False})):
            response = await client.post(f"{API}/pipelines/pip-1/{action}", json=body)
            assert response.status_code == 409
            assert f"running job {job['id']}" in response.json()["detail"]
        comp = f"{API}/components/counter/1"
        busy = await client.put(f"{comp}/attrs/delay", json={"value": 0})
        assert busy.status_code == 409 and f"job {job['id']}" in busy.json()["detail"]
        assert (await client.post(f"{comp}/measure")).status_code == 409
        assert (await client.get(comp)).json()["job_id"] == job["id"]
        await client.post(f"{API}/jobs/{job['id']}/cancel")
        await wait_job(client, job["id"], "cancelled")
        assert (await client.get(comp)).json()["job_id"] is None


COUNT = {
    "component_role": "counter",
    "technique_name": "count",
    "max_duration": 1,
    "sampling_interval": 0.1,
}


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"technique_name": "fly"}, "method.0.technique_name", "use one of: count, random"),
        ({"component_role": "oven"}, "method.0.component_role", "'oven' is in no pipeline"),
        ({"task_params": {"speed": 1}}, "method.0.task_params", "'speed' is not an attr"),
        ({"task_params": {"delay": "3 kg"}}, "method.0.task_params", "units of [mass]"),
        ({"task_params": {"delay": "20 s"}}, "method.0.task_params", "above the maximum"),
        ({"task_params": {"mode": "left"}}, "method.0.task_params", "use one of"),
        ({"task_params": {"val": 3}}, "method.0.task_params", "'val' is read-only"),
        ({"sampling_interval": 0}, "method.0.sampling_interval", "> 0"),
        ({"sampling_interval": -1}, "method.0.sampling_interval", "> 0"),
        ({"sampling_interval": 2}, "method.0.sampling_interval", "longer than max_duration"),
        ({"max_duration": 0}, "method.0.max_duration", "> 0"),
        ({"max_duration": "ten"}, "method.0.max_duration", "cannot read 'ten'"),
        ({"start_with_task_name": "x"}, "method.0.start_with_task_name", "names no task"),
        ({"extra": 1}, "method.0.extra", "Extra inputs"),
    ],
)
async def test_bad_instrument_jobs_are_refused_naming_the_task_and_field(
    settings: Settings, changes: dict[str, Any], field: str, words: str
) -> None:
    async with instrument_app(settings) as (client, _):
        body = {"payload": {"sample": {"name": "S1"}, "method": [COUNT | changes]}}
        response = await client.post(f"{API}/jobs", json=body)
        assert response.status_code == 422, response.text
        text = messages(response)
        assert f"body.payload.{field}" in text and words in text, text
        if "extra" not in changes and "max_duration" not in str(changes.get("max_duration", "")):
            assert "task 0" in text or "payload" in text
        assert (await client.get(f"{API}/jobs")).json()["items"] == []


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({}, "body.spec", "Field required"),
        (
            {"spec": "true", "payload": {"sample": {"name": "S"}, "method": [COUNT]}},
            "body.payload",
            "not both",
        ),
        (
            {"backend": "fake", "payload": {"sample": {"name": "S"}, "method": [COUNT]}},
            "body.backend",
            "'instrument' backend",
        ),
        ({"payload": {"sample": {"name": "S"}, "method": []}}, "body.payload.method", "at least 1"),
        (
            {"payload": {"sample": {}, "method": [COUNT]}},
            "body.payload.sample.name",
            "Field required",
        ),
        (
            {
                "payload": {
                    "sample": {"name": "S"},
                    "method": [COUNT, COUNT | {"component_role": "left"}],
                }
            },
            "body.payload.method",
            "no pipeline has all the roles counter, left",
        ),
        (
            {
                "payload": {
                    "sample": {"name": "S"},
                    "method": [COUNT | {"task_name": "a"}, COUNT | {"task_name": "a"}],
                }
            },
            "body.payload.method.1.task_name",
            "give each task its own name",
        ),
        (
            {
                "payload": {
                    "sample": {"name": "S"},
                    "method": [
                        task("left", task_name="a", start_with_task_name="b"),
                        task("right", task_name="c"),
                        task("right", task_name="b", start_with_task_name="a"),
                    ],
                }
            },
            "body.payload.method.0.start_with_task_name",
            "wait for itself",
        ),
    ],
)
async def test_bad_job_shapes_are_refused(
    settings: Settings, body: dict[str, Any], field: str, words: str
) -> None:
    async with instrument_app(settings) as (client, _):
        response = await client.post(f"{API}/jobs", json=body)
        assert response.status_code == 422, response.text
        text = messages(response)
        assert field in text and words in text, text


async def test_a_batch_may_mix_command_and_instrument_jobs(settings: Settings) -> None:
    async with instrument_app(settings) as (client, _):
        batch = {
            "jobs": [
                job_body(task(max_duration=0.2), name="measure"),
                {"name": "analyse", "spec": "true", "depends_on": ["measure"]},
            ]
        }
        response = await client.post(f"{API}/jobs/batch", json=batch)
        assert response.status_code == 201, response.text
        jobs = response.json()["jobs"]
        assert [(j["kind"], j["backend"]) for j in jobs] == [
            ("instrument", "instrument"),
            ("command", "fake"),
        ]
        await ready(client, "pip-1")
        assert (await wait_job(client, jobs[1]["id"]))["state"] == "completed"
        assert (await wait_job(client, jobs[0]["id"]))["state"] == "completed"
