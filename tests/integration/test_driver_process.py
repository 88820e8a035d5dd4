"""Drivers in processes of their own, through the real app and real processes.

A driver that segfaults, blocks its loop, raises out of its run or leaks
memory fails the task of its component with the reason, naming the driver,
and is restarted: the next task on that component runs, and a job on
another driver running meanwhile never notices. Each driver process logs to
its own file; the channel refuses what is not a JSON message, pickles above all.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import socket
from datetime import UTC, datetime
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import anyio
import httpx
import psutil  # type: ignore[import-untyped]
import pytest

from gantry.drivers.process import ProcessOptions, logging_config
from gantry.drivers.process.child import Child
from gantry.drivers.process.link import Link
from gantry.drivers.process.wire import HEADER, encode
from gantry.settings import Settings
from tests.conftest import need
from tests.integration.instruments import (
    API,
    DRIVERS,
    instrument_app,
    job_body,
    ready,
    samples,
    submit,
    task,
    wait_job,
)
from tests.process_drivers import CrashyDriver

DEVICES = """\
[[devices]]
name = "counter"
driver = "example_counter"
address = "lab"
channels = ["1"]

[[devices]]
name = "crashy"
driver = "crashy"
address = "bench"
channels = ["1"]

[[devices]]
name = "inside"
driver = "psutil"
address = "localhost"
channels = ["cpu"]

[drivers.crashy]
hang_timeout = 1
max_rss_mb = 250

[drivers.psutil]
in_process = true

[[pipelines]]
name = "pip-counter"
components = [{ role = "counter", device = "counter", channel = "1" }]

[[pipelines]]
name = "pip-crashy"
components = [{ role = "crashy", device = "crashy", channel = "1" }]
"""
TOMATO = """\
[[devices]]
name = "counter"
driver = "tomato:example_counter"
address = "lab"
channels = ["1"]

[[pipelines]]
name = "pip-counter"
components = [{ role = "counter", device = "counter", channel = "1" }]
"""


@pytest.fixture(autouse=True)
def _info_logs(caplog: pytest.LogCaptureFixture) -> None:
    # Driver processes log at the server's level: INFO, so their start is in their logs.
    caplog.set_level(logging.INFO, logger="gantry")


def crashy_app(settings: Settings, text: str = DEVICES) -> Any:
    path = settings.data_dir.parent / "devices.toml"
    path.write_text(text)
    return instrument_app(settings, devices_file=path, drivers=DRIVERS | {"crashy": CrashyDriver})


def log_lines(settings: Settings, driver: str) -> list[dict[str, Any]]:
    path = settings.data_dir / "logs" / f"driver-{driver}.log"
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


async def pid_of(client: Any, device: str) -> int:
    status = (await client.get(f"{API}/components/{device}/1/attrs/pid")).json()
    return int(status["value"])


def worker_pids(settings: Settings, driver: str) -> list[int]:
    return [
        int(line["message"].rsplit("pid ", 1)[1].rstrip(")"))
        for line in log_lines(settings, driver)
        if "is serving" in line["message"]
    ]


async def processes(client: httpx.AsyncClient) -> dict[str, Any]:
    """GET /drivers: each driver's process (None: inside the server)."""
    response = await client.get(f"{API}/drivers")
    assert response.status_code == 200, response.text
    return {d["name"]: d["process"] for d in response.json() if d["running"]}


async def test_a_job_runs_in_the_drivers_own_process(settings: Settings) -> None:
    async with crashy_app(settings) as (client, _):
        await ready(client, "pip-counter")
        job = await submit(client, job_body(task(max_duration=0.5, sampling_interval=0.05)))
        done = await wait_job(client, job["id"])
        assert done["state"] == "completed", done["reason"]
        assert len((await samples(client, job["id"]))["roles"][0]["samples"]) == 10
        (pid,) = worker_pids(settings, "example_counter")
        assert pid != os.getpid()
        cmdline = await anyio.Path(f"/proc/{pid}/cmdline").read_bytes()
        assert b"gantry.drivers.process.worker" in cmdline.split(b"\0")
        # local only: the channel is an unnamed socket pair; nothing listens anywhere
        sockets = psutil.Process(pid).net_connections(kind="all")
        assert sockets and all(s.family == socket.AF_UNIX and not s.laddr for s in sockets)
        # a driver that opts out stays in the server, and has no log of its own
        assert not (settings.data_dir / "logs" / "driver-psutil.log").exists()
        shown = await processes(client)
        assert shown["psutil"] is None
        assert shown["example_counter"] == {
            "pid": pid,
            "restarts": 0,
            "last_failure": None,
            "log": str(settings.data_dir / "logs" / "driver-example_counter.log"),
        }
    assert not await anyio.Path(f"/proc/{pid}").exists()  # stopped with the server


async def test_the_tomato_counter_runs_in_its_own_process(settings: Settings) -> None:
    need(find_spec("tomato_example_counter") is not None, "pip install -e '.[test]' (tomato)")
    async with crashy_app(settings, TOMATO) as (client, _):
        await ready(client, "pip-counter")
        body = job_body(
            {
                "component_role": "counter",
                "technique_name": "count",
                "max_duration": 1.0,
                "sampling_interval": 0.1,
            }
        )
        job = await submit(client, body)
        done = await wait_job(client, job["id"])
        assert done["state"] == "completed", done["reason"]
        points = (await samples(client, job["id"]))["roles"][0]["samples"]
        assert len(points) >= 9 and all("val" in p["values"] for p in points)
        (pid,) = worker_pids(settings, "tomato-example_counter")
        assert pid != os.getpid()


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ("segfault", "its process was killed by SIGSEGV"),
        ("block", "did not answer for 1 s (hang_timeout)"),
        ("raise", "stopped with an error: RuntimeError: injected fault: the poll loop"),
        ("leak", "over its limit of 250 MB (max_rss_mb)"),
    ],
)
async def test_a_failing_driver_fails_its_task_is_restarted_and_others_go_on(
    settings: Settings, fault: str, reason: str
) -> None:
    async with crashy_app(settings) as (client, _):
        await ready(client, "pip-counter")
        await ready(client, "pip-crashy")
        before = await pid_of(client, "crashy")
        healthy = await submit(client, job_body(task(max_duration=4, sampling_interval=0.1)))
        body = job_body(
            task("crashy", task_params={"fault": fault}, max_duration=20, sampling_interval=0.1)
        )
        failing = await submit(client, body)
        done = await wait_job(client, failing["id"], limit=30)
        assert done["state"] == "failed"
        assert "driver 'crashy'" in done["reason"] and reason in done["reason"], done["reason"]
        assert "task 0" in done["reason"] and "driver-crashy.log" in done["reason"]
        # restarted, the same component serves the next task
        await ready(client, "pip-crashy")
        again = await submit(client, job_body(task("crashy", max_duration=0.3)))
        assert (await wait_job(client, again["id"]))["state"] == "completed"
        assert len((await samples(client, again["id"]))["roles"][0]["samples"]) == 6
        now = await pid_of(client, "crashy")
        assert now != before
        shown = (await processes(client))["crashy"]
        assert shown["pid"] == now and shown["restarts"] == 1
        assert reason in shown["last_failure"]["reason"], shown
        assert shown["last_failure"]["at"].startswith(str(datetime.now(UTC).year))
        # the other driver's job, running all along, finished untouched
        other = await wait_job(client, healthy["id"])
        assert other["state"] == "completed" and other["reason"].endswith("40 samples")
        assert (await client.get("/healthz")).json()["status"] == "ok"
        logged = log_lines(settings, "crashy")
        assert len(worker_pids(settings, "crashy")) == 2
        assert {line["driver"] for line in logged} == {"crashy"}
        assert all(
            line["driver"] == "example_counter" for line in log_lines(settings, "example_counter")
        )
        if fault in ("segfault", "block"):  # faulthandler wrote the stacks to the same file
            text = (settings.data_dir / "logs" / "driver-crashy.log").read_text()
            assert "most recent call first" in text and "do_task" in text


async def test_the_channel_refuses_anything_but_json_messages(tmp_path: Path) -> None:
    """A pickle (that would create a file if unpickled), garbage, and calls outside the contract."""
    marker = tmp_path / "unpickled"

    class Exploit:
        def __reduce__(self) -> tuple[Any, ...]:
            return (os.system, (f"touch {marker}",))

    log_path = tmp_path / "driver-example_counter.log"
    hello = {
        "driver": "example_counter",
        "spec": {"import": "gantry.drivers.example_counter:DriverInterface"},
        "settings": {},
        "logging": logging_config("example_counter", "INFO", "gantry.logs.JsonFormatter"),
    }
    replies: dict[str, Any] = {}

    async def probe(link: Link) -> None:
        stream = link.channel.stream
        payload = pickle.dumps(Exploit())
        await stream.send(HEADER.pack(len(payload)) + payload)
        await stream.send(HEADER.pack(5) + b"[1,2]")
        await stream.send(encode({"op": "call", "id": "x", "method": "status", "args": []}))
        replies["private"] = await link.call("_device", ["lab", "1"], {})
        replies["run"] = await link.call("run", [], {})
        replies["status"] = await link.call("status", [], {})
        tg.cancel_scope.cancel()

    child = Child("driver 'example_counter'", hello, ProcessOptions(), log_path, lambda _: None)
    async with anyio.create_task_group() as tg:
        tg.start_soon(child.run, probe)
    assert "is not a call of the driver contract" in replies["private"].msg
    assert not replies["run"].success
    assert replies["status"].success and replies["status"].data["components"] == []
    refused = [
        line["message"]
        for line in map(json.loads, log_path.read_text().splitlines())
        if "refused" in line["message"]
    ]
    assert any("is not JSON" in m for m in refused), refused
    assert any("not a JSON object with an 'op'" in m for m in refused), refused
    assert any("integer id" in m for m in refused), refused
    assert not marker.exists()


async def test_drains_made_together_leave_in_one_frame_and_each_gets_its_own_samples(
    tmp_path: Path,
) -> None:
    """Coalesced drains: the first in a window leaves at once, the others after it in one
    frame; every caller gets its own component's samples; a drain whose caller gave up
    before it left is never sent."""
    hello = {
        "driver": "example_counter",
        "spec": {"import": "gantry.drivers.example_counter:DriverInterface"},
        "settings": {},
        "logging": logging_config("example_counter", "INFO", "gantry.logs.JsonFormatter"),
    }
    channels = ["1", "2", "3"]
    frames: list[list[str]] = []
    got: dict[str, list[Any]] = {c: [] for c in channels}
    ids: dict[str, str] = {}

    async def probe(link: Link) -> None:
        send_many = link.channel.send_many

        async def recording(messages: Any) -> None:
            frames.append([m.get("method") or m["op"] for m in messages])
            await send_many(messages)

        link.channel.send_many = recording  # type: ignore[method-assign]
        for c in channels:
            assert (await link.call("cmp_register", ["lab", c], {})).success
            body = task(sampling_interval=0.005, max_duration=0.3)
            reply = await link.call("task_submit", ["lab", c, body], {})
            ids[c] = reply.data.id

        async def drain(c: str) -> None:
            reply = await link.call("task_data", ["lab", c], {})
            got[c].extend(reply.data)

        async with anyio.create_task_group() as first:
            first.start_soon(drain, "2")  # leaves at once and opens a window
            await anyio.lowlevel.checkpoint()
            with anyio.move_on_after(0.001):  # waits in the window, and gives up
                await link.call("task_data", ["lab", "1"], {})
        for _ in range(10):
            async with anyio.create_task_group() as drains:
                for c in channels:
                    drains.start_soon(drain, c)
            await anyio.sleep(0.05)
        await anyio.sleep(0.1)
        for c in channels:
            await drain(c)
        tg.cancel_scope.cancel()

    child = Child("driver 'example_counter'", hello, ProcessOptions(), None, lambda _: None)
    async with anyio.create_task_group() as tg:
        tg.start_soon(child.run, probe)
    assert ["task_data"] * 2 in frames, frames  # made together: one, then two in one frame
    assert sum(f.count("task_data") for f in frames) == 1 + 10 * 3 + 3  # not the abandoned one
    for c in channels:
        assert got[c] and {s.task_id for s in got[c]} == {ids[c]}
        values = [s.values["val"] for s in got[c]]
        assert values == list(range(1, len(values) + 1))  # none lost, none twice
