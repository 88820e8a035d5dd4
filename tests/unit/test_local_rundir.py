"""What a job's files say, and how the local backend reads how a job ended."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from gantry.backends.base import BackendStatus
from gantry.backends.local.process import is_supervisor_of, start_ticks, started_at
from gantry.backends.local.rundir import (
    SUPERVISOR_DIED,
    KillRecord,
    RunFiles,
    RunState,
    final_report,
    is_key,
    parse_killed,
    parse_state,
)


@pytest.mark.parametrize(
    ("text", "state"),
    [
        ("", None),
        ("12", None),  # the pid line is still being written
        ("x\n", None),
        ("12\n", RunState(12)),
        ("12\n0", RunState(12)),  # the exit line is still being written
        ("12\n0\n", RunState(12, 0, 99.0)),
        ("12\n143\n", RunState(12, 143, 99.0)),
        ("12\nnope\n", RunState(12)),
    ],
)
def test_parse_state(text: str, state: RunState | None) -> None:
    assert parse_state(text, 99.0) == state


@pytest.mark.parametrize(
    ("text", "kill"),
    [
        ("cancel\n", KillRecord("cancel")),
        ("walltime 90\n", KillRecord("walltime", 90)),
        ("walltime\n", None),
        ("", None),
        ("boom\n", None),
    ],
)
def test_parse_killed(text: str, kill: KillRecord | None) -> None:
    assert parse_killed(text) == kill
    if kill is not None:
        assert parse_killed(kill.text()) == kill


@pytest.mark.parametrize("ref", ["1.1", "12.3", "007.1"])
def test_keys(ref: str) -> None:
    assert is_key(ref)


NOT_KEYS = ["", "1", "1.", ".1", "a.1", "../1.1", "1.1/x", "1.1\n", "1.1 ", "\u0661.1"]


@pytest.mark.parametrize("ref", NOT_KEYS)
def test_anything_else_is_not_a_key(ref: str) -> None:
    assert not is_key(ref)


def test_exit_zero_is_completed() -> None:
    report = final_report(RunState(5, 0, 20.0), None, 10.0)
    assert report.status is BackendStatus.COMPLETED
    assert (report.exit_code, report.started_at, report.ended_at) == (0, 10.0, 20.0)


def test_non_zero_exit_is_failed_with_the_code() -> None:
    report = final_report(RunState(5, 3, 20.0), None, ended_at=21.0)
    assert report.status is BackendStatus.FAILED
    assert report.exit_code == 3 and report.reason == "exited with code 3"
    assert report.ended_at == 21.0


def test_no_exit_code_means_the_supervisor_died() -> None:
    for state in (None, RunState(5)):
        report = final_report(state, None)
        assert report.status is BackendStatus.FAILED
        assert report.exit_code is None and report.reason == SUPERVISOR_DIED


def test_cancelled_is_cancelled_whatever_the_exit_code() -> None:
    for code in (0, 143):
        report = final_report(RunState(5, code, 1.0), KillRecord("cancel"))
        assert report.status is BackendStatus.CANCELLED and report.exit_code == code


def test_killed_without_an_exit_code_reports_sigkill() -> None:
    report = final_report(RunState(5), KillRecord("cancel"))
    assert report.status is BackendStatus.CANCELLED and report.exit_code == 137


def test_walltime_is_failed_and_says_which() -> None:
    report = final_report(RunState(5, 143, 1.0), KillRecord("walltime", 2))
    assert report.status is BackendStatus.FAILED
    assert report.reason == "walltime 00:00:02 exceeded; killed"
    assert report.exit_code == 143


def test_run_files(tmp_path: Path) -> None:
    files = RunFiles(tmp_path, "4.2")
    assert not files.launched() and files.read_state() is None and files.read_killed() is None
    files.write_script("echo hi\n")
    assert files.launched() and (tmp_path / "4.2.sh").read_text() == "echo hi\n"
    (tmp_path / "4.2.state").write_text("123\n")
    assert files.read_state() == RunState(123)
    with open(tmp_path / "4.2.state", "a") as state:
        state.write("7\n")
    mtime = os.stat(tmp_path / "4.2.state").st_mtime
    assert files.read_state() == RunState(123, 7, mtime)
    files.write_killed(KillRecord("walltime", 60))
    assert files.read_killed() == KillRecord("walltime", 60)


def test_start_ticks_and_start_time_of_this_process() -> None:
    ticks = start_ticks(os.getpid())
    assert ticks is not None
    # This process started before now, and not before the machine booted.
    assert time.time() - time.clock_gettime(time.CLOCK_BOOTTIME) - 1 < started_at(ticks)
    assert started_at(ticks) <= time.time()


def test_no_start_ticks_for_a_process_that_is_not_there() -> None:
    assert start_ticks(2**22 + 1) is None  # above any pid_max


def test_this_process_is_no_supervisor() -> None:
    assert not is_supervisor_of(os.getpid(), "/nowhere/1.1")
    assert not is_supervisor_of(2**22 + 1, "/nowhere/1.1")
