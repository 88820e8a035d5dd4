"""SgeBackend on a real single-node Grid Engine cell (start it: ``bash scripts/sge/start.sh``
as root). Jobs are few and short: SGE on one node schedules once a second."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

from gantry.backends.base import BackendContext, BackendError, BackendStatus, JobSubmission
from gantry.backends.sge import SgeBackend
from tests.conftest import need
from tests.integration.test_api_jobs import API, submit, wait_state
from tests.integration.test_arrays import most_at_once, tasks_of
from tests.integration.test_backend_suite import SGE_HOW, sge_running
from tests.integration.test_slurm_backend import Cluster, Reports

pytestmark = pytest.mark.sge
S = BackendStatus
SCRIPTS = Path(__file__).resolve().parents[2] / "scripts" / "sge"


class Cell:
    """Makes backends and jobs (the Slurm tests' jobs) in one temporary data dir."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.jobs = Cluster(data_dir)

    def backend(self, reports: Reports | None = None, **config: str) -> SgeBackend:
        config = {"poll_interval": "0.3", **config}
        return SgeBackend(BackendContext("sge", self.data_dir, config, reports or Reports()))

    def job(self, spec: str, **options: Any) -> JobSubmission:
        return self.jobs.job(spec, **options)


@pytest.fixture(scope="module")
def cell(tmp_path_factory: pytest.TempPathFactory) -> Cell:
    need(sge_running(), SGE_HOW)
    return Cell(tmp_path_factory.mktemp("sge-data"))


@asynccontextmanager
async def running(backend: SgeBackend) -> AsyncIterator[SgeBackend]:
    async with anyio.create_task_group() as tg:
        await tg.start(backend.run)
        yield backend
        tg.cancel_scope.cancel()
    await backend.close()


async def test_health_names_the_exec_hosts(cell: Cell) -> None:
    ok, message = await cell.backend().health()
    assert ok and "1 execution host" in message


async def test_options_reach_the_job_as_slots_queue_and_limits(cell: Cell) -> None:
    reports = Reports()
    job = cell.job('echo "$NSLOTS $QUEUE"; ulimit -v', cores=2, queue="gantry.q",
                   memory="1g", walltime="0:5:0")  # fmt: skip
    async with running(cell.backend(reports)) as backend:
        ref = await backend.submit(job, [])
        final = await reports.final(ref)
    assert final.status is S.COMPLETED, final.reason
    assert job.stdout_path.read_text() == f"2 gantry.q\n{1024 * 1024}\n"  # h_vmem in KiB


async def test_refused_options_are_backend_errors(cell: Cell) -> None:
    with pytest.raises(BackendError, match="SGE refused the job"):
        await cell.backend().submit(cell.job("true", queue="no-such.q"), [])
    with pytest.raises(BackendError, match="sge_args may not set -N"):
        await cell.backend().submit(cell.job("true", sge_args="-N x"), [])


async def test_hold_jid_waits_and_a_failed_dependency_cancels(cell: Cell) -> None:
    reports = Reports()
    async with running(cell.backend(reports)) as backend:
        first = await backend.submit(cell.job("sleep 2; exit 4"), [])
        second = await backend.submit(cell.job("echo ran"), [first])
        await reports.wait(first, S.RUNNING)
        qstat = await anyio.run_process(["qstat", "-xml"])
        assert f"<JB_job_number>{second}</JB_job_number>" in qstat.stdout.decode()
        assert (await reports.final(first)).exit_code == 4
        final = await reports.final(second)
    assert final.status is S.CANCELLED and "dependency" in (final.reason or "")


async def test_qdel_is_idempotent_and_lookup_finds_by_name(cell: Cell) -> None:
    reports = Reports()
    job = cell.job("sleep 60")
    async with running(cell.backend(reports)) as backend:
        ref = await backend.submit(job, [])
        assert await backend.lookup([job.key, "never-submitted"]) == {job.key: ref}
        await reports.wait(ref, S.RUNNING)
        await backend.cancel(ref)
        await backend.cancel(ref)
        await backend.cancel("999999")  # no such job: nothing to do
        assert (await reports.final(ref)).status is S.CANCELLED


async def test_qmaster_down_keeps_states_and_holds_submits(cell: Cell) -> None:
    reports = Reports()
    job = cell.job("sleep 6; echo done")
    try:
        async with running(cell.backend(reports, submit_retries="1", retry_delay="0.1")) as backend:
            ref = await backend.submit(job, [])
            await reports.wait(ref, S.RUNNING)
            await anyio.run_process(["bash", str(SCRIPTS / "stop.sh"), "--qmaster-only"])
            with anyio.fail_after(10):
                while backend.hold(job) is None:
                    await anyio.sleep(0.1)
            assert "qmaster" in (backend.hold(job) or "")
            assert [r.status for r in reports.of(ref)] == [S.RUNNING]  # nothing failed
            ok, why = await backend.health()
            assert not ok and "qmaster" in why
            with pytest.raises(BackendError, match="qmaster"):
                await backend.submit(cell.job("true"), [])
            await anyio.run_process(["bash", str(SCRIPTS / "start.sh")])
            # execd tells the restarted qmaster of the end when it reconnects: slow under load
            final = await reports.final(ref, seconds=90)
            assert final.status is S.COMPLETED and backend.hold(job) is None
    finally:
        await anyio.run_process(["bash", str(SCRIPTS / "start.sh")], check=False)
    assert job.stdout_path.read_text() == "done\n"


# --- arrays through the real server: one qsub -t, tasks polled in bulk -------------------


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """The backend is what varies here; the databases have their own suites."""
    return f"sqlite:///{tmp_path / 'var' / 'gantry.db'}"


@pytest.fixture
def server(cell: Cell, make_client: Callable[..., Any]) -> Callable[..., Any]:
    return lambda: make_client({"sge": SgeBackend}, default_backend="sge")


async def test_an_array_from_0_runs_as_one_qsub_with_its_limit_indices_logs_and_accounting(
    server: Callable[..., Any], tmp_path: Path
) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    spec = (
        f'date +%s.%N > {marks}/"$GANTRY_ARRAY_INDEX".start; sleep 0.5; '
        f'[ "$SGE_TASK_ID" = $((GANTRY_ARRAY_INDEX + 1)) ] && echo "task $GANTRY_ARRAY_INDEX" && '
        f'date +%s.%N > {marks}/"$GANTRY_ARRAY_INDEX".end'
    )
    async with server() as (client, app):
        job = await submit(client, spec=spec, array="0-3%2", working_dir=str(tmp_path))
        done = await wait_state(client, job["id"], "completed", "failed", timeout=120)
        tasks = await tasks_of(client, job["id"])
        backend = app.state.engine.backends["sge"]
    assert done["state"] == "completed", done["reason"]
    assert sorted(tasks) == list(range(4))
    assert 1 <= most_at_once(marks, range(4)) <= 2
    assert backend.commands.counts["qsub"] == 1
    assert backend.poll_stats.max_commands_per_cycle <= 2
    log = app.state.settings.data_dir / "logs" / f"{job['id']}_3.stdout"
    assert log.read_text() == "task 3\n"
    assert all(t["accounting"]["cpu_user_seconds"] is not None for t in tasks.values())


async def test_an_sge_array_task_fails_its_array_and_dependent_and_one_task_cancels_alone(
    server: Callable[..., Any], tmp_path: Path
) -> None:
    async with server() as (client, _):
        failing = await submit(client, name="sweep", spec='[ "$GANTRY_ARRAY_INDEX" != 2 ]',
                               array="1-3", working_dir=str(tmp_path))  # fmt: skip
        after = await submit(client, spec="echo ran", depends_on=[failing["id"]])
        spec = 'if [ "$GANTRY_ARRAY_INDEX" = 4 ]; then sleep 300; else sleep 1; fi'
        mixed = await submit(client, spec=spec, array="2-6:2", working_dir=str(tmp_path))
        with anyio.fail_after(60):
            while (await tasks_of(client, mixed["id"])).get(4, {}).get("state") != "running":
                await anyio.sleep(0.2)
        answer = await client.post(f"{API}/jobs/{mixed['id']}/tasks/4/cancel")
        assert answer.status_code == 202, answer.text
        failed = await wait_state(client, failing["id"], "failed", "completed", timeout=60)
        cancelled = await wait_state(client, after["id"], "cancelled", "completed", timeout=60)
        ended = await wait_state(client, mixed["id"], "failed", "completed", timeout=60)
        tasks = await tasks_of(client, mixed["id"])
    assert failed["reason"] == "1 of 3 tasks failed (first: task 2: exited 1)"
    assert cancelled["state"] == "cancelled"
    assert {i: t["state"] for i, t in tasks.items()} == {
        2: "completed", 4: "cancelled", 6: "completed"
    }  # fmt: skip
    assert ended["reason"] == "1 of 3 tasks cancelled"


async def test_an_array_sge_cannot_run_is_refused_naming_the_backend(
    server: Callable[..., Any], tmp_path: Path
) -> None:
    cases = [("true", "1-3,10"), ("#!/usr/bin/env python3\nprint(1)", "0-3")]
    async with server() as (client, _):
        for spec, array in cases:
            body = {"spec": spec, "array": array, "working_dir": str(tmp_path)}
            response = await client.post(f"{API}/jobs", json=body)
            assert response.status_code == 422, response.text
            [error] = response.json()["detail"]
            assert error["loc"][-1] == "array" and "backend 'sge'" in error["msg"], error
        listed = (await client.get(f"{API}/jobs")).json()["items"]
    assert listed == []  # nothing stored


async def test_an_adopted_job_that_ended_before_the_restart_is_found_by_qacct(cell: Cell) -> None:
    job = cell.job("exit 3")
    first = Reports()
    async with running(cell.backend(first)) as backend:
        ref = await backend.submit(job, [])
        await first.final(ref)  # ended, and in the accounting file
    reports = Reports()
    async with running(cell.backend(reports)) as again:  # its reader starts at the file's end
        await again.adopt(job, ref)
        final = await reports.final(ref)
        qacct = again.commands.counts["qacct"]
    assert final.status is S.FAILED and final.exit_code == 3 and qacct == 1


async def test_without_the_accounting_file_ends_come_from_qacct(cell: Cell) -> None:
    reports = Reports()
    backend = cell.backend(reports, accounting_file="/nonexistent/common/accounting")
    async with running(backend):
        ref = await backend.submit(cell.job("echo hi"), [])
        final = await reports.final(ref)
    assert final.status is S.COMPLETED and backend.commands.counts["qacct"] >= 1
    assert backend.poll_stats.max_commands_per_cycle <= 2
