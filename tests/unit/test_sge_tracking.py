"""The sge backend's poll bookkeeping without a cell: the accounting file read from a
remembered offset, and what qstat's and the file's answers mean for each job."""

from __future__ import annotations

from pathlib import Path

import pytest

from gantry.backends.base import BackendStatus, StatusReport
from gantry.backends.sge.accounting import AccountingFile, AccountingUnavailable
from gantry.backends.sge.parsing import SgeJob
from gantry.backends.sge.submission import task_range
from gantry.backends.sge.tracking import TaskWatch, Timing, Watch, take
from gantry.jobs.arrays import parse_array

OUT = Path(__file__).parent / "sge_output"
S = BackendStatus
LINES = (OUT / "accounting_lines.txt").read_text().splitlines(keepends=True)
TIMING = Timing(grace=2.0, forget_after=60.0)


def never(_: str) -> bool:
    return False


def test_the_reader_starts_at_the_end_and_reads_only_new_complete_lines(tmp_path: Path) -> None:
    path = tmp_path / "accounting"
    path.write_text("# Version: 8.1.9\n" + LINES[0])
    reader = AccountingFile(path)
    reader.start()
    assert reader.read() == []  # what was there before is qacct's
    with path.open("a") as file:
        file.write(LINES[1] + LINES[2][:30])  # qmaster is half-way through a line
    assert [j.key for j in reader.read()] == ["10.3"]
    with path.open("a") as file:
        file.write(LINES[2][30:])
    assert [j.key for j in reader.read()] == ["11"]
    assert reader.read() == []


def test_a_rotated_file_is_read_from_its_start(tmp_path: Path) -> None:
    path = tmp_path / "accounting"
    path.write_text(LINES[0] + LINES[1])
    reader = AccountingFile(path)
    reader.start()
    path.rename(tmp_path / "accounting.0")
    path.write_text(LINES[2])
    assert [j.key for j in reader.read()] == ["11"]


def test_no_file_yet_is_empty_but_no_folder_is_unavailable(tmp_path: Path) -> None:
    reader = AccountingFile(tmp_path / "accounting")
    reader.start()
    assert reader.read() == []
    (tmp_path / "accounting").write_text(LINES[2])  # the cell's first end
    assert [j.key for j in reader.read()] == ["11"]
    with pytest.raises(AccountingUnavailable, match="not a directory"):
        AccountingFile(tmp_path / "no" / "accounting").start()


def test_records_read_before_a_job_is_tracked_are_kept_for_it(tmp_path: Path) -> None:
    reader = AccountingFile(tmp_path / "accounting")
    job = SgeJob("5", "x", StatusReport(S.COMPLETED))
    reader.keep(job)
    assert reader.claim("5") == [job] and reader.claim("5") == []


def live(job_id: str, state: BackendStatus, task: int | None = None) -> SgeJob:
    return SgeJob(job_id, "x", StatusReport(state), task=task)


def test_a_job_moves_then_ends_with_its_record() -> None:
    watch = Watch(last=S.SUBMITTED)
    assert take("1", watch, [live("1", S.RUNNING)], [], 0.0, TIMING, never) == (
        [StatusReport(S.RUNNING)], False,
    )  # fmt: skip
    assert take("1", watch, None, [], 0.1, TIMING, never) == ([], False)  # no qstat: no news
    assert watch.busy  # running: the reader looks often
    ended = SgeJob("1", "x", StatusReport(S.COMPLETED, exit_code=0))
    assert take("1", watch, None, [ended], 0.2, TIMING, never) == ([ended.report], True)


def test_gone_without_a_record_waits_then_deleted_is_cancelled_and_else_unknown() -> None:
    deleted = Watch(last=S.SUBMITTED, cancelled=True)
    assert take("2", deleted, [], [], 0.0, TIMING, never) == ([], False)
    reports, done = take("2", deleted, [], [], 2.5, TIMING, never)
    assert done and reports[0].status is S.CANCELLED
    lost = Watch(last=S.RUNNING)
    assert take("3", lost, [], [], 0.0, TIMING, never)[1] is False
    assert lost.wants_qacct(30.0, 20.0, at_once=False) and not lost.wants_qacct(5.0, 20.0, False)
    reports, done = take("3", lost, [], [], 61.0, TIMING, never)
    assert done and reports[0].status is S.UNKNOWN


def test_a_skipped_dependent_is_cancelled() -> None:
    record = SgeJob("4", "x", StatusReport(S.FAILED, exit_code=97))
    reports, _ = take("4", Watch(), None, [record], 0.0, TIMING, lambda key: key == "4")
    assert reports[0].status is S.CANCELLED and "dependency" in (reports[0].reason or "")


def test_an_arrays_tasks_report_by_gantry_index_and_a_deleted_task_ends_cancelled() -> None:
    spec = parse_array("0-2")  # SGE's tasks 1-3
    watch = Watch(array=TaskWatch(spec, task_range(spec)))
    waiting = SgeJob("7", "x", StatusReport(S.SUBMITTED), pending="2-3:1")
    reports, _ = take("7", watch, [live("7", S.RUNNING, task=1), waiting], [], 0.0, TIMING, never)
    assert [(r.task, r.status) for r in reports] == [(0, S.RUNNING)]
    watch.array.cancelled[2] = None  # qdel 7.3, not started
    ended = SgeJob("7", "x", StatusReport(S.COMPLETED, exit_code=0), task=1)
    still = SgeJob("7", "x", StatusReport(S.SUBMITTED), pending="2")
    reports, _ = take("7", watch, [still], [ended], 1.0, TIMING, never)
    assert [(r.task, r.status) for r in reports] == [(0, S.COMPLETED)]
    assert take("7", watch, [still], [], 3.5, TIMING, never)[0][0].task == 2  # deleted
    last = SgeJob("7", "x", StatusReport(S.FAILED, exit_code=1), task=2)
    reports, done = take("7", watch, [], [last], 4.0, TIMING, never)
    assert done and [(r.task, r.exit_code) for r in reports] == [(1, 1)]


def test_a_deleted_array_ends_its_tasks_never_started_cancelled() -> None:
    spec = parse_array("1-4")
    watch = Watch(array=TaskWatch(spec, task_range(spec)), cancelled=True)
    killed = SgeJob("8", "x", StatusReport(S.CANCELLED), task=1)
    take("8", watch, [], [killed], 0.0, TIMING, never)
    reports, done = take("8", watch, [], [], 2.5, TIMING, never)
    assert done and [r.task for r in reports] == [2, 3, 4]
