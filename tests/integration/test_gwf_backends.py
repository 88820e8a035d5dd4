"""gwf's own backends, unmodified, through the gwf-<name> adapter; and uploaded workflows.

gwf's ``local`` backend runs with real ``gwf workers``; its ``slurm`` backend
runs on the real test cluster (marker ``slurm``). A gwf backend that raises in
``submit`` fails the job with a message naming it and the fix, and the server
keeps serving.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import anyio
import pytest
from gwf.backends import Backend as GwfBackend
from gwf.backends.local import LocalBackend as GwfLocal
from gwf.backends.slurm import SlurmBackend as GwfSlurm

from gantry.backends.gwf_host import hosted
from gantry.backends.registry import discover, gwf_backend_names
from tests.acceptance.server import free_port
from tests.fakes import FakeBackend
from tests.integration.test_api_jobs import API, submit, wait_state
from tests.integration.test_slurm_backend import _require_slurm

GWF = Path(sys.executable).with_name("gwf")
WORKFLOW = """
from gwf import Workflow
gwf = Workflow()
gwf.target("make", inputs=[], outputs=["made.txt"]) << "echo made > made.txt"
gwf.target("use", inputs=["made.txt"], outputs=["used.txt"], cores=3) << "cat made.txt > used.txt"
"""


class RefusingGwfBackend(GwfBackend):
    option_defaults: ClassVar[dict[str, Any]] = {"cores": 1}

    def submit(self, target: Any, dependencies: Any) -> None:
        raise RuntimeError("the cluster said no")


def test_gwf_backends_are_listed_only_when_enabled() -> None:
    assert {"gwf-local", "gwf-slurm"} <= set(gwf_backend_names())
    assert not any(name.startswith("gwf-") for name in discover())
    found = discover(enabled=["gwf-slurm"])
    assert found["gwf-slurm"].cls is not None and "gwf-local" not in found
    assert found["gwf-slurm"].cls.option_defaults == GwfSlurm.option_defaults


async def test_a_gwf_backend_raising_in_submit_fails_the_job_and_the_server_serves(
    make_client: Callable[..., Any],
) -> None:
    backends = {"fake": FakeBackend, "gwf-refusing": hosted("refusing", RefusingGwfBackend)}
    async with make_client(backends) as (client, _):
        job = await submit(client, backend="gwf-refusing", options={"cores": 2, "gpus": 1})
        assert any("'gpus' is not supported" in w for w in job["warnings"])
        failed = await wait_state(client, job["id"], "failed")
        assert "gwf backend 'refusing'" in failed["reason"]
        assert "the cluster said no" in failed["reason"]
        assert "disable gwf-refusing" in failed["reason"]
        ok = await submit(client, backend="fake")
        await wait_state(client, ok["id"], "completed")


@pytest.fixture
def gwf_workers(tmp_path: Path) -> Iterator[int]:
    """Real ``gwf workers`` (gwf's local backend's server) on a free port."""
    port = free_port()
    home = tmp_path / "workers"
    home.mkdir()
    proc = subprocess.Popen(
        [str(GWF), "-b", "local", "workers", "-n", "2", "-p", str(port)],
        cwd=home,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert time.monotonic() < deadline, "gwf workers did not start listening"
            time.sleep(0.1)
    yield port
    os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


async def test_gwf_local_backend_with_real_workers_runs_an_uploaded_workflow(
    make_client: Callable[..., Any], settings: Any, tmp_path: Path, gwf_workers: int
) -> None:
    data_dir = settings.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "config.json").write_text(
        json.dumps(
            {"backend.gwf-local.port": str(gwf_workers), "backend.gwf-local.poll_interval": "0.2"}
        )
    )
    project = tmp_path / "project"
    project.mkdir()
    backends = {"fake": FakeBackend, "gwf-local": hosted("local", GwfLocal)}
    async with make_client(backends) as (client, _):
        body = {"source": WORKFLOW, "working_dir": str(project), "backend": "gwf-local"}
        answer = await client.post(f"{API}/workflows", json=body)
        assert answer.status_code == 201, answer.text
        jobs = {job["name"]: job for job in answer.json()["jobs"]}
        assert list(jobs) == ["make", "use"]
        assert any("'cores' is not supported" in w for w in answer.json()["warnings"])
        for job in jobs.values():
            assert (await wait_state(client, job["id"], "completed", timeout=30))["exit_code"] == 0
        assert (project / "used.txt").read_text() == "made\n"
        log = (await client.get(f"{API}/jobs/{jobs['make']['id']}/logs")).json()
        assert log["text"] == ""
        failing = await submit(client, backend="gwf-local", spec="echo out; exit 3")
        ended = await wait_state(client, failing["id"], "failed", timeout=30)
        assert ended["exit_code"] == 3
        log = (await client.get(f"{API}/jobs/{failing['id']}/logs")).json()
        assert log["text"] == "out\n"
        again = await client.post(f"{API}/workflows", json=body)  # everything up to date
        assert again.status_code == 200 and again.json()["up_to_date"] == ["make", "use"]


async def test_uploaded_workflow_with_a_syntax_error_is_a_422_naming_file_and_line(
    make_client: Callable[..., Any], tmp_path: Path
) -> None:
    async with make_client() as (client, _):
        bad = {
            "source": "from gwf import Workflow\ngwf = Workflow(\n",
            "working_dir": str(tmp_path),
        }
        answer = await client.post(f"{API}/workflows", json=bad)
        assert answer.status_code == 422
        assert f"{tmp_path}/workflow.py:2: syntax error" in answer.text
        cycle = (
            "from gwf import Workflow\ngwf = Workflow()\n"
            "gwf.target('a', inputs=['b'], outputs=['a']) << 'true'\n"
            "gwf.target('b', inputs=['a'], outputs=['b']) << 'true'\n"
        )
        answer = await client.post(
            f"{API}/workflows", json={"source": cycle, "working_dir": str(tmp_path)}
        )
        assert answer.status_code == 422 and "depends on itself" in answer.text
        answer = await client.post(
            f"{API}/workflows",
            json={"source": WORKFLOW, "working_dir": str(tmp_path), "targets": ["x*"]},
        )
        assert answer.status_code == 422 and "no target matches 'x*'" in answer.text
        assert [p async for p in anyio.Path(tmp_path).glob(".gantry-upload-*")] == []
        page = (await client.get(f"{API}/jobs")).json()
        assert page["items"] == []  # nothing half-submitted


@pytest.mark.slurm
async def test_gwf_slurm_backend_on_the_real_cluster(
    make_client: Callable[..., Any], tmp_path: Path
) -> None:
    _require_slurm()
    backends = {"fake": FakeBackend, "gwf-slurm": hosted("slurm", GwfSlurm)}
    async with make_client(backends) as (client, _):
        ok = await submit(
            client,
            backend="gwf-slurm",
            spec="echo on $SLURM_JOB_ID",
            options={"walltime": "00:02:00"},
        )
        bad = await submit(client, backend="gwf-slurm", spec="false; echo never")
        done = await wait_state(client, ok["id"], "completed", timeout=90)
        assert done["exit_code"] == 0
        failed = await wait_state(client, bad["id"], "failed", timeout=90)
        assert failed["exit_code"] == 1  # gwf's script runs under set -e
        log = (await client.get(f"{API}/jobs/{ok['id']}/logs")).json()
        assert log["text"].startswith("on ")
        victim = await submit(client, backend="gwf-slurm", spec="sleep 60")
        await wait_state(client, victim["id"], "running", "submitted", timeout=60)
        await client.post(f"{API}/jobs/{victim['id']}/cancel")
        await wait_state(client, victim["id"], "cancelled", timeout=90)
