"""squeue/sacct argv and parsing (gantry.backends.slurm.queries), on real output shapes."""

from __future__ import annotations

import logging

import pytest

from gantry.backends.base import BackendStatus
from gantry.backends.slurm.queries import (
    MAX_IDS_IN_ARGV,
    parse_sacct,
    parse_squeue,
    sacct_argv,
    squeue_argv,
)
from gantry.backends.slurm.states import ExitInfo

# As squeue 22.05 prints it with --Format=...:| (SLURM_TIME_FORMAT=%s).
SQUEUE = """\
1|FAILED|256|NonZeroExitCode|1795308364|1795308364|gantry-1.1|
4|RUNNING|0|None|1795308376|NONE|gantry-4.1|
5|PENDING|0|Dependency|N/A|NONE|name|with|bars|
6|CANCELLED|15|None|1795308376|1795308377|gantry-6.1|
"""

# As sacct 22.05 prints it with --parsable2 --noheader.
SACCT = """\
1|FAILED|1:0|None|1795308364|1795308364|gantry-1.1
1.batch|FAILED|1:0||1795308364|1795308364|batch
4|CANCELLED by 0|0:0|None|1795308376|1795308376|gantry-4.1
4.batch|CANCELLED|0:15||1795308376|1795308376|batch
4.extern|COMPLETED|0:0||1795308376|1795308376|extern
7|PENDING|0:0|Dependency|Unknown|Unknown|gantry-7.1
8|TIMEOUT|0:0|None|1795308388|1795308450|gantry-8.1
8.batch|CANCELLED|0:15||1795308388|1795308451|batch
"""


def test_parse_squeue() -> None:
    jobs = parse_squeue(SQUEUE)
    assert set(jobs) == {"1", "4", "5", "6"}
    assert jobs["1"].exit == ExitInfo(1)
    assert jobs["1"].report().status is BackendStatus.FAILED
    assert jobs["1"].report().exit_code == 1
    assert jobs["4"].report().status is BackendStatus.RUNNING
    assert jobs["4"].started_at == 1795308376.0 and jobs["4"].ended_at is None
    assert jobs["5"].name == "name|with|bars"
    assert jobs["5"].started_at is None
    assert jobs["6"].report().status is BackendStatus.CANCELLED


def test_parse_sacct_takes_the_exit_code_from_the_batch_step() -> None:
    jobs = parse_sacct(SACCT)
    assert set(jobs) == {"1", "4", "7", "8"}
    assert jobs["1"].report().exit_code == 1
    assert jobs["4"].state == "CANCELLED by 0"
    assert jobs["4"].exit == ExitInfo(0, 15)
    timeout = jobs["8"].report()
    assert (timeout.status, timeout.reason, timeout.exit_code) == (
        BackendStatus.FAILED, "walltime exceeded", 143
    )  # fmt: skip
    assert timeout.ended_at == 1795308450.0
    assert jobs["7"].report().status is BackendStatus.SUBMITTED


def test_garbage_lines_are_skipped_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, "gantry.backends.slurm"):
        assert parse_squeue("garbage\n\n") == {}
        assert parse_sacct("x|y\n") == {}
    assert len(caplog.records) == 2


def test_squeue_argv() -> None:
    argv = squeue_argv(ids=["1", "2"])
    assert argv[:3] == ["squeue", "--noheader", "--states=all"]
    assert "--jobs=1,2" in argv
    many = squeue_argv(ids=[str(i) for i in range(MAX_IDS_IN_ARGV + 1)])
    assert "--me" in many and not [a for a in many if a.startswith("--jobs")]
    by_name = squeue_argv(names=["gantry-1.1", "gantry-2.1"])
    assert "--name=gantry-1.1,gantry-2.1" in by_name and "--me" in by_name


def test_sacct_argv() -> None:
    assert "--jobs=3,4" in sacct_argv(ids=["3", "4"])
    by_name = sacct_argv(names=["gantry-1.1"])
    assert "--name=gantry-1.1" in by_name
    assert any(a.startswith("--starttime=") for a in by_name)  # else only since midnight
