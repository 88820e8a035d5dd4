"""``Backend.metrics()`` of the Slurm backend against the fake Slurm commands on PATH:
what /metrics reads at scrape time is what the backend did, failed polls included."""

from __future__ import annotations

from pathlib import Path

from tests.unit import test_slurm_fake_commands as slurm_fakes
from tests.unit.test_slurm_fake_commands import (
    FakeSlurm,
    Reports,
    error,
    eventually,
    job,
    make_backend,
    running,
)

fake = slurm_fakes.fake  # the fixture: fake Slurm commands first on PATH


async def test_polls_and_commands_are_what_the_backend_ran(fake: FakeSlurm, tmp_path: Path) -> None:
    fake.answer("sbatch", {"stdout": "50\n"})
    fake.answer(
        "squeue",
        {"stdout": "50|50|N/A|RUNNING|0|None|1700000000|NONE|gantry-5.1|\n"},
        {"stdout": "50|50|N/A|COMPLETED|0|None|1700000000|1700000002|NONE|gantry-5.1|\n"},
    )
    reports = Reports()
    backend = make_backend(tmp_path, reports, fast_poll_interval="0.05", poll_interval="0.05")
    async with running(backend):
        ref = await backend.submit(job(tmp_path), [])
        await reports.wait_final(ref)
    work = backend.metrics()
    assert work.polls == backend.poll_stats.cycles >= 2
    assert work.poll_seconds > 0
    assert work.commands == {name: len(fake.calls(name)) for name in ("sbatch", "squeue", "sacct")}


async def test_a_failed_poll_counts_with_its_time(fake: FakeSlurm, tmp_path: Path) -> None:
    fake.answer("squeue", {**error("squeue", "Socket timed out on send/recv"), "sleep": 0.1})
    backend = make_backend(tmp_path, Reports(), poll_interval="0.05")
    async with running(backend):
        await backend.adopt(job(tmp_path), "70")
        await eventually(lambda: backend.poll_stats.cycles >= 1)
        # Read while running: a cycle cut short by the stop counts only part of its time.
        work = backend.metrics()
    assert work.polls >= 1 and work.poll_seconds >= 0.1 * work.polls
    assert work.commands["squeue"] >= 1
