"""Slurm states and exit codes -> StatusReport (gantry.backends.slurm.states)."""

from __future__ import annotations

import pytest

from gantry.backends.base import BackendStatus
from gantry.backends.slurm.states import (
    COMPACT,
    STATES,
    ExitInfo,
    parse_exit_code,
    parse_time,
    parse_wait_status,
    state_name,
    to_report,
)

S = BackendStatus


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        ("PENDING", S.SUBMITTED),
        ("CONFIGURING", S.SUBMITTED),
        ("REQUEUED", S.SUBMITTED),
        ("REQUEUE_HOLD", S.SUBMITTED),
        ("REQUEUE_FED", S.SUBMITTED),
        ("RESV_DEL_HOLD", S.SUBMITTED),
        ("RUNNING", S.RUNNING),
        ("COMPLETING", S.RUNNING),
        ("SUSPENDED", S.RUNNING),
        ("STOPPED", S.RUNNING),
        ("RESIZING", S.RUNNING),
        ("SIGNALING", S.RUNNING),
        ("STAGE_OUT", S.RUNNING),
        ("COMPLETED", S.COMPLETED),
        ("FAILED", S.FAILED),
        ("TIMEOUT", S.FAILED),
        ("OUT_OF_MEMORY", S.FAILED),
        ("NODE_FAIL", S.FAILED),
        ("BOOT_FAIL", S.FAILED),
        ("DEADLINE", S.FAILED),
        ("PREEMPTED", S.FAILED),
        ("SPECIAL_EXIT", S.FAILED),
        ("CANCELLED", S.CANCELLED),
        ("CANCELLED by 0", S.CANCELLED),
        ("CANCELLED by 1234", S.CANCELLED),
        ("REVOKED", S.CANCELLED),
    ],
)
def test_every_slurm_state_maps(raw: str, status: BackendStatus) -> None:
    report = to_report(raw)
    assert report.status is status
    assert report.raw == raw


def test_every_compact_code_names_a_known_state() -> None:
    assert set(COMPACT.values()) <= set(STATES)
    assert state_name("CA") == "CANCELLED"
    assert state_name("TO") == "TIMEOUT"
    assert state_name("cancelled+") == "CANCELLED"


@pytest.mark.parametrize("raw", ["WIBBLE", "", "   ", "PENDING_SOMETHING_NEW by 3"])
def test_unknown_state_is_unknown_and_keeps_the_raw_word(raw: str) -> None:
    report = to_report(raw, ExitInfo(0))
    assert report.status is S.UNKNOWN
    assert report.raw == (raw.strip() or None)
    assert report.exit_code is None
    assert report.reason is not None and "not known" in report.reason


def test_timeout_is_failed_with_walltime_reason() -> None:
    report = to_report("TIMEOUT", ExitInfo(0, 15), "TimeLimit", 100.0, 160.0)
    assert report.status is S.FAILED
    assert report.reason == "walltime exceeded"
    assert report.exit_code == 128 + 15
    assert (report.started_at, report.ended_at) == (100.0, 160.0)


def test_failed_reason_says_the_exit_code_or_signal() -> None:
    assert to_report("FAILED", ExitInfo(3), "NonZeroExitCode").reason == "exited 3"
    killed = to_report("FAILED", ExitInfo(0, 9))
    assert killed.reason == "killed by SIGKILL"
    assert killed.exit_code == 137


def test_completed_has_exit_code_zero() -> None:
    report = to_report("COMPLETED", ExitInfo(0), "None", 1.0, 2.0)
    assert (report.status, report.exit_code, report.reason) == (S.COMPLETED, 0, None)


def test_cancelled_reports_who_and_no_exit_code() -> None:
    report = to_report("CANCELLED by 0", ExitInfo(0, 15))
    assert report.exit_code is None
    assert report.reason == "cancelled in Slurm by uid 0"


def test_failed_dependency_reason() -> None:
    report = to_report("CANCELLED", None, "DependencyNeverSatisfied")
    assert report.status is S.CANCELLED
    assert report.reason is not None and "dependency failed" in report.reason


def test_running_job_has_no_end_or_exit_code() -> None:
    report = to_report("RUNNING", ExitInfo(0), "None", 5.0, 99.0)
    assert (report.exit_code, report.ended_at, report.started_at) == (None, None, 5.0)


def test_pending_reason_becomes_a_sentence() -> None:
    assert to_report("PENDING", None, "Resources").reason == "waiting for resources"
    assert to_report("PENDING", None, "SomethingNew").reason is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0:0", ExitInfo(0)), ("1:0", ExitInfo(1)), ("0:9", ExitInfo(0, 9)), ("255:0", ExitInfo(255)),
     ("3", ExitInfo(3)), ("", None), ("x:y", None), ("1:", None)],
)  # fmt: skip
def test_parse_exit_code(text: str, expected: ExitInfo | None) -> None:
    assert parse_exit_code(text) == expected


def test_parse_wait_status() -> None:
    assert parse_wait_status("0") == ExitInfo(0)
    assert parse_wait_status("256") == ExitInfo(1)
    assert parse_wait_status("15") == ExitInfo(0, 15)
    assert parse_wait_status("N/A") is None


def test_parse_time() -> None:
    assert parse_time("1700000000") == 1700000000.0
    for unset in ("NONE", "Unknown", "N/A", "0", ""):
        assert parse_time(unset) is None


def test_unknown_signal_number_is_described() -> None:
    assert ExitInfo(0, 99).describe() == "killed by signal 99"
