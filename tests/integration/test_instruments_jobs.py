"""Instrument jobs through the real engine and real drivers: queueing on pipelines,
ordering, cancel, data while running and after, dependencies both ways, restarts."""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path

import anyio
import pytest

from gantry.settings import Settings
from tests.integration.instruments import (
    API,
    instrument_app,
    job_body,
    ready,
    samples,
    submit,
    task,
    wait_job,
)


async def test_a_job_waits_for_a_ready_pipeline_with_its_sample_then_runs(
    settings: Settings,
) -> None:
    async with instrument_app(settings) as (client, _):
        job = await submit(client, job_body(task(max_duration=0.5, sampling_interval=0.05)))
        assert job["kind"] == "instrument" and job["backend"] == "instrument"
        queued = await wait_job(client, job["id"], "queued", check=lambda j: bool(j["reason"]))
        assert (
            "waiting for a ready pipeline with roles counter holding sample S1"
            in (queued["reason"])
        )
        assert "pip-1: holds no sample" in queued["reason"]
        await client.post(f"{API}/pipelines/pip-2/load", json={"sample": "S1"})
        await wait_job(client, job["id"], "queued", check=lambda j: "not ready" in j["reason"])
        await client.post(f"{API}/pipelines/pip-2/ready")
        done = await wait_job(client, job["id"])
        assert done["state"] == "completed", done
        assert done["reason"] == "1 task completed, 10 samples"
        # The job's accounting: the samples taken and the driver's time on the task.
        cost = done["accounting"]
        assert cost["samples"] == 10
        assert 0.4 <= cost["driver_seconds"] <= 5.0
        events = (await client.get(f"{API}/jobs/{job['id']}/events")).json()["items"]
        assert [e["to_state"] for e in events] == ["queued", "submitted", "running", "completed"]
        data = await samples(client, job["id"])
        assert data["complete"] is True
        [page] = data["roles"]
        assert page["role"] == "counter" and page["next_offset"] == 10
        assert [s["values"]["val"] for s in page["samples"]] == [float(i) for i in range(1, 11)]
        first = page["samples"][0]
        assert first["task"] == 0 and first["technique"] == "count"
        assert first["units"] == {"delay": "s"}
        times = [s["uts"] for s in page["samples"]]
        assert times == sorted(times) and times[-1] - times[0] == pytest.approx(0.45, abs=0.05)
        # like tomato: the pipeline keeps its sample but must be made ready again
        pipe = (await client.get(f"{API}/pipelines/pip-2")).json()
        assert (pipe["sample"], pipe["ready"], pipe["job_id"]) == ("S1", False, None)
        # the component was reset after the job
        status = (await client.get(f"{API}/components/counter/2")).json()["status"]
        assert status["running"] is False and status["val"] == 0.0


async def test_tasks_of_a_role_run_in_order_and_roles_in_parallel(settings: Settings) -> None:
    async with instrument_app(settings) as (client, _):
        await ready(client, "pip-duo")
        body = job_body(
            task("left", max_duration=0.3, sampling_interval=0.1, task_name="l1"),
            task(
                "left",
                technique_name="random",
                max_duration=0.3,
                sampling_interval=0.1,
                task_params={"min": 5, "max": 6},
                task_name="l2",
            ),
            task(
                "right",
                max_duration=10,
                sampling_interval=0.1,
                task_name="r1",
                start_with_task_name="l2",
                stop_with_task_name="l2",
            ),
        )
        job = await submit(client, body)
        done = await wait_job(client, job["id"])
        assert done["state"] == "completed", done
        left = (await samples(client, job["id"], "left"))["roles"][0]["samples"]
        right = (await samples(client, job["id"], "right"))["roles"][0]["samples"]
        assert [s["task"] for s in left] == [0, 0, 0, 1, 1, 1]
        assert [s["task_name"] for s in left][::3] == ["l1", "l2"]
        assert all(5 <= s["values"]["val"] <= 6 for s in left[3:])
        # r1 started with l2 and was stopped when l2 ended, long before its 10 s
        assert {s["task"] for s in right} == {2}
        assert right[0]["uts"] >= left[3]["uts"] - 0.05
        assert right[-1]["uts"] <= left[-1]["uts"] + 0.2
        assert 2 <= len(right) <= 5


async def test_cancel_stops_within_a_sampling_interval_and_keeps_the_data(
    settings: Settings,
) -> None:
    async with instrument_app(settings) as (client, _):
        await ready(client, "pip-1")
        job = await submit(client, job_body(task(max_duration=60, sampling_interval=0.5)))
        await wait_job(client, job["id"], "running")
        await anyio.sleep(1.2)
        begun = time.monotonic()
        await client.post(f"{API}/jobs/{job['id']}/cancel")
        done = await wait_job(client, job["id"])
        assert time.monotonic() - begun < 0.5 + 0.3
        assert done["state"] == "cancelled" and done["reason"] == "cancelled by request"
        kept = (await samples(client, job["id"]))["roles"][0]["samples"]
        assert [s["values"]["val"] for s in kept] == [1.0, 2.0, 3.0]
        assert (await client.get(f"{API}/pipelines/pip-1")).json()["job_id"] is None


async def test_data_is_readable_while_running_as_json_csv_and_sse(settings: Settings) -> None:
    async with instrument_app(settings) as (client, _):
        await ready(client, "pip-1")
        job = await submit(client, job_body(task(max_duration=1.5, sampling_interval=0.05)))
        url = f"{API}/jobs/{job['id']}/data"
        await wait_job(client, job["id"], "running")
        await anyio.sleep(0.5)
        early = (await client.get(url)).json()
        assert early["complete"] is False and early["state"] == "running"
        assert 5 <= early["roles"][0]["next_offset"] <= 15
        nc = await client.get(url, params={"format": "netcdf"})
        assert nc.status_code == 409 and "has not ended" in nc.json()["detail"]
        part = (await client.get(url, params={"offset": 2, "limit": 3})).json()["roles"][0]
        assert (part["offset"], part["next_offset"]) == (2, 5)
        assert [s["values"]["val"] for s in part["samples"]] == [3.0, 4.0, 5.0]
        streamed: list[float] = []
        async with client.stream("GET", url, params={"follow": True}) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            event = ""
            async for line in response.aiter_lines():
                if line.startswith("event:"):
                    event = line.split(":", 1)[1].strip()
                elif line.startswith("data:") and event == "data":
                    batch = json.loads(line.split(":", 1)[1])
                    streamed += [s["values"]["val"] for s in batch["samples"]]
                elif line.startswith("data:") and event == "end":
                    break
        assert streamed == [float(i) for i in range(1, 31)]
        text = (await client.get(url, params={"format": "csv"})).text
        rows = list(csv.reader(io.StringIO(text)))
        assert rows[0] == [
            "role",
            "uts",
            "task",
            "task_name",
            "technique",
            "val",
            "delay",
            "min",
            "max",
            "mode",
        ]
        assert len(rows) == 31 and rows[1][:3] == ["counter", rows[1][1], "0"]
        nc = await client.get(url, params={"format": "netcdf"})
        assert nc.status_code == 200 and nc.content[:3] == b"\x89HD"


async def test_netcdf_export_has_a_group_per_role_and_metadata(
    settings: Settings, tmp_path: Path
) -> None:
    import xarray as xr

    async with instrument_app(settings) as (client, _):
        await ready(client, "pip-duo", "S7")
        body = job_body(
            task("left", max_duration=0.3, sampling_interval=0.1),
            task("right", technique_name="random", max_duration=0.2, sampling_interval=0.1),
            sample="S7",
        )
        body["payload"]["sample"]["operator"] = "ada"
        job = await submit(client, body)
        await wait_job(client, job["id"], "completed")
        nc = await client.get(f"{API}/jobs/{job['id']}/data", params={"format": "netcdf"})
        assert nc.status_code == 200
    path = tmp_path / "job.nc"
    path.write_bytes(nc.content)
    root = xr.open_dataset(path)
    assert root.attrs["job_id"] == job["id"] and root.attrs["pipeline"] == "pip-duo"
    assert json.loads(root.attrs["sample"]) == {"name": "S7", "operator": "ada"}
    assert json.loads(root.attrs["roles"]) == ["left", "right"]
    root.close()
    with xr.open_dataset(path, group="left") as left:
        assert left.sizes["uts"] == 3 and list(left["val"].values) == [1.0, 2.0, 3.0]
        assert left.attrs["device"] == "counter" and left.attrs["channel"] == "3"
        assert json.loads(left.attrs["constants"])["serial"] == "lab/3"
        assert left["delay"].attrs["units"] == "s" and left["uts"].attrs["units"] == "s"
    with xr.open_dataset(path, group="right") as right:
        assert right.sizes["uts"] == 2 and str(right["technique"].values[0]) == "random"


async def test_command_and_instrument_jobs_depend_on_each_other(settings: Settings) -> None:
    async with instrument_app(settings) as (client, app):
        await ready(client, "pip-1")
        first = await submit(client, {"name": "prepare", "spec": "hang"})
        measure = await submit(client, job_body(task(max_duration=0.2), depends_on=[first["id"]]))
        after = await submit(
            client, {"name": "analyse", "spec": "true", "depends_on": [measure["id"]]}
        )
        await wait_job(client, first["id"], "running")
        await anyio.sleep(0.3)
        assert (await client.get(f"{API}/jobs/{measure['id']}")).json()["state"] == "queued"
        from gantry.backends.base import BackendStatus, StatusReport

        fake = app.state.catalog.running["fake"]
        fake._set(f"fake-{first['id']}.1", StatusReport(BackendStatus.COMPLETED, exit_code=0))
        assert (await wait_job(client, measure["id"]))["state"] == "completed"
        assert (await wait_job(client, after["id"]))["state"] == "completed"
        # a failed instrument job cancels its dependents (afterok)
        await ready(client, "pip-faulty")
        broken = await submit(
            client, job_body(task("flaky", task_params={"fault": "raise"}), name="broken")
        )
        dependent = await submit(client, {"spec": "true", "depends_on": [broken["id"]]})
        assert (await wait_job(client, broken["id"]))["state"] == "failed"
        cancelled = await wait_job(client, dependent["id"])
        assert cancelled["state"] == "cancelled"
        assert cancelled["reason"] == f"dependency {broken['id']} (broken) failed"


async def test_jobs_share_pipelines_one_at_a_time(settings: Settings) -> None:
    async with instrument_app(settings) as (client, _):
        jobs = [await submit(client, job_body(task(max_duration=0.2))) for _ in range(3)]
        await ready(client, "pip-1")
        await ready(client, "pip-2")
        first_two = [await wait_job(client, j["id"], "completed") for j in jobs[:2]]
        assert (await client.get(f"{API}/jobs/{jobs[2]['id']}")).json()["state"] == "queued"
        pipes = {p["name"]: p for p in (await client.get(f"{API}/pipelines")).json()}
        assert not pipes["pip-1"]["ready"] and not pipes["pip-2"]["ready"]
        await ready(client, "pip-1")
        assert (await wait_job(client, jobs[2]["id"]))["state"] == "completed"
        assert all(j["state"] == "completed" for j in first_two)


async def test_a_restart_fails_the_running_job_keeps_its_data_and_frees_the_pipeline(
    settings: Settings,
) -> None:
    async with instrument_app(settings) as (client, _):
        await ready(client, "pip-1")
        job = await submit(client, job_body(task(max_duration=60, sampling_interval=0.05)))
        await wait_job(client, job["id"], "running")
        await anyio.sleep(0.5)
    async with instrument_app(settings) as (client, _):
        done = await wait_job(client, job["id"])
        assert done["state"] == "failed"
        assert done["reason"].startswith("the server stopped while the job ran; data up to 20")
        kept = (await samples(client, job["id"]))["roles"][0]
        assert kept["next_offset"] >= 8
        vals = [s["values"]["val"] for s in kept["samples"]]
        assert vals == [float(i) for i in range(1, len(vals) + 1)]  # nothing lost or doubled
        pipe = (await client.get(f"{API}/pipelines/pip-1")).json()
        assert (pipe["job_id"], pipe["ready"], pipe["sample"]) == (None, False, "S1")


async def test_first_sample_is_stored_quickly_on_a_ready_pipeline(settings: Settings) -> None:
    async with instrument_app(settings) as (client, _):
        await ready(client, "pip-1")
        begun = time.monotonic()
        job = await submit(client, job_body(task(max_duration=2, sampling_interval=0.01)))
        url = f"{API}/jobs/{job['id']}/data"
        with anyio.fail_after(5):
            while not (await client.get(url, params={"limit": 1})).json()["roles"][0]["samples"]:
                await anyio.sleep(0.002)
        assert time.monotonic() - begun < 0.5
        await client.post(f"{API}/jobs/{job['id']}/cancel")


async def test_data_of_a_command_job_or_unknown_role_is_refused(settings: Settings) -> None:
    async with instrument_app(settings) as (client, _):
        command = await submit(client, {"spec": "true"})
        response = await client.get(f"{API}/jobs/{command['id']}/data")
        assert response.status_code == 404 and "command job" in response.json()["detail"]
        job = await submit(client, job_body())
        response = await client.get(f"{API}/jobs/{job['id']}/data", params={"role": "oven"})
        assert response.status_code == 422 and "its roles: counter" in response.text
        assert (await client.get(f"{API}/jobs/999/data")).status_code == 404
        queued = (await client.get(f"{API}/jobs/{job['id']}/data")).json()
        assert queued["roles"] == [
            {"role": "counter", "offset": 0, "next_offset": 0, "samples": []}
        ]


async def test_the_psutil_driver_runs_inside_the_server(settings: Settings) -> None:
    async with instrument_app(settings) as (client, _):
        await ready(client, "pip-machine")
        body = job_body(
            task("cpu", technique_name="monitor", max_duration=0.6, sampling_interval=0.2)
        )
        job = await submit(client, body)
        assert (await wait_job(client, job["id"]))["state"] == "completed"
        page = (await samples(client, job["id"]))["roles"][0]
        assert len(page["samples"]) == 3
        assert page["samples"][0]["units"]["percent"] == "percent"
        assert 0 <= page["samples"][-1]["values"]["percent"] <= 100
