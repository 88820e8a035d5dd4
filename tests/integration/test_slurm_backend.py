"""SlurmBackend on a real single-node cluster (start it: ``scripts/slurm/start.sh``).

Skipped when ``sinfo`` fails, except under CI (``CI=true``), where a missing
cluster is a failure. Every job name is unique per run, so ``lookup`` never
finds a job of an earlier run.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

from gantry.backends.base import (
    BackendContext,
    BackendError,
    BackendStatus,
    JobSubmission,
    StatusReport,
)
from gantry.backends.slurm import SlurmBackend
from gantry.backends.slurm.queries import sacct_argv

pytestmark = pytest.mark.slurm

NOT_RUNNING = "Slurm is not running: start a single-node cluster with `scripts/slurm/start.sh`"
RUN = time.time_ns() // 1000 % 10**12  # job ids unique to this run
S = BackendStatus


def _require_slurm() -> None:
    try:
        ok = (
            subprocess.run(["sinfo", "--noheader"], capture_output=True, timeout=10).returncode == 0
        )
    except (OSError, subprocess.TimeoutExpired):
        ok = False
    if not ok:
        if os.environ.get("CI") == "true":
            pytest.fail(NOT_RUNNING)
        pytest.skip(NOT_RUNNING)


class Reports:
    def __init__(self) -> None:
        self.items: list[tuple[float, str, StatusReport]] = []

    def __call__(self, ref: str, report: StatusReport) -> None:
        self.items.append((time.time(), ref, report))

    def of(self, ref: str) -> list[StatusReport]:
        return [r for _, f, r in self.items if f == ref]

    async def wait(self, ref: str, *statuses: BackendStatus, seconds: float = 30) -> StatusReport:
        with anyio.fail_after(seconds):
            while True:
                for report in self.of(ref):
                    if report.status in statuses:
                        return report
                await anyio.sleep(0.05)

    async def final(self, ref: str, seconds: float = 30) -> StatusReport:
        return await self.wait(ref, S.COMPLETED, S.FAILED, S.CANCELLED, S.UNKNOWN, seconds=seconds)


class Cluster:
    """Makes backends and jobs in one temporary data dir."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.count = 0

    def backend(self, reports: Reports | None = None, **config: str) -> SlurmBackend:
        context = BackendContext("slurm", self.data_dir, config, reports or Reports())
        return SlurmBackend(context)

    def job(self, spec: str, env: dict[str, str] | None = None, **options: Any) -> JobSubmission:
        self.count += 1
        job_id = RUN * 1000 + self.count
        return JobSubmission(
            job_id=job_id, attempt=1, name=f"test {self.count}", spec=spec, options=options,
            working_dir=self.data_dir, env={"PATH": "/usr/bin:/bin", **(env or {})},
            stdout_path=self.data_dir / "logs" / f"{job_id}.stdout",
            stderr_path=self.data_dir / "logs" / f"{job_id}.stderr",
        )  # fmt: skip


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Cluster:
    _require_slurm()
    return Cluster(tmp_path_factory.mktemp("slurm-data"))


@pytest.fixture(scope="module", autouse=True)
def walltime_job(cluster: Cluster) -> Iterator[str]:
    """A job that overruns its 1-minute walltime (Slurm's smallest), started first.

    Submitted when this module starts so its minute passes while the other
    tests run; ``test_walltime_exceeded`` (the last test) waits for its end.
    """

    async def submit() -> str:
        return await cluster.backend().submit(cluster.job("sleep 600", walltime="00:01:00"), [])

    ref = anyio.run(submit)
    yield ref
    subprocess.run(["scancel", ref], capture_output=True, check=False)


@asynccontextmanager
async def running(backend: SlurmBackend) -> AsyncIterator[SlurmBackend]:
    async with anyio.create_task_group() as tg:
        await tg.start(backend.run)
        yield backend
        tg.cancel_scope.cancel()
    await backend.close()


async def test_health(cluster: Cluster) -> None:
    ok, why = await cluster.backend().health()
    assert ok, why
    assert "idle" in why or "mixed" in why or "allocated" in why


async def test_job_completes_with_its_logs_env_and_directory(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GANTRY_SERVER_SECRET", "must-not-leak")
    reports = Reports()
    spec = (
        'echo "out $GREETING"\necho "err" >&2\npwd\necho "secret=${GANTRY_SERVER_SECRET:-none}"\n'
    )
    job = cluster.job(spec, env={"GREETING": "it's $(id) ; `id`"})
    async with running(cluster.backend(reports)) as backend:
        ref = await backend.submit(job, [])
        report = await reports.final(ref)
    assert (report.status, report.exit_code) == (S.COMPLETED, 0)
    assert report.started_at and report.ended_at and report.ended_at >= report.started_at
    out = job.stdout_path.read_text().splitlines()
    assert out == ["out it's $(id) ; `id`", str(cluster.data_dir), "secret=none"]
    assert job.stderr_path.read_text() == "err\n"
    assert [r.status for r in reports.of(ref)][-1] is S.COMPLETED


async def test_non_zero_exit_fails_with_the_code(cluster: Cluster) -> None:
    reports = Reports()
    async with running(cluster.backend(reports)) as backend:
        ref = await backend.submit(cluster.job("exit 3"), [])
        report = await reports.final(ref)
    assert (report.status, report.exit_code, report.reason) == (S.FAILED, 3, "exited 3")


async def test_dependency_chain_runs_in_order(cluster: Cluster) -> None:
    reports = Reports()
    marker = cluster.data_dir / f"marker-{RUN}"
    first = cluster.job(f"sleep 1; touch {marker}")
    second = cluster.job(f"test -e {marker}")
    async with running(cluster.backend(reports)) as backend:
        ref1 = await backend.submit(first, [])
        ref2 = await backend.submit(second, [ref1])
        end1 = await reports.final(ref1)
        end2 = await reports.final(ref2)
    assert end1.status is S.COMPLETED
    assert end2.status is S.COMPLETED  # it ran only once the marker existed
    assert end2.started_at and end1.ended_at and end2.started_at >= end1.ended_at


async def test_failed_dependency_makes_slurm_cancel_the_dependent(cluster: Cluster) -> None:
    reports = Reports()
    async with running(cluster.backend(reports)) as backend:
        ref1 = await backend.submit(cluster.job("exit 1"), [])
        ref2 = await backend.submit(cluster.job("echo never"), [ref1])
        ref3 = await backend.submit(cluster.job("echo never"), [ref2])
        assert (await reports.final(ref1)).status is S.FAILED
        cancelled = await reports.final(ref2)
        assert (await reports.final(ref3)).status is S.CANCELLED
    assert cancelled.status is S.CANCELLED
    assert cancelled.reason is not None and "dependency" in cancelled.reason


async def test_cancel_pending_and_running(cluster: Cluster) -> None:
    reports = Reports()
    async with running(cluster.backend(reports)) as backend:
        held = await backend.submit(cluster.job("echo never", slurm_args="--hold"), [])
        busy = await backend.submit(cluster.job("sleep 300"), [])
        await reports.wait(busy, S.RUNNING)
        started = time.monotonic()
        await backend.cancel(held)
        await backend.cancel(busy)
        assert (await reports.final(held)).status is S.CANCELLED
        assert (await reports.final(busy)).status is S.CANCELLED
        assert time.monotonic() - started < 3
        await backend.cancel(busy)  # idempotent
        await backend.cancel("999999999")  # never existed: fine too


async def test_slurm_rejection_is_a_backend_error(cluster: Cluster) -> None:
    backend = cluster.backend()
    with pytest.raises(BackendError, match="invalid partition specified: nosuch"):
        await backend.submit(cluster.job("true", queue="nosuch"), [])
    with pytest.raises(BackendError, match="Memory specification can not be satisfied"):
        await backend.submit(cluster.job("true", memory="1000t"), [])


async def test_lookup_finds_a_submission_by_its_key(cluster: Cluster) -> None:
    backend = cluster.backend()
    job = cluster.job("true")
    ref = await backend.submit(job, [])
    assert await backend.lookup([job.key, f"{RUN}999.9"]) == {job.key: ref}


async def test_restart_adopts_and_sees_the_end(cluster: Cluster) -> None:
    job = cluster.job("sleep 1; exit 4")
    async with running(cluster.backend()) as first:
        ref = await first.submit(job, [])
    # The server is down while the job runs and ends.
    await anyio.sleep(3)
    reports = Reports()
    async with running(cluster.backend(reports)) as second:
        await second.adopt(job, ref)
        report = await reports.final(ref)
    assert (report.status, report.exit_code) == (S.FAILED, 4)


async def test_sacct_describes_a_finished_job(cluster: Cluster) -> None:
    """The path for jobs slurmctld has forgotten, on sacct's real output."""
    reports = Reports()
    async with running(cluster.backend(reports)) as backend:
        ref = await backend.submit(cluster.job("exit 5"), [])
        await reports.final(ref)
        with anyio.fail_after(10):
            while True:  # slurmdbd records the end a moment after slurmctld
                jobs = await backend._sacct(sacct_argv(ids=[ref]))
                if ref in jobs and jobs[ref].report().status.is_final:
                    break
                await anyio.sleep(0.2)
    # (Its JobName may still read "allocation" for a moment: slurmdbd fills it in late.)
    report = jobs[ref].report()
    assert (report.status, report.exit_code, report.raw) == (S.FAILED, 5, "FAILED")
    assert report.started_at and report.ended_at


async def test_status_in_bulk(cluster: Cluster) -> None:
    reports = Reports()
    async with running(cluster.backend(reports)) as backend:
        refs = [await backend.submit(cluster.job(f"exit {i}"), []) for i in range(3)]
        for ref in refs:
            await reports.final(ref)
        before = dict(backend.commands.counts)
        got = await backend.status([*refs, "999999999"])
        used = {k: v - before.get(k, 0) for k, v in backend.commands.counts.items()}
    assert [got[r].exit_code for r in refs] == [0, 1, 2]
    assert got["999999999"].status is S.UNKNOWN
    assert sum(used.values()) == 2  # one squeue, one sacct for the unknown id


@pytest.mark.timeout(180)
async def test_walltime_exceeded(cluster: Cluster, walltime_job: str) -> None:
    """Last in the file: the job submitted at module start overruns its minute."""
    reports = Reports()
    async with running(cluster.backend(reports)) as backend:
        await backend.adopt(cluster.job("unused"), walltime_job)
        report = await reports.final(walltime_job, seconds=150)
    assert (report.status, report.reason, report.raw) == (S.FAILED, "walltime exceeded", "TIMEOUT")
    assert report.started_at and report.ended_at
    assert 60 <= report.ended_at - report.started_at <= 130
