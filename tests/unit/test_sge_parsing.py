"""The sge backend's parsing, on output captured from a real Grid Engine 8.1.9 cell
(tests/unit/sge_output/), and its qsub argv."""

from __future__ import annotations

from pathlib import Path

import pytest

from gantry.backends.base import BackendStatus, JobSubmission
from gantry.backends.sge.parsing import parse_qacct, parse_qstat_xml, state_report
from gantry.backends.sge.submission import job_script, normalise_options, qsub_argv

OUT = Path(__file__).parent / "sge_output"
S = BackendStatus


def test_qstat_xml_has_running_and_held_jobs() -> None:
    jobs = parse_qstat_xml((OUT / "qstat_running_held.xml").read_text())
    assert set(jobs) == {"3", "4"}
    assert jobs["3"].name == "gantry-long" and jobs["3"].report.status is S.RUNNING
    held = jobs["4"].report
    assert held.status is S.SUBMITTED and held.raw == "hqw" and "held" in (held.reason or "")


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


def job(tmp_path: Path) -> JobSubmission:
    return JobSubmission(job_id=7, attempt=1, name="x", spec="echo hi", options={},
                         working_dir=tmp_path, env={}, stdout_path=tmp_path / "o",
                         stderr_path=tmp_path / "e")  # fmt: skip


def test_options_become_qsub_flags(tmp_path: Path) -> None:
    given = {"cores": "4", "memory": "2g", "walltime": "1:00:00", "queue": "gantry.q",
             "account": "lab", "parallel_env": "smp", "sge_args": "-l arch=lx-amd64"}  # fmt: skip
    options = normalise_options(given)
    argv = qsub_argv(job(tmp_path), options, ["11", "12"], "gantry-7-1")
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


def test_a_dependent_script_checks_its_dependencies_ended_well() -> None:
    script = job_script("echo hi", "/d", ["5"])
    assert script.startswith("#!/bin/bash\n") and script.endswith("echo hi")
    assert (
        "/d/5" in script
        and "exit 97" in script
        and "trap 'echo $? > /d/\"$JOB_ID\"' EXIT" in script
    )
    assert job_script("#!/usr/bin/env python3\nprint(1)", "/d", []).startswith(
        "#!/usr/bin/env python3"
    )


def test_normalised_options_normalise_to_themselves() -> None:
    once = normalise_options({"walltime": "0:0:1", "memory": "1g", "cores": 2})
    assert normalise_options(once) == once and once["walltime"] == "00:00:01"
