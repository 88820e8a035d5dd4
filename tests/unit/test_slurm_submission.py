"""Options, sbatch argv, script and environment (gantry.backends.slurm.submission)."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import pytest

from gantry.backends.base import JobSubmission
from gantry.backends.slurm.submission import (
    OPTION_DEFAULTS,
    batch_script,
    check_directives,
    check_slurm_args,
    normalise_options,
    sbatch_argv,
    sbatch_environment,
)

EVIL = "x; rm -rf / #$(id)`id`'\"\n"


def job(**options: Any) -> JobSubmission:
    return JobSubmission(
        job_id=7, attempt=2, name=EVIL, spec="echo hi", options=options,
        working_dir=Path("/work dir/$(id)"), env={},
        stdout_path=Path("/logs/7.2.stdout"), stderr_path=Path("/logs/7.2.stderr"),
    )  # fmt: skip


def test_option_defaults_cover_gwfs_slurm_options() -> None:
    assert OPTION_DEFAULTS["cores"] == 1
    assert set(OPTION_DEFAULTS) == {
        "cores", "memory", "walltime", "nodes", "queue", "account", "constraint", "qos",
        "mail_type", "mail_user", "gres", "slurm_args",
    }  # fmt: skip
    assert all(v is None for k, v in OPTION_DEFAULTS.items() if k != "cores")


def test_normalise_options() -> None:
    out = normalise_options(
        {"cores": "4", "memory": "4g", "walltime": "1-02:03:04", "nodes": "2", "queue": " short ",
         "mail_type": "end, fail", "slurm_args": "--exclusive  --nice=5", "account": None,
         "other": "kept"}
    )  # fmt: skip
    assert out == {
        "cores": 4, "memory": "4096M", "walltime": "1-02:03:04", "nodes": 2, "queue": "short",
        "mail_type": "END,FAIL", "slurm_args": "--exclusive --nice=5", "account": None,
        "other": "kept",
    }  # fmt: skip
    assert normalise_options(out) == out  # idempotent: the engine may validate twice


@pytest.mark.parametrize(
    ("options", "names"),
    [
        ({"cores": 0}, "cores"),
        ({"cores": "many"}, "cores"),
        ({"memory": "lots"}, "memory"),
        ({"walltime": "1:99:00"}, "walltime"),
        ({"walltime": "0"}, "walltime"),
        ({"nodes": 0}, "nodes"),
        ({"nodes": True}, "nodes"),
        ({"queue": "two words"}, "queue"),
        ({"account": ""}, "account"),
        ({"qos": "a\nb"}, "qos"),
        ({"mail_type": "SOMETIMES"}, "mail_type"),
        ({"slurm_args": "--comment='open"}, "slurm_args"),
        ({"slurm_args": 5}, "slurm_args"),
    ],
)
def test_bad_option_values_name_the_option(options: dict[str, Any], names: str) -> None:
    with pytest.raises(ValueError, match=names):
        normalise_options(options)


@pytest.mark.parametrize(
    "args",
    ["--job-name=x", "--job=x", "-J x", "-vJx", "--output /tmp/x", "-o/tmp/x", "--array=1-3",
     "-a 1-3", "--dependency=afterok:1", "--wait", "-W", "--wrap=true", "--export=ALL",
     "--chdir=/", "-D /", "--clusters=other", "-M other", "--parsable", "--test-only"],
)  # fmt: skip
def test_slurm_args_may_not_take_over_what_gantry_sets(args: str) -> None:
    with pytest.raises(ValueError, match="gantry sets it"):
        check_slurm_args(shlex.split(args))


@pytest.mark.parametrize("args", ["script.sh", "--exclusive extra", "-p debug extra"])
def test_slurm_args_refuse_positional_arguments(args: str) -> None:
    with pytest.raises(ValueError, match="not an option"):
        check_slurm_args(shlex.split(args))


@pytest.mark.parametrize(
    "args",
    ["--exclusive", "--nice=10", "-p debug", "--partition debug", "-pdebug", "--hold -H",
     "--exclude=node1 --comment 'two words'", "-N 1 -n 2", "--exclusive=user", "-vv"],
)  # fmt: skip
def test_slurm_args_accept_ordinary_options(args: str) -> None:
    check_slurm_args(shlex.split(args))


def test_argv_keeps_every_user_string_in_one_item() -> None:
    options = normalise_options(
        {"cores": 2, "memory": "1g", "walltime": "10", "nodes": 1, "queue": "q$(id)",
         "account": "acc;rm", "constraint": "a&b", "qos": "`id`", "mail_type": "ALL",
         "mail_user": "me@x", "gres": "gpu:1", "slurm_args": "--comment='a b; c'"}
    )  # fmt: skip
    argv = sbatch_argv(job(), options, ["11", "12"], "gantry-7.2")
    assert argv[:2] == ["sbatch", "--parsable"]
    for item in [
        "--job-name=gantry-7.2", "--output=/logs/7.2.stdout", "--error=/logs/7.2.stderr",
        "--chdir=/work dir/$(id)", "--export=ALL", "--cpus-per-task=2", "--mem=1024M",
        "--time=00:10:00", "--nodes=1", "--partition=q$(id)", "--account=acc;rm",
        "--constraint=a&b", "--qos=`id`", "--mail-type=ALL", "--mail-user=me@x",
        "--gres=gpu:1", "--dependency=afterok:11:12", "--comment=a b; c",
    ]:  # fmt: skip
        assert item in argv
    assert EVIL not in " ".join(argv)  # the job's name never reaches Slurm


def test_argv_leaves_out_unset_options_and_empty_dependencies() -> None:
    argv = sbatch_argv(job(), normalise_options({"cores": None}), [], "gantry-7.2")
    assert not [a for a in argv if a.startswith(("--dependency", "--cpus", "--mem", "--time"))]


def test_log_paths_with_percent_are_refused() -> None:
    bad = JobSubmission(1, 1, "n", "true", {}, Path("/"), {}, stdout_path=Path("/l/%j.out"))
    with pytest.raises(ValueError, match="%"):
        sbatch_argv(bad, {}, [], "gantry-1.1")


def test_batch_script_adds_a_shebang_only_when_missing() -> None:
    assert batch_script("echo hi\n") == "#!/bin/bash\necho hi\n"
    spec = "#!/usr/bin/env python3\nprint('hi')\n"
    assert batch_script(spec) == spec


def test_environment_is_the_jobs_own_plus_what_sbatch_needs() -> None:
    env = sbatch_environment({"A": EVIL, "PATH": "/bin"}, {"SLURM_CONF": "/etc/slurm.conf"})
    assert env == {"A": EVIL, "PATH": "/bin", "SLURM_CONF": "/etc/slurm.conf"}


@pytest.mark.parametrize("env", [{"SBATCH_ARRAY_INX": "1-3"}, {"A=B": "x"}, {"A": "a\0b"}])
def test_environment_refuses_what_would_steer_or_break_sbatch(env: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        sbatch_environment(env, {})


@pytest.mark.parametrize(
    "spec",
    ["#SBATCH --array=1-3\ntrue", "#!/bin/bash\n\n#SBATCH -a 1-3\ntrue",
     "#!/bin/sh\n#SBATCH --cpus-per-task=2 --clusters=other\ntrue", "#SBATCH -W\ntrue"],
)  # fmt: skip
def test_spec_directives_that_break_tracking_are_refused(spec: str) -> None:
    with pytest.raises(ValueError, match="not supported"):
        check_directives(spec)


@pytest.mark.parametrize(
    "spec",
    ["#!/bin/bash\n#SBATCH --job-name=mine --mem=1g\n# a comment\ntrue",
     "true\n#SBATCH --array=1-3", "#!/bin/bash\necho '#SBATCH --array=1-3'",
     "#SBATCH --comment='two words'  # trailing\ntrue"],
)  # fmt: skip
def test_other_directives_and_later_lines_are_left_alone(spec: str) -> None:
    check_directives(spec)
