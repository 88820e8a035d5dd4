"""tomato driver packages from PyPI, unmodified, through the real app.

``tomato-example-counter``, ``tomato-example-trig`` and ``tomato-bronkhorst``
are installed from the registry (the ``test`` extra, with ``tomato==2.2``)
and named in the devices file by each of the spellings gantry accepts.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from gantry.settings import Settings
from tests.integration.instruments import (
    API,
    instrument_app,
    job_body,
    messages,
    ready,
    samples,
    submit,
    wait_job,
)

DEVICES = """\
[[devices]]
name = "counter"
driver = "tomato:example_counter"
address = "lab"
channels = ["1", "2"]

[[devices]]
name = "trig"
driver = "tomato-example-trig"
address = "lab"
channels = ["1"]

[[devices]]
name = "mfc"
driver = "tomato_bronkhorst"
address = "/dev/gantry-no-such-port"
channels = ["1"]

[[devices]]
name = "ghost"
driver = "tomato:not_a_real_driver"
address = "lab"
channels = ["1"]

[[devices]]
name = "native"
driver = "example_counter"
address = "lab"
channels = ["1"]

[[pipelines]]
name = "pip-counter"
components = [{ role = "counter", device = "counter", channel = "1" }]

[[pipelines]]
name = "pip-duo"
components = [
    { role = "counter", device = "counter", channel = "2" },
    { role = "trig", device = "trig", channel = "1" },
]

[[pipelines]]
name = "pip-native"
components = [{ role = "counter", device = "native", channel = "1" }]
"""


def tomato_app(settings: Settings) -> Any:
    path = settings.data_dir.parent / "devices.toml"
    path.write_text(DEVICES)
    return instrument_app(settings, devices_file=path)


def counter_task(technique: str, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "component_role": "counter",
        "technique_name": technique,
        "max_duration": 1.0,
        "sampling_interval": 0.1,
    }
    return body | fields


def assert_no_gap(stamps: list[float], interval: float) -> None:
    """tomato samples once per interval: consecutive points, none skipped."""
    assert stamps == sorted(stamps)
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert all(g < 1.9 * interval for g in gaps), gaps


async def test_counter_runs_every_technique_and_task_param_and_stores_every_point(
    settings: Settings,
) -> None:
    params = {"max": 7.5, "min": 2.5, "param": "0.5 s", "choice": "blue"}
    async with tomato_app(settings) as (client, _):
        await ready(client, "pip-counter")
        body = job_body(
            counter_task("count", task_params=params, task_name="c"),
            counter_task("random", task_params=params | {"choice": "red", "param": 2}),
        )
        job = await submit(client, body)
        done = await wait_job(client, job["id"])
        assert done["state"] == "completed", done
        kept = (await samples(client, job["id"]))["roles"][0]["samples"]
        count = [s for s in kept if s["task"] == 0]
        rand = [s for s in kept if s["task"] == 1]
        # tomato's loop ticks after each full interval until max_duration is over
        assert 8 <= len(count) <= 11 and 8 <= len(rand) <= 11
        assert done["reason"] == f"2 tasks completed, {len(kept)} samples"
        assert_no_gap([s["uts"] for s in count], 0.1)
        assert {s["values"]["val"] for s in count} <= {0, 1}
        first = count[0]["values"]
        assert first | {"val": 0} == {
            "val": 0,
            "max": 7.5,
            "min": 2.5,
            "param": 0.5,
            "choice": "blue",
        }
        assert count[0]["units"] == {"param": "second"}
        assert all(2.5 <= s["values"]["val"] <= 7.5 for s in rand)
        assert {(s["values"]["choice"], s["values"]["param"]) for s in rand} == {("red", 2)}


async def test_trig_data_is_readable_live_and_as_csv_json_and_netcdf_with_units(
    settings: Settings, tmp_path: Path
) -> None:
    import xarray as xr

    async with tomato_app(settings) as (client, _):
        await ready(client, "pip-duo")
        trig = {
            "component_role": "trig",
            "technique_name": "trig_function",
            "max_duration": 1.5,
            "sampling_interval": 0.1,
            "task_params": {"points": 5, "function": "cos"},
        }
        count = counter_task("count", max_duration=1.5, task_params={"param": "250 ms"})
        job = await submit(client, job_body(trig, count))
        url = f"{API}/jobs/{job['id']}/data"
        await wait_job(client, job["id"], "running")
        await anyio.sleep(0.7)
        live = (await client.get(url, params={"role": "trig"})).json()
        assert live["complete"] is False and live["roles"][0]["next_offset"] >= 3
        done = await wait_job(client, job["id"])
        assert done["state"] == "completed", done
        data = (await client.get(url, params={"role": "trig"})).json()["roles"][0]["samples"]
        assert 12 <= len(data) <= 16
        assert_no_gap([s["uts"] for s in data], 0.1)
        values = data[0]["values"]
        # a 2-d variable: one value per abscissa point, the abscissa with it
        assert sorted(values) == sorted(
            [f"ordinate[{i}]" for i in range(5)]
            + [f"abscissa[{i}]" for i in range(5)]
            + ["points", "function"]
        )
        assert values["abscissa[0]"] == 0.0 and values["points"] == 5
        assert values["function"] == "cos" and -1 <= values["ordinate[2]"] <= 1
        rows = list(csv.reader(io.StringIO((await client.get(url, params={"format": "csv"})).text)))
        header = rows[0]
        assert {"ordinate[4]", "abscissa[4]", "val", "param"} <= set(header)
        counter_rows = [r for r in rows[1:] if r[0] == "counter"]
        both = (await client.get(url)).json()["roles"]
        assert len(rows) - 1 == sum(len(r["samples"]) for r in both)
        # the value as tomato's driver stored it: in the units it was given
        assert {r[header.index("param")] for r in counter_rows} == {"250"}
        as_json = await client.get(url, params={"format": "json"})
        assert as_json.status_code == 200
        assert json.loads(as_json.text)["roles"] == both
        nc = await client.get(url, params={"format": "netcdf"})
        assert nc.status_code == 200, nc.text
    path = tmp_path / "job.nc"
    path.write_bytes(nc.content)
    with xr.open_dataset(path, group="counter") as group:
        assert group["param"].attrs["units"] == "millisecond"
        assert group.sizes["uts"] == len(next(s for s in both if s["role"] == "counter")["samples"])
    with xr.open_dataset(path, group="trig") as group:
        assert group.sizes["uts"] == len(data)
        assert list(group["function"].values) == ["cos"] * len(data)


async def test_cancel_stops_a_tomato_task_promptly_and_keeps_its_points(
    settings: Settings,
) -> None:
    async with tomato_app(settings) as (client, _):
        await ready(client, "pip-counter")
        job = await submit(client, job_body(counter_task("count", max_duration=60)))
        await wait_job(client, job["id"], "running")
        await anyio.sleep(1.0)
        begun = time.time()
        await client.post(f"{API}/jobs/{job['id']}/cancel")
        done = await wait_job(client, job["id"])
        # tomato's own reset at the end of the job joins its thread (up to 1 s)
        assert time.time() - begun < 2.0
        assert done["state"] == "cancelled"
        kept = (await samples(client, job["id"]))["roles"][0]["samples"]
        assert 7 <= len(kept) <= 12
        assert kept[-1]["uts"] < begun + 0.2  # the task itself stopped at once
        assert_no_gap([s["uts"] for s in kept], 0.1)
        status = (await client.get(f"{API}/components/counter/1")).json()["status"]
        assert status["running"] is False and status["queued"] == []
        # the component takes the next job
        await ready(client, "pip-counter")
        again = await submit(client, job_body(counter_task("count", max_duration=0.3)))
        assert (await wait_job(client, again["id"]))["state"] == "completed"


async def test_component_attrs_get_set_capabilities_constants_and_measure(
    settings: Settings,
) -> None:
    async with tomato_app(settings) as (client, _):
        base = f"{API}/components/counter/1"
        info = (await client.get(base)).json()
        assert info["capabilities"] == ["count", "random"]
        assert info["constants"] == {"example_meta": "example string"}
        assert info["status"] == {"running": False, "task": None, "queued": []}
        attrs = (await client.get(f"{base}/attrs")).json()
        assert attrs["param"] == {
            "type": "float",
            "rw": True,
            "status": False,
            "units": "seconds",
            "minimum": 0.1,
            "maximum": None,
            "options": None,
        }
        assert attrs["choice"]["options"] == ["blue", "green", "red"]
        put = await client.put(f"{base}/attrs/param", json={"value": "1.5 min"})
        assert put.status_code == 200, put.text
        assert put.json()["value"] == pytest.approx(90)
        assert (await client.get(f"{base}/attrs/param")).json()["value"] == pytest.approx(90)
        assert (await client.put(f"{base}/attrs/choice", json={"value": "red"})).status_code == 200
        measured = (await client.post(f"{base}/measure")).json()
        # a sample holds what the driver measured, in the units it keeps
        assert measured["values"]["choice"] == "red" and measured["values"]["param"] == 1.5
        assert measured["units"] == {"param": "minute"}
        assert (await client.get(base)).json()["last_data"]["uts"] == measured["uts"]
        trig = (await client.get(f"{API}/components/trig/1")).json()
        assert trig["status"] == {
            "points": 100,
            "function": "sin",
            "running": False,
            "task": None,
            "queued": [],
        }


@pytest.mark.parametrize(
    ("attr", "value", "words"),
    [
        ("param", "0.01 s", "minimum"),
        ("param", "5 kg", "units"),
        ("choice", "pink", "'blue', 'green', 'red'"),
        ("nope", 1, "'nope' is not an attr of component counter/1"),
    ],
)
async def test_bad_attr_writes_to_a_tomato_driver_are_refused(
    settings: Settings, attr: str, value: Any, words: str
) -> None:
    async with tomato_app(settings) as (client, _):
        response = await client.put(
            f"{API}/components/counter/1/attrs/{attr}", json={"value": value}
        )
        assert response.status_code in (404, 422), response.text
        assert words in messages(response)


async def test_bad_task_params_are_refused_at_submit_with_tomatos_reason(
    settings: Settings,
) -> None:
    async with tomato_app(settings) as (client, _):
        body = job_body(counter_task("count", task_params={"param": "0.01 s"}))
        response = await client.post(f"{API}/jobs", json=body)
        assert response.status_code == 422, response.text
        assert "is smaller than 0.1 second" in messages(response)
        body = job_body(counter_task("count", task_params={"nope": 1}))
        response = await client.post(f"{API}/jobs", json=body)
        assert response.status_code == 422 and "unknown attr: 'nope'" in messages(response)


async def test_hardware_and_missing_drivers_fail_their_components_and_the_rest_serves(
    settings: Settings,
) -> None:
    async with tomato_app(settings) as (client, _):
        comps = {
            f"{c['device']}/{c['channel']}": c
            for c in (await client.get(f"{API}/components")).json()
        }
        mfc = comps["mfc/1"]
        assert mfc["available"] is False
        # the driver's own message (pyserial could not open the port)
        assert "registration failed" in mfc["error"]
        assert "/dev/gantry-no-such-port" in mfc["error"]
        ghost = comps["ghost/1"]["error"]
        assert "tomato:not_a_real_driver" in ghost
        assert "pip install tomato-not-a-real-driver" in ghost
        assert comps["counter/1"]["available"] and comps["native/1"]["available"]
        await ready(client, "pip-native")
        job = await submit(client, job_body(counter_task("count", max_duration=0.3)))
        assert (await wait_job(client, job["id"]))["state"] == "completed"
        drivers = {d["name"]: d for d in (await client.get(f"{API}/drivers")).json()}
        assert drivers["tomato:example_counter"]["running"] is True
