"""One behavioural suite, run against every real backend (local processes and a
real Slurm cluster) through the real server: what a user sees must not depend
on where the job ran."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import need
from tests.integration.test_api_jobs import API, submit, wait_state

SLURM_HOW = "Slurm is not running: start a single-node cluster with `scripts/slurm/start.sh`"


def slurm_running() -> bool:
    if not shutil.which("sinfo"):
        return False
    try:
        result = subprocess.run(
            ["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0 and any(
        s.strip("*~#") in ("idle", "mixed", "allocated") for s in result.stdout.split()
    )


SGE_HOW = (
    "Grid Engine is not running: start a single-node cell with `bash scripts/sge/start.sh` as root"
)


def sge_running() -> bool:
    if not shutil.which("qhost"):
        return False
    try:
        result = subprocess.run(["qhost"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    # A line per execution host; one that reports a load is up ("-" when down).
    return result.returncode == 0 and any(
        len(f) > 3 and f[0] != "global" and f[3] != "-"
        for f in (line.split() for line in result.stdout.splitlines()[3:])
    )


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """The backends are what varies here; the databases have their own suites."""
    return f"sqlite:///{tmp_path / 'var' / 'gantry.db'}"


@pytest.fixture(
    params=[
        "local",
        pytest.param("slurm", marks=pytest.mark.slurm),
        pytest.param("sge", marks=pytest.mark.sge),
    ]
)
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "slurm":
        need(slurm_running(), SLURM_HOW)
    if request.param == "sge":
        need(sge_running(), SGE_HOW)
    return str(request.param)


@pytest.fixture
def backend_classes() -> dict[str, Any]:
    from gantry.backends.local import LocalBackend
    from gantry.backends.sge import SgeBackend
    from gantry.backends.slurm import SlurmBackend

    return {"local": LocalBackend, "slurm": SlurmBackend, "sge": SgeBackend}


@pytest.fixture
def serve(
    make_client: Callable[..., Any], backend: str, backend_classes: dict[str, Any], tmp_path: Path
) -> Callable[[], Any]:
    """``async with serve() as client``: a server whose default backend is ``backend``."""
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)

    @asynccontextmanager
    async def start() -> AsyncIterator[tuple[httpx.AsyncClient, FastAPI]]:
        async with make_client(backend_classes, default_backend=backend) as pair:
            yield pair

    return start


async def run(client: httpx.AsyncClient, work: Path, **body: Any) -> dict[str, Any]:
    body.setdefault("working_dir", str(work))
    return await submit(client, **body)


async def wait(
    client: httpx.AsyncClient, job: dict[str, Any], *states: str, timeout: float = 60
) -> dict[str, Any]:
    return await wait_state(client, job["id"], *states, timeout=timeout)


async def test_a_job_runs_in_its_directory_with_its_environment_and_logs(
    serve: Callable[[], Any], tmp_path: Path
) -> None:
    work = tmp_path / "work"
    async with serve() as (client, _):
        job = await run(
            client,
            work,
            name="hello",
            env={"GREETING": "hi"},
            spec='echo "$GREETING from $(pwd)"; echo oops >&2',
        )
        done = await wait(client, job, "completed", "failed")
        assert done["state"] == "completed" and done["exit_code"] == 0
        out = (await client.get(f"{API}/jobs/{job['id']}/logs")).json()
        err = await client.get(f"{API}/jobs/{job['id']}/logs", params={"stream": "stderr"})
        assert out["text"] == f"hi from {work}\n" and out["complete"] is True
        assert err.json()["text"] == "oops\n"


async def test_a_non_zero_exit_fails_the_job_with_its_code(
    serve: Callable[[], Any], tmp_path: Path
) -> None:
    async with serve() as (client, _):
        job = await run(client, tmp_path / "work", spec="exit 3")
        done = await wait(client, job, "failed", "completed")
        assert done["state"] == "failed" and done["exit_code"] == 3


async def test_a_dependency_chain_runs_in_order_and_a_failure_cancels_the_rest(
    serve: Callable[[], Any], tmp_path: Path
) -> None:
    work = tmp_path / "work"
    order = work / "order"
    async with serve() as (client, _):
        first = await run(client, work, name="first", spec=f"sleep 1; echo first >> {order}")
        second = await run(
            client, work, name="second", spec=f"echo second >> {order}", depends_on=[first["id"]]
        )
        broken = await run(client, work, name="broken", spec="exit 1", depends_on=[second["id"]])
        after = await run(client, work, name="after", spec="true", depends_on=[broken["id"]])
        await wait(client, second, "completed")
        assert order.read_text() == "first\nsecond\n"
        assert (await wait(client, broken, "failed"))["exit_code"] == 1
        cancelled = await wait(client, after, "cancelled")
        assert cancelled["reason"] == f"dependency {broken['id']} (broken) failed"


async def test_cancel_a_queued_and_a_running_job(serve: Callable[[], Any], tmp_path: Path) -> None:
    work = tmp_path / "work"
    async with serve() as (client, _):
        running = await run(client, work, spec="sleep 60")
        queued = await run(client, work, spec="true", depends_on=[running["id"]])
        await wait(client, running, "running")
        assert (await client.post(f"{API}/jobs/{queued['id']}/cancel")).status_code == 202
        assert (await client.post(f"{API}/jobs/{running['id']}/cancel")).status_code == 202
        await wait(client, queued, "cancelled")
        done = await wait(client, running, "cancelled", timeout=30)
        assert done["reason"] == "cancelled by request"
        again = await client.post(f"{API}/jobs/{running['id']}/cancel")
        assert again.status_code == 409 and again.json()["state"] == "cancelled"


async def test_walltime_is_enforced(serve: Callable[[], Any], backend: str, tmp_path: Path) -> None:
    # Slurm counts walltime in minutes; the local backend and SGE (h_rt) in seconds.
    walltime, limit = ("1", 150) if backend == "slurm" else ("0:0:1", 30)
    async with serve() as (client, _):
        job = await run(client, tmp_path / "work", spec="sleep 600", options={"walltime": walltime})
        done = await wait(client, job, "failed", "completed", timeout=limit)
        assert done["state"] == "failed" and "walltime" in (done["reason"] or "")


async def test_a_restarted_server_adopts_running_jobs(
    serve: Callable[[], Any], tmp_path: Path
) -> None:
    work = tmp_path / "work"
    async with serve() as (client, _):
        job = await run(client, work, spec="sleep 3; echo survived")
        await wait(client, job, "running")
    async with serve() as (client, _):
        done = await wait(client, job, "completed", "failed")
        assert done["state"] == "completed" and done["attempt"] == 1
        log = (await client.get(f"{API}/jobs/{job['id']}/logs")).json()
        assert log["text"] == "survived\n"


async def test_unsupported_options_warn_and_the_job_still_runs(
    serve: Callable[[], Any], tmp_path: Path
) -> None:
    async with serve() as (client, _):
        job = await run(client, tmp_path / "work", spec="true", options={"colour": "blue"})
        assert any("'colour'" in w for w in job["warnings"])
        await wait(client, job, "completed")


# A job that holds 200 MiB and burns 1 CPU-second, in a grandchild of its
# shell (a subshell's python): the accounting is the whole tree's. It holds
# the memory a while after, so Slurm's 1 s sampling of MaxRSS sees it.
BURN_AND_HOLD = """( python3 -c '
import time
held = bytearray(200 * 1024 * 1024)
for i in range(0, len(held), 4096):
    held[i] = 1
while time.process_time() < 1.0:
    pass
time.sleep(1.5)
' )
"""


async def test_an_ended_job_records_its_cpu_time_and_peak_memory(
    serve: Callable[[], Any], tmp_path: Path
) -> None:
    async with serve() as (client, _):
        job = await run(client, tmp_path / "work", spec=BURN_AND_HOLD, tags=["costly"])
        done = await wait(client, job, "completed", "failed")
        assert done["state"] == "completed", done["reason"]
        cost = done["accounting"]
        cpu = cost["cpu_user_seconds"] + cost["cpu_system_seconds"]
        assert 0.8 <= cpu <= 1.5
        assert cost["max_rss_bytes"] >= 200 * 1024 * 1024
        assert cost["wall_seconds"] >= 2
        other = await run(client, tmp_path / "work", spec="true")
        await wait(client, other, "completed")
        stats = (await client.get(f"{API}/stats", params={"tag": "costly"})).json()
    assert (stats["jobs"], stats["measured"]) == (1, 1)
    assert stats["cpu_hours"] == pytest.approx(cpu / 3600)
    assert stats["peak_memory_bytes"] == cost["max_rss_bytes"]
    assert stats["by_state"]["completed"]["jobs"] == 1
