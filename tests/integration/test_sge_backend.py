"""SgeBackend on a real single-node Grid Engine cell (start it: ``bash scripts/sge/start.sh``
as root). Jobs are few and short: SGE on one node schedules once a second."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

from gantry.backends.base import BackendContext, BackendError, BackendStatus, JobSubmission
from gantry.backends.sge import SgeBackend
from tests.conftest import need
from tests.integration.test_backend_suite import SGE_HOW, sge_running
from tests.integration.test_slurm_backend import RUN, Reports

pytestmark = pytest.mark.sge
S = BackendStatus
SCRIPTS = Path(__file__).resolve().parents[2] / "scripts" / "sge"


class Cell:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.count = 0

    def backend(self, reports: Reports | None = None, **config: str) -> SgeBackend:
        config = {"poll_interval": "0.3", **config}
        return SgeBackend(BackendContext("sge", self.data_dir, config, reports or Reports()))

    def job(self, spec: str, **options: Any) -> JobSubmission:
        self.count += 1
        job_id = RUN * 1000 + self.count
        return JobSubmission(
            job_id=job_id, attempt=1, name=f"test {self.count}", spec=spec, options=options,
            working_dir=self.data_dir, env={"PATH": "/usr/bin:/bin"},
            stdout_path=self.data_dir / "logs" / f"{job_id}.stdout",
            stderr_path=self.data_dir / "logs" / f"{job_id}.stderr",
        )  # fmt: skip


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
            final = await reports.final(ref)
            assert final.status is S.COMPLETED and backend.hold(job) is None
    finally:
        await anyio.run_process(["bash", str(SCRIPTS / "start.sh")], check=False)
    assert job.stdout_path.read_text() == "done\n"
