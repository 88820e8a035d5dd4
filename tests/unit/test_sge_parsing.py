"""The sge backend's parsing, on output captured from a real Grid Engine 8.1.9 cell
(tests/unit/sge_output/), and its qsub argv."""

from __future__ import annotations

import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from gantry.backends.base import BackendError, BackendStatus, JobSubmission
from gantry.backends.sge.config import SgeSettings
from gantry.backends.sge.parsing import (
    parse_accounting_line,
    parse_qacct,
    parse_qstat_xml,
    state_report,
)
from gantry.backends.sge.submission import job_script, normalise_options, qsub_argv, task_range
from gantry.jobs.arrays import parse_array

OUT = Path(__file__).parent / "sge_output"
S = BackendStatus


def test_qstat_xml_has_running_and_held_jobs() -> None:
    jobs = parse_qstat_xml((OUT / "qstat_running_held.xml").read_text())
    assert set(jobs) == {"3", "4"}
    assert jobs["3"].name == "gantry-long" and jobs["3"].report.status is S.RUNNING
    held = jobs["4"].report
    assert held.status is S.SUBMITTED and held.raw == "hqw" and "held" in (held.reason or "")


def test_qstat_xml_lists_an_arrays_started_tasks_and_those_waiting() -> None:
    jobs = parse_qstat_xml((OUT / "qstat_array.xml").read_text())
    assert set(jobs) == {"18", "18.6"}
    assert jobs["18.6"].task == 6 and jobs["18.6"].report.status is S.RUNNING
    waiting = jobs["18"]
    assert waiting.task is None and waiting.pending == "8,10"  # queued 8, held 10


def test_accounting_lines_are_records_with_tasks_and_times() -> None:
    lines = (OUT / "accounting_lines.txt").read_text().splitlines()
    jobs = [parse_accounting_line(line) for line in lines]
    assert parse_accounting_line("# Version: 8.1.9") is None
    tasks = [j for j in jobs if j is not None and j.job_id == "10"]
    assert sorted(j.task or 0 for j in tasks) == [1, 3, 5, 7]
    report = tasks[0].report
    assert report.status is S.FAILED and report.exit_code == 1
    assert report.started_at == 1796689001 and report.ended_at == 1796689005
    assert report.accounting is not None and report.accounting.max_rss == 4748 * 1024
    deleted = next(j for j in jobs if j is not None and j.job_id == "11")
    assert deleted.task is None and deleted.report.status is S.CANCELLED


def test_qstat_garbage_is_an_error_not_an_empty_queue() -> None:
    with pytest.raises(ValueError, match="no XML"):
        parse_qstat_xml("error: commlib error")


@pytest.mark.parametrize(
    ("raw", "status"),
    [("qw", S.SUBMITTED), ("r", S.RUNNING), ("dr", S.RUNNING), ("Eqw", S.SUBMITTED),
     ("s", S.RUNNING), ("zz", S.UNKNOWN)],
)  # fmt: skip
def test_states(raw: str, status: BackendStatus) -> None:
    report = state_report(raw)
    assert report.status is status and report.raw == raw


def test_unknown_state_is_kept_raw() -> None:
    report = state_report("Xq")
    assert report.raw == "Xq" and "'Xq'" in (report.reason or "")


def test_qacct_exit_code_and_accounting() -> None:
    job = parse_qacct((OUT / "qacct_exit3.txt").read_text())["2"]
    report = job.report
    assert job.name == "gantry-t1"
    assert report.status is S.FAILED and report.exit_code == 3 and report.reason == "exited 3"
    assert report.accounting is not None
    assert report.accounting.cpu_user == pytest.approx(0.001)
    assert report.accounting.cpu_system == pytest.approx(0.005)
    assert report.accounting.max_rss == 4477 * 1024  # "4.477KB" is 4,477 KiB
    assert report.accounting.wall == 1


def test_qacct_of_a_qdel_is_cancelled() -> None:
    report = parse_qacct((OUT / "qacct_qdel.txt").read_text())["3"].report
    assert report.status is S.CANCELLED and report.exit_code is None


def test_qacct_h_rt_is_walltime() -> None:
    report = parse_qacct((OUT / "qacct_h_rt.txt").read_text())["18"].report
    assert report.status is S.FAILED and "walltime" in (report.reason or "")


def make_job(tmp_path: Path) -> JobSubmission:
    return JobSubmission(job_id=7, attempt=1, name="x", spec="echo hi", options={},
                         working_dir=tmp_path, env={}, stdout_path=tmp_path / "o",
                         stderr_path=tmp_path / "e")  # fmt: skip


def test_options_become_qsub_flags(tmp_path: Path) -> None:
    given = {"cores": "4", "memory": "2g", "walltime": "1:00:00", "queue": "gantry.q",
             "account": "lab", "parallel_env": "smp", "sge_args": "-l arch=lx-amd64"}  # fmt: skip
    options = normalise_options(given)
    argv = qsub_argv(make_job(tmp_path), options, ["11", "12"], "gantry-7-1")
    text = " ".join(argv)
    assert "-pe smp 4" in text and "-l h_vmem=512M" in text and "-l h_rt=3600" in text
    assert "-q gantry.q" in text and "-A lab" in text and "-l arch=lx-amd64" in text
    assert argv[-2:] == ["-hold_jid", "11,12"] and argv[:2] == ["qsub", "-terse"]


@pytest.mark.parametrize(
    ("options", "message"),
    [({"sge_args": "-N other"}, "sge_args may not set -N"),
     ({"queue": "a b"}, "queue 'a b' is not valid"),
     ({"memory": "lots"}, "memory 'lots'")],
)  # fmt: skip
def test_bad_options_name_the_option(options: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        normalise_options(options)


def run_script(script: str, ends: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, cwd=ends,
                          env={"PATH": "/usr/bin:/bin", **env}, check=False)  # fmt: skip


def test_a_dependent_runs_only_if_each_dependency_recorded_exit_0(tmp_path: Path) -> None:
    (tmp_path / "5").write_text("0\n")
    (tmp_path / "6").write_text("1\n")
    ran = run_script(job_script("echo ran", str(tmp_path), ["5"]), tmp_path, JOB_ID="7")
    assert ran.stdout == "ran\n" and (tmp_path / "7").read_text() == "0\n"
    skipped = run_script(job_script("echo ran", str(tmp_path), ["5", "6"]), tmp_path, JOB_ID="8")
    assert skipped.returncode == 97 and skipped.stdout == ""
    assert "SGE job 6) did not complete" in skipped.stderr and (tmp_path / "8.skipped").exists()
    assert job_script("#!/usr/bin/env python3\nprint(1)", "/d", []).startswith(
        "#!/usr/bin/env python3"
    )


def test_an_array_dependency_needs_every_task_to_record_exit_0(tmp_path: Path) -> None:
    (tmp_path / "9.count").write_text("3\n")
    for task in (1, 2):
        (tmp_path / f"9.{task}").write_text("0\n")
    script = job_script("echo ran", str(tmp_path), ["9"])
    assert run_script(script, tmp_path, JOB_ID="10").returncode == 97  # task 3 has not
    (tmp_path / "9.3").write_text("0\n")
    assert run_script(script, tmp_path, JOB_ID="11").stdout == "ran\n"


@pytest.mark.parametrize(
    ("text", "sge", "offset"),
    [("1-10", "1-10:1", 0), ("0-99%5", "1-100:1", 1), ("2-11:3", "2-11:3", 0),
     ("2-12:3", "2-11:3", 0), ("1,3,5", "1-5:2", 0), ("0,2,4", "1-5:2", 1), ("7", "7-7:1", 0)],
)  # fmt: skip
def test_gantry_arrays_become_one_sge_range(text: str, sge: str, offset: int) -> None:
    tasks = task_range(parse_array(text))
    assert (tasks.text, tasks.offset) == (sge, offset)


def test_an_array_that_is_no_single_range_is_refused_naming_sge() -> None:
    with pytest.raises(ValueError, match="backend 'sge' cannot run array '1-3,10'"):
        task_range(parse_array("1-3,10"))


def test_an_array_task_sees_its_index_and_an_offset_one_writes_its_own_logs(
    tmp_path: Path,
) -> None:
    array = parse_array("0-3%2")
    job = replace(make_job(tmp_path), array=array)
    tasks = task_range(array)
    argv = qsub_argv(job, {}, [], "gantry-7-1", tasks)
    assert argv[argv.index("-t") + 1] == "1-4:1" and argv[argv.index("-tc") + 1] == "2"
    assert argv[argv.index("-o") + 1] == "/dev/null"  # the script writes <id>_<index>
    script = job_script('echo "i=$GANTRY_ARRAY_INDEX"', str(tmp_path), [], tasks, job)
    run_script(script, tmp_path, JOB_ID="7", SGE_TASK_ID="3")
    assert (tmp_path / "o_2").read_text() == "i=2\n" and (tmp_path / "7.3").read_text() == "0\n"
    plain = replace(job, array=parse_array("1-3"))
    argv = qsub_argv(plain, {}, [], "gantry-7-1", task_range(plain.array))
    assert argv[argv.index("-o") + 1] == str(tmp_path / "o_$TASK_ID")  # SGE fills it in
    with pytest.raises(ValueError, match="array from index 0 needs a bash script"):
        job_script("#!/usr/bin/python3\n", "/d", [], tasks, job)


def test_normalised_options_normalise_to_themselves() -> None:
    once = normalise_options({"walltime": "0:0:1", "memory": "1g", "cores": 2})
    assert normalise_options(once) == once and once["walltime"] == "00:00:01"


def test_config_keys_are_read_and_bad_ones_named() -> None:
    settings = SgeSettings.from_config(
        {"poll_interval": "2", "submit_retries": "1", "accounting_file": "/x/acct", "queue": "a.q"}
    )
    assert (settings.poll_interval, settings.submit_retries) == (2.0, 1)
    assert settings.accounting_file == Path("/x/acct")
    assert settings.option_defaults["queue"] == "a.q"
    with pytest.raises(BackendError, match=r"backend.sge.poll_interval '0' .* float >= 0.01"):
        SgeSettings.from_config({"poll_interval": "0"})
    with pytest.raises(BackendError, match=r"backend.sge.submit_retries 'x' .* int >= 0"):
        SgeSettings.from_config({"submit_retries": "x"})
