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
from gantry.backends.slurm.states import ExitInfo, parse_cpu_time, parse_memory

# As squeue 22.05 prints it with --Format=...:| (SLURM_TIME_FORMAT=%s).
SQUEUE = """\
1|1|N/A|FAILED|256|NonZeroExitCode|1795308364|1795308364|gantry-1.1|
4|4|N/A|RUNNING|0|None|1795308376|NONE|gantry-4.1|
5|5|N/A|PENDING|0|Dependency|N/A|NONE|name|with|bars|
6|6|N/A|CANCELLED|15|None|1795308376|1795308377|gantry-6.1|
"""

# As sacct 22.05 prints it with --parsable2 --noheader.
SACCT = """\
1|FAILED|1:0|None|1795308364|1795308364|||||gantry-1.1
1.batch|FAILED|1:0||1795308364|1795308364|||||batch
4|CANCELLED by 0|0:0|None|1795308376|1795308376|||||gantry-4.1
4.batch|CANCELLED|0:15||1795308376|1795308376|||||batch
4.extern|COMPLETED|0:0||1795308376|1795308376|||||extern
7|PENDING|0:0|Dependency|Unknown|Unknown|||||gantry-7.1
8|TIMEOUT|0:0|None|1795308388|1795308450|||||gantry-8.1
8.batch|CANCELLED|0:15||1795308388|1795308451|||||batch
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


def test_parse_sacct_reads_the_accounting_of_an_ended_job() -> None:
    # sacct 22.05 with jobacct_gather/linux: CPU on the allocation, MaxRSS per step.
    text = (
        "146|COMPLETED|0:0||1795308364|1795308366|00:00.343|00:00.901||2|gantry-3.1\n"
        "146.batch|COMPLETED|0:0||1795308364|1795308366|00:00.343|00:00.901|221336K|2|batch\n"
        "146.extern|COMPLETED|0:0||1795308364|1795308366|00:00:00|00:00:00|1024K|2|extern\n"
        "147|RUNNING|0:0|None|1795308364|Unknown|00:00:00|00:00:00||5|gantry-4.1\n"
    )
    jobs = parse_sacct(text)
    accounting = jobs["146"].report().accounting
    assert accounting is not None
    assert (accounting.cpu_user, accounting.cpu_system) == (0.343, 0.901)
    assert (accounting.max_rss, accounting.wall) == (221336 * 1024, 2.0)
    assert jobs["147"].report().accounting is None  # only an end carries it


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("00:01.245", 1.245), ("01:02:03", 3723.0), ("2-01:00:00", 176400.0), ("", None)],
)
def test_parse_cpu_time(text: str, seconds: float | None) -> None:
    assert parse_cpu_time(text) == seconds


@pytest.mark.parametrize(
    ("text", "amount"), [("221336K", 221336 * 1024), ("1.5G", 3 * 2**29), ("0", 0), ("", None)]
)
def test_parse_memory(text: str, amount: int | None) -> None:
    assert parse_memory(text) == amount


def test_an_arrays_tasks_are_keyed_by_array_id_and_index() -> None:
    # squeue 22.05: a running task has its own JobID; those not started are one line.
    squeue = parse_squeue(
        "163|163|2-5%2|PENDING|0|JobArrayTaskLimit|N/A|N/A|gantry-1.1|\n"
        "165|163|1|RUNNING|0|None|1796528349|NONE|gantry-1.1|\n"
        "167|163|3|FAILED|256|NonZeroExitCode|1796528349|1796528351|gantry-1.1|\n"
    )
    assert set(squeue) == {"163", "163_1", "163_3"}
    assert squeue["163"].report().status is BackendStatus.SUBMITTED
    assert squeue["163_3"].report().exit_code == 1
    sacct = parse_sacct(
        "163_0|COMPLETED|0:0||1|3|00:00.002|00:00.001||3|gantry-1.1\n"
        "163_0.batch|COMPLETED|0:0||1|3|00:00.002|00:00.001|3152K|3|batch\n"
        "163_[4-5%2]|CANCELLED by 0|0:0|None|Unknown|1|00:00:00|00:00:00||0|gantry-1.1\n"
    )
    assert set(sacct) == {"163_0", "163"}
    accounting = sacct["163_0"].report().accounting
    assert accounting is not None and accounting.max_rss == 3152 * 1024
    assert sacct["163"].report().status is BackendStatus.CANCELLED
