"""SlurmBackend against fake sbatch/squeue/sacct/scancel/sinfo put on PATH.

Each fake is a small Python script that records how it was called (argv,
stdin, environment) and answers from a queue of canned responses, so the
parsing, retry and error paths run without a cluster (as psij-python does).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio
import pytest

from gantry.backends.base import (
    Accounting,
    ArraySpec,
    BackendContext,
    BackendError,
    BackendStatus,
    JobSubmission,
    StatusReport,
)
from gantry.backends.slurm import SlurmBackend
from gantry.backends.slurm.commands import NOT_FOUND_HINT

COMMANDS = ("sbatch", "squeue", "sacct", "scancel", "sinfo")

FAKE = """\
#!{python} -S
import fcntl, json, os, pathlib, sys, time
root = pathlib.Path(__file__).resolve().parent
name = pathlib.Path(sys.argv[0]).name
stdin = sys.stdin.read() if not sys.stdin.isatty() else ""
with open(root / "lock", "w") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    with open(root / "calls.jsonl", "a") as calls:
        calls.write(json.dumps({{"cmd": name, "argv": sys.argv[1:], "stdin": stdin,
                                "env": dict(os.environ)}}) + "\\n")
    queue_file = root / (name + ".json")
    queue = json.loads(queue_file.read_text()) if queue_file.exists() else []
    answer = queue.pop(0) if len(queue) > 1 else (queue[0] if queue else {{}})
    queue_file.write_text(json.dumps(queue))
time.sleep(answer.get("sleep", 0))
sys.stdout.write(answer.get("stdout", ""))
sys.stderr.write(answer.get("stderr", ""))
sys.exit(answer.get("rc", 0))
"""


class FakeSlurm:
    """A directory of fake Slurm commands; ``answer`` queues their responses."""

    def __init__(self, root: Path) -> None:
        self.root = root
        for name in COMMANDS:
            path = root / name
            path.write_text(FAKE.format(python=sys.executable))
            path.chmod(0o755)

    def answer(self, command: str, *answers: dict[str, Any]) -> None:
        """Queue answers; the last one keeps being given."""
        (self.root / f"{command}.json").write_text(json.dumps(list(answers)))

    def calls(self, command: str | None = None) -> list[dict[str, Any]]:
        path = self.root / "calls.jsonl"
        lines = path.read_text().splitlines() if path.exists() else []
        found = [json.loads(line) for line in lines]
        return [c for c in found if command is None or c["cmd"] == command]


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSlurm]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("GANTRY_SERVER_SECRET", "must-not-leak")
    yield FakeSlurm(bin_dir)


class Reports:
    """The reporter handed to the backend: every report, in order."""

    def __init__(self) -> None:
        self.items: list[tuple[str, StatusReport]] = []

    def __call__(self, ref: str, report: StatusReport) -> None:
        self.items.append((ref, report))

    def of(self, ref: str) -> list[BackendStatus]:
        return [r.status for f, r in self.items if f == ref]

    async def wait_final(self, ref: str, seconds: float = 5.0) -> StatusReport:
        with anyio.fail_after(seconds):
            while True:
                for f, r in self.items:
                    if f == ref and (r.status.is_final or r.status is BackendStatus.UNKNOWN):
                        return r
                await anyio.sleep(0.02)


def error(command: str, message: str) -> dict[str, Any]:
    """A failing answer, worded as Slurm's commands word them."""
    return {"rc": 1, "stderr": f"{command}: error: {message}\n"}


async def eventually(predicate: Callable[[], bool], seconds: float = 5.0) -> None:
    with anyio.fail_after(seconds):
        while True:
            if predicate():
                return
            await anyio.sleep(0.02)


def make_backend(tmp_path: Path, reports: Reports | None = None, **config: str) -> SlurmBackend:
    context = BackendContext("slurm", tmp_path / "data", config, reports or Reports())
    return SlurmBackend(context)


def job(tmp_path: Path, job_id: int = 5, **options: Any) -> JobSubmission:
    return JobSubmission(
        job_id=job_id, attempt=1, name="my job; rm -rf /", spec="echo hi\n", options=options,
        working_dir=tmp_path, env={"PATH": "/usr/bin:/bin", "GREETING": "it's $(id)"},
        stdout_path=tmp_path / "data" / "logs" / f"{job_id}.stdout",
        stderr_path=tmp_path / "data" / "logs" / f"{job_id}.stderr",
    )  # fmt: skip


@asynccontextmanager
async def running(backend: SlurmBackend) -> AsyncIterator[None]:
    async with anyio.create_task_group() as tg:
        await tg.start(backend.run)
        yield
        tg.cancel_scope.cancel()


# --- submit ---------------------------------------------------------------------------


async def test_submit_runs_sbatch_with_argv_stdin_and_the_jobs_env_only(
    fake: FakeSlurm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    commands: list[object] = []
    real_run_process = anyio.run_process

    async def spy(command: Any, **kwargs: Any) -> Any:
        commands.append(command)
        return await real_run_process(command, **kwargs)

    monkeypatch.setattr(anyio, "run_process", spy)
    fake.answer("sbatch", {"stdout": "4242\n"})
    backend = make_backend(tmp_path, account="lab", queue="short")
    ref = await backend.submit(job(tmp_path, cores=2, walltime="1:00:00"), ["17", "18"])

    assert ref == "4242"
    assert all(isinstance(c, tuple) for c in commands)  # argv, never a shell string
    (call,) = fake.calls("sbatch")
    assert call["stdin"] == "#!/bin/bash\necho hi\n"
    argv = call["argv"]
    for item in ["--parsable", "--job-name=gantry-5.1", "--export=ALL", "--cpus-per-task=2",
                 "--time=01:00:00", "--account=lab", "--partition=short",
                 "--dependency=afterok:17:18", f"--chdir={tmp_path}",
                 f"--output={tmp_path}/data/logs/5.stdout",
                 f"--error={tmp_path}/data/logs/5.stderr"]:  # fmt: skip
        assert item in argv
    assert not [a for a in argv if "my job" in a]
    env = call["env"]
    assert env["GREETING"] == "it's $(id)"  # verbatim: no shell saw it
    assert "GANTRY_SERVER_SECRET" not in env  # the server's environment stays out
    assert (tmp_path / "data" / "logs").is_dir()  # Slurm needs the directory to exist


async def test_job_options_override_config_defaults(fake: FakeSlurm, tmp_path: Path) -> None:
    fake.answer("sbatch", {"stdout": "1\n"})
    backend = make_backend(tmp_path, account="lab", memory="2g")
    await backend.submit(job(tmp_path, account="other", memory=None), [])
    argv = fake.calls("sbatch")[0]["argv"]
    assert "--account=other" in argv and "--mem=2048M" in argv


async def test_multi_cluster_parsable_output(fake: FakeSlurm, tmp_path: Path) -> None:
    fake.answer("sbatch", {"stdout": "99;cluster2\n"})
    assert await make_backend(tmp_path).submit(job(tmp_path), []) == "99"


async def test_rejected_submission_is_a_backend_error_with_slurms_words(
    fake: FakeSlurm, tmp_path: Path
) -> None:
    fake.answer("sbatch", {"rc": 1, "stderr": (
        "sbatch: error: invalid partition specified: nosuch\n"
        "sbatch: error: Batch job submission failed: Invalid partition name specified\n"
    )})  # fmt: skip
    with pytest.raises(BackendError, match="invalid partition specified: nosuch") as info:
        await make_backend(tmp_path, retry_delay="0.01").submit(job(tmp_path), [])
    assert "sbatch: error" not in str(info.value)
    assert len(fake.calls("sbatch")) == 1  # not retried


async def test_transient_errors_are_retried_with_backoff(fake: FakeSlurm, tmp_path: Path) -> None:
    busy = error("sbatch", "Batch job submission failed: Socket timed out on send/recv operation")
    fake.answer("sbatch", busy, busy, {"stdout": "77\n"})
    fake.answer("squeue", {"stdout": ""})  # the failed calls did not submit
    backend = make_backend(tmp_path, retry_delay="0.2", submit_retries="3")
    started = time.monotonic()
    assert await backend.submit(job(tmp_path), []) == "77"
    assert time.monotonic() - started >= 0.2 + 0.4  # 0.2 s, then twice that
    assert len(fake.calls("sbatch")) == 3
    lookups = fake.calls("squeue")
    assert len(lookups) == 2 and "--name=gantry-5.1" in lookups[0]["argv"]


async def test_a_retry_finds_the_job_a_failed_call_submitted(
    fake: FakeSlurm, tmp_path: Path
) -> None:
    fake.answer("sbatch", error("sbatch", "Resource temporarily unavailable"))
    fake.answer("squeue", {"stdout": "31|31|N/A|PENDING|0|None|N/A|NONE|gantry-5.1|\n"})
    backend = make_backend(tmp_path, retry_delay="0.01")
    assert await backend.submit(job(tmp_path), []) == "31"
    assert len(fake.calls("sbatch")) == 1  # no second copy of the job


async def test_retries_give_up_with_the_reason(fake: FakeSlurm, tmp_path: Path) -> None:
    fake.answer("sbatch", error("sbatch", "Socket timed out on send/recv operation"))
    backend = make_backend(tmp_path, retry_delay="0.01", submit_retries="2")
    with pytest.raises(BackendError, match=r"sbatch failed 3 times: Socket timed out"):
        await backend.submit(job(tmp_path), [])
    assert len(fake.calls("sbatch")) == 3


async def test_a_hanging_sbatch_times_out_and_is_retried(fake: FakeSlurm, tmp_path: Path) -> None:
    fake.answer("sbatch", {"sleep": 5}, {"stdout": "12\n"})
    backend = make_backend(tmp_path, retry_delay="0.01", command_timeout="0.5")
    started = time.monotonic()
    assert await backend.submit(job(tmp_path), []) == "12"
    assert time.monotonic() - started < 4  # the hanging sbatch was killed, not waited for


async def test_missing_slurm_says_how_to_get_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    backend = make_backend(tmp_path)
    with pytest.raises(BackendError) as info:
        await backend.submit(job(tmp_path), [])
    assert str(info.value) == f"sbatch not found: {NOT_FOUND_HINT}"
    assert NOT_FOUND_HINT == "install Slurm or start the test cluster with scripts/slurm/start.sh"
    ok, why = await backend.health()
    assert not ok and why.startswith("sinfo not found")


@pytest.mark.parametrize("ref", ["--all", "1;2", "", "12 13"])
async def test_refs_that_are_not_job_ids_never_reach_a_command(
    fake: FakeSlurm, tmp_path: Path, ref: str
) -> None:
    backend = make_backend(tmp_path)
    with pytest.raises(BackendError, match="not a Slurm job id"):
        await backend.cancel(ref)
    with pytest.raises(BackendError, match="not a Slurm job id"):
        await backend.submit(job(tmp_path), [ref])
    assert fake.calls() == []


async def test_bad_spec_or_env_fails_before_sbatch(fake: FakeSlurm, tmp_path: Path) -> None:
    bad = JobSubmission(1, 1, "n", "true", {}, tmp_path, {"SBATCH_ARRAY_INX": "1-9"})
    with pytest.raises(BackendError, match="SBATCH_ARRAY_INX"):
        await make_backend(tmp_path).submit(bad, [])
    assert fake.calls() == []


def test_bad_config_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(BackendError, match=r"backend\.slurm\.poll_interval"):
        make_backend(tmp_path, poll_interval="soon")
    with pytest.raises(BackendError, match="walltime"):
        make_backend(tmp_path, walltime="forever")
    with pytest.raises(BackendError, match="job_name_prefix"):
        make_backend(tmp_path, job_name_prefix="a b")


def test_validate_options_raises_value_error(tmp_path: Path) -> None:
    backend = make_backend(tmp_path)
    assert backend.validate_options({"memory": "1g"}) == {"memory": "1024M"}
    with pytest.raises(ValueError, match="memory"):
        backend.validate_options({"memory": "much"})


# --- status and polling ---------------------------------------------------------------


async def test_status_asks_squeue_then_sacct_for_the_rest(fake: FakeSlurm, tmp_path: Path) -> None:
    fake.answer("squeue", {"stdout": "10|10|N/A|RUNNING|0|None|1700000000|NONE|gantry-1.1|\n"})
    fake.answer("sacct", {"stdout": (
        "11|COMPLETED|0:0|None|1700000000|1700000005|||||gantry-2.1\n"
        "11.batch|COMPLETED|0:0||1700000000|1700000005|||||batch\n")})  # fmt: skip
    got = await make_backend(tmp_path).status(["10", "11", "12"])
    assert got["10"].status is BackendStatus.RUNNING
    assert (got["11"].status, got["11"].exit_code, got["11"].ended_at) == (
        BackendStatus.COMPLETED, 0, 1700000005.0
    )  # fmt: skip
    assert got["12"].status is BackendStatus.UNKNOWN
    assert "--jobs=10,11,12" in fake.calls("squeue")[0]["argv"]
    assert "--jobs=11,12" in fake.calls("sacct")[0]["argv"]
    assert fake.calls("squeue")[0]["env"]["SLURM_TIME_FORMAT"] == "%s"


async def test_squeue_invalid_job_id_means_gone(fake: FakeSlurm, tmp_path: Path) -> None:
    fake.answer("squeue", {"rc": 1, "stderr": "slurm_load_jobs error: Invalid job id specified\n"})
    fake.answer("sacct", {"stdout": "3|TIMEOUT|0:0|None|1|61|||||gantry-3.1\n"})
    got = await make_backend(tmp_path).status(["3"])
    assert (got["3"].status, got["3"].reason) == (BackendStatus.FAILED, "walltime exceeded")


async def test_poller_reports_each_change_once_and_stops_at_the_end(
    fake: FakeSlurm, tmp_path: Path
) -> None:
    fake.answer("sbatch", {"stdout": "50\n"})
    fake.answer(
        "squeue",
        {"stdout": "50|50|N/A|PENDING|0|Priority|N/A|NONE|gantry-5.1|\n"},
        {"stdout": "50|50|N/A|RUNNING|0|None|1700000000|NONE|gantry-5.1|\n"},
        {"stdout": "50|50|N/A|RUNNING|0|None|1700000000|NONE|gantry-5.1|\n"},
        {"stdout": "50|50|N/A|FAILED|768|NonZeroExitCode|1700000000|1700000002|gantry-5.1|\n"},
    )
    reports = Reports()
    backend = make_backend(tmp_path, reports, fast_poll_interval="0.05", poll_interval="0.05")
    async with running(backend):
        ref = await backend.submit(job(tmp_path), [])
        final = await reports.wait_final(ref)
        await anyio.sleep(0.3)  # no more polls for an ended job
    assert reports.of(ref) == [BackendStatus.RUNNING, BackendStatus.FAILED]
    assert (final.exit_code, final.reason, final.raw) == (3, "exited 3", "FAILED")
    assert len(fake.calls("squeue")) == 4
    # asked once about the end (for its accounting); it knew nothing, so no wait
    assert len(fake.calls("sacct")) == 1


async def test_unknown_state_is_reported_as_unknown_with_raw(
    fake: FakeSlurm, tmp_path: Path
) -> None:
    fake.answer("squeue", {"stdout": "60|60|N/A|TELEPORTED|0|None|N/A|NONE|gantry-5.1|\n"})
    reports = Reports()
    backend = make_backend(tmp_path, reports, poll_interval="0.05")
    async with running(backend):
        await backend.adopt(job(tmp_path), "60")
        report = await reports.wait_final("60")
    assert (report.status, report.raw) == (BackendStatus.UNKNOWN, "TELEPORTED")


async def test_many_tracked_jobs_cost_at_most_two_commands_per_cycle(
    fake: FakeSlurm, tmp_path: Path
) -> None:
    refs = [str(i) for i in range(1000, 2000)]
    running_lines = "".join(
        f"{r}|{r}|N/A|RUNNING|0|None|1|NONE|gantry-{r}.1|\n" for r in refs[:600]
    )
    fake.answer("squeue", {"stdout": running_lines})
    fake.answer(
        "sacct", {"stdout": "".join(f"{r}|COMPLETED|0:0|None|1|2|||||x\n" for r in refs[600:])}
    )
    reports = Reports()
    backend = make_backend(tmp_path, reports, poll_interval="0.05")
    async with running(backend):
        for ref in refs:
            await backend.adopt(job(tmp_path), ref)
        await eventually(lambda: backend.poll_stats.cycles >= 3)
    assert backend.poll_stats.max_commands_per_cycle == 2
    assert len(fake.calls("squeue")) >= 3
    (sacct,) = fake.calls("sacct")  # the finished 400 are reported and dropped
    assert "--jobs=" + ",".join(refs[600:]) in sacct["argv"]
    assert sum(1 for _, r in reports.items if r.status is BackendStatus.COMPLETED) == 400
    assert sum(1 for _, r in reports.items if r.status is BackendStatus.RUNNING) == 600


async def test_poller_survives_slurm_errors(
    fake: FakeSlurm, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fake.answer(
        "squeue",
        error("squeue", "Unable to contact slurm controller"),
        error("squeue", "Unable to contact slurm controller"),
        {"stdout": "70|70|N/A|COMPLETED|0|None|1|2|gantry-5.1|\n"},
    )
    reports = Reports()
    backend = make_backend(tmp_path, reports, poll_interval="0.05")
    async with running(backend):
        await backend.adopt(job(tmp_path), "70")
        report = await reports.wait_final("70")
    assert report.status is BackendStatus.COMPLETED
    warnings = [r for r in caplog.records if "polling Slurm failed" in r.getMessage()]
    assert len(warnings) == 1  # said once, not every cycle


async def test_a_job_nobody_knows_is_reported_unknown_then_dropped(
    fake: FakeSlurm, tmp_path: Path
) -> None:
    fake.answer("squeue", {"stdout": ""})
    fake.answer("sacct", {"stdout": ""})
    reports = Reports()
    backend = make_backend(tmp_path, reports, poll_interval="0.05", forget_after="0.2")
    async with running(backend):
        await backend.adopt(job(tmp_path), "80")
        report = await reports.wait_final("80")
        calls = len(fake.calls("squeue"))
        await anyio.sleep(0.2)
        assert len(fake.calls("squeue")) == calls  # dropped: no more polls
    assert report.status is BackendStatus.UNKNOWN and "80" in (report.reason or "")


async def test_poller_stops_when_cancelled_even_if_polls_run_back_to_back(
    fake: FakeSlurm, tmp_path: Path
) -> None:
    fake.answer("squeue", {"stdout": "95|95|N/A|RUNNING|0|None|1|NONE|gantry-5.1|\n", "sleep": 0.1})
    backend = make_backend(tmp_path, poll_interval="0.01")  # shorter than one squeue
    async with running(backend):
        await backend.adopt(job(tmp_path), "95")
        await eventually(lambda: backend.poll_stats.cycles >= 2)
    calls = len(fake.calls("squeue"))
    await anyio.sleep(0.5)
    assert len(fake.calls("squeue")) == calls  # the poller is gone
    assert calls <= 4


async def test_poller_sleeps_while_nothing_is_tracked(fake: FakeSlurm, tmp_path: Path) -> None:
    backend = make_backend(tmp_path, poll_interval="0.01")
    async with running(backend):
        await anyio.sleep(0.2)
    assert fake.calls() == [] and backend.poll_stats.cycles == 0


# --- cancel, lookup, health -----------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        {"rc": 0},
        error("scancel", "Kill job error on job id 5: Invalid job id specified"),
        error("scancel", "Kill job error on job id 5: Job/step already completing or completed"),
    ],
)
async def test_cancel_is_idempotent(
    fake: FakeSlurm, tmp_path: Path, answer: dict[str, Any]
) -> None:
    fake.answer("scancel", answer)
    await make_backend(tmp_path).cancel("5")
    assert fake.calls("scancel")[0]["argv"] == ["5"]


async def test_cancel_reports_real_failures(fake: FakeSlurm, tmp_path: Path) -> None:
    fake.answer("scancel", error("scancel", "Unable to contact slurm controller"))
    with pytest.raises(BackendError, match="scancel 5 failed: Unable to contact slurm controller"):
        await make_backend(tmp_path).cancel("5")


async def test_lookup_by_job_name_in_squeue_then_sacct(fake: FakeSlurm, tmp_path: Path) -> None:
    fake.answer("squeue", {"stdout": "20|20|N/A|RUNNING|0|None|1|NONE|gantry-1.1|\n"})
    fake.answer("sacct", {"stdout": (
        "15|FAILED|1:0|None|1|2|||||gantry-2.1\n"
        "18|COMPLETED|0:0|None|1|2|||||gantry-2.1\n"
        "18.batch|COMPLETED|0:0||1|2|||||batch\n")})  # fmt: skip
    found = await make_backend(tmp_path).lookup(["1.1", "2.1", "3.1"])
    assert found == {"1.1": "20", "2.1": "18"}  # the newest submission of a name
    assert "--name=gantry-1.1,gantry-2.1,gantry-3.1" in fake.calls("squeue")[0]["argv"]
    assert "--name=gantry-2.1,gantry-3.1" in fake.calls("sacct")[0]["argv"]


async def test_health(fake: FakeSlurm, tmp_path: Path) -> None:
    fake.answer("sinfo", {"stdout": "idle 1\nmixed 2\n"})
    assert await make_backend(tmp_path).health() == (True, "Slurm answers; nodes: 1 idle, 2 mixed")
    fake.answer("sinfo", error("sinfo", "Unable to contact slurm controller"))
    ok, why = await make_backend(tmp_path).health()
    assert not ok and "Unable to contact slurm controller" in why
    fake.answer("sinfo", {"sleep": 3})
    ok, why = await make_backend(tmp_path, command_timeout="0.3").health()
    assert not ok and "did not answer" in why


async def test_sacct_takes_turns_when_too_many_jobs_left_squeue(
    fake: FakeSlurm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("gantry.backends.slurm.backend.MAX_IDS_IN_ARGV", 3)
    refs = ["31", "32", "33", "34", "35"]
    fake.answer("squeue", {"stdout": ""})
    fake.answer("sacct", {"stdout": "".join(f"{r}|COMPLETED|0:0|None|1|2|||||x\n" for r in refs)})
    reports = Reports()
    backend = make_backend(tmp_path, reports)
    for ref in refs:
        await backend.adopt(job(tmp_path), ref)
    await backend.poll_once()
    await backend.poll_once()
    assert [c["argv"][-1] for c in fake.calls("sacct")] == ["--jobs=31,32,33", "--jobs=34,35"]
    assert sorted(ref for ref, _ in reports.items) == refs
    assert backend.poll_stats.max_commands_per_cycle == 2
    # status() on demand answers for every ref, in as many sacct calls as it takes.
    got = await backend.status(refs)
    assert all(got[r].status is BackendStatus.COMPLETED for r in refs)


async def test_a_bug_in_one_cycle_does_not_stop_the_poller(
    fake: FakeSlurm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.answer("squeue", {"stdout": "90|90|N/A|COMPLETED|0|None|1|2|gantry-5.1|\n"})
    reports = Reports()
    backend = make_backend(tmp_path, reports, poll_interval="0.05")
    real_take = backend._take
    calls = []

    def flaky_take(*args: Any) -> None:
        calls.append(args)
        if len(calls) == 1:
            raise KeyError("a bug")
        real_take(*args)

    monkeypatch.setattr(backend, "_take", flaky_take)
    async with running(backend):
        await backend.adopt(job(tmp_path), "90")
        report = await reports.wait_final("90")
    assert report.status is BackendStatus.COMPLETED and len(calls) == 2


async def test_a_cancelled_job_is_watched_until_it_ends(fake: FakeSlurm, tmp_path: Path) -> None:
    fake.answer("squeue", {"stdout": "91|91|N/A|CANCELLED|15|None|1|2|gantry-5.1|\n"})
    reports = Reports()
    backend = make_backend(tmp_path, reports, poll_interval="0.05")
    async with running(backend):
        await backend.cancel("91")  # e.g. found by lookup, never adopted
        report = await reports.wait_final("91")
    assert report.status is BackendStatus.CANCELLED


# --- accounting ------------------------------------------------------------------------

ENDED_IN_SQUEUE = {"stdout": "80|80|N/A|COMPLETED|0|None|1|2|gantry-8.1|\n"}
RUNNING_IN_SACCT = {"stdout": "80|RUNNING|0:0|None|1|Unknown|00:00:00|00:00:00||1|gantry-8.1\n"}
ENDED_IN_SACCT = {"stdout": (
    "80|COMPLETED|0:0|None|1|2|00:01.000|00:00.500||1|gantry-8.1\n"
    "80.batch|COMPLETED|0:0||1|2|00:01.000|00:00.500|2048K|1|batch\n")}  # fmt: skip


async def test_an_end_squeue_saw_waits_for_its_accounting_in_sacct(
    fake: FakeSlurm, tmp_path: Path
) -> None:
    fake.answer("squeue", ENDED_IN_SQUEUE)
    fake.answer("sacct", RUNNING_IN_SACCT, ENDED_IN_SACCT)
    reports = Reports()
    backend = make_backend(tmp_path, reports)
    await backend.adopt(job(tmp_path), "80")
    await backend.poll_once()
    assert reports.of("80") == []  # slurmdbd lags: not reported yet
    await backend.poll_once()
    ((_, final),) = reports.items
    assert final.status is BackendStatus.COMPLETED
    assert final.accounting == Accounting(1.0, 0.5, 2048 * 1024, 1.0)
    assert backend.poll_stats.max_commands_per_cycle == 2


async def test_an_end_is_reported_without_accounting_when_sacct_cannot_say(
    fake: FakeSlurm, tmp_path: Path
) -> None:
    fake.answer("squeue", ENDED_IN_SQUEUE)
    fake.answer("sacct", error("sacct", "Slurm accounting storage is disabled"))
    reports = Reports()
    backend = make_backend(tmp_path, reports)
    await backend.adopt(job(tmp_path), "80")
    await backend.poll_once()
    ((_, final),) = reports.items
    assert (final.status, final.accounting) == (BackendStatus.COMPLETED, None)
    # sacct that keeps lagging is waited for only accounting_wait seconds
    fake.answer("sacct", RUNNING_IN_SACCT)
    reports = Reports()
    backend = make_backend(tmp_path, reports, accounting_wait="0.05")
    await backend.adopt(job(tmp_path), "80")
    await backend.poll_once()
    assert reports.items == []
    await anyio.sleep(0.1)
    await backend.poll_once()
    assert [r.status for _, r in reports.items] == [BackendStatus.COMPLETED]


# --- arrays -----------------------------------------------------------------------------


async def test_an_array_is_one_sbatch_and_its_tasks_report_one_by_one(
    fake: FakeSlurm, tmp_path: Path
) -> None:
    fake.answer("sbatch", {"stdout": "90\n"})
    fake.answer(
        "squeue",
        {"stdout": "90|90|1-3|PENDING|0|None|N/A|N/A|g|\n91|90|0|RUNNING|0|None|5|NONE|g|\n"},
        {"stdout": "90|90|2-3|CANCELLED|0|None|N/A|9|g|\n"
                   "91|90|0|COMPLETED|0|None|5|8|g|\n92|90|1|CANCELLED|0|None|6|9|g|\n"},
    )  # fmt: skip
    reports = Reports()
    backend = make_backend(tmp_path, reports, accounting_wait="0.01")
    array = replace(job(tmp_path), spec="echo $GANTRY_ARRAY_INDEX",
                    array=ArraySpec("0-3", ((0, 3, 1),), None, 4))  # fmt: skip
    ref = await backend.submit(array, [])
    (sbatch,) = fake.calls("sbatch")
    assert "--array=0-3" in sbatch["argv"]
    assert any(a.startswith("--output=") and a.endswith("_%a.stdout") for a in sbatch["argv"])
    assert 'export GANTRY_ARRAY_INDEX="$SLURM_ARRAY_TASK_ID"' in sbatch["stdin"]
    await backend.poll_once()
    assert [(r.task, r.status) for _, r in reports.items] == [(0, BackendStatus.RUNNING)]
    await backend.poll_once()
    assert len(fake.calls("squeue")) == 2
    await anyio.sleep(0.05)
    await backend.poll_once()  # sacct knew nothing: ends are reported without accounting
    got = {r.task: r.status for _, r in reports.items}
    assert got == {0: BackendStatus.COMPLETED, 1: BackendStatus.CANCELLED,
                   2: BackendStatus.CANCELLED, 3: BackendStatus.CANCELLED}  # fmt: skip
    assert all(ref_ == ref for ref_, _ in reports.items)
    assert backend.poll_stats.max_commands_per_cycle <= 2
    await backend.cancel_task(ref, 2)
    assert fake.calls("scancel")[-1]["argv"] == ["90_2"]
