"""The local backend with real processes in a real data dir.

Each test runs backends inside its own task group; jobs write what they saw
(times, directories, environment) to files the test then reads. The only
timing in assertions is generous timeouts.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import os
import signal
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

import anyio
import pytest

from gantry.backends.base import (
    BackendContext,
    BackendError,
    BackendStatus,
    JobSubmission,
    StatusReport,
)
from gantry.backends.local import LocalBackend
from gantry.backends.local.process import (
    SUPERVISOR_NAME,
    PidfdUnsupported,
    find_shells,
    is_supervisor_of,
    spawn_supervisor,
)
from gantry.backends.local.rundir import SUPERVISOR_DIED, RunFiles

TIMEOUT = 15  # seconds; generous: the machine may be busy
S = BackendStatus


class Reports:
    """A reporter that keeps every report, per ref, for a test to wait on."""

    def __init__(self) -> None:
        self.by_ref: dict[str, list[StatusReport]] = defaultdict(list)

    def __call__(self, ref: str, report: StatusReport) -> None:
        self.by_ref[ref].append(report)

    def statuses(self, ref: str) -> list[BackendStatus]:
        return [report.status for report in self.by_ref[ref]]

    async def wait_for(self, ref: str, status: BackendStatus) -> StatusReport:
        with anyio.fail_after(TIMEOUT):
            while True:
                for report in self.by_ref[ref]:
                    if report.status is status:
                        return report
                await anyio.sleep(0.01)

    async def final(self, ref: str) -> StatusReport:
        with anyio.fail_after(TIMEOUT):
            while not any(r.status.is_final for r in self.by_ref[ref]):
                await anyio.sleep(0.01)
        finals = [report for report in self.by_ref[ref] if report.status.is_final]
        assert len(finals) == 1, f"more than one final report: {finals}"
        return finals[0]


class Start(Protocol):
    def __call__(self, reports: Reports, **config: object) -> Awaitable[LocalBackend]: ...


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def work(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


def make_backend(data_dir: Path, reports: Reports, **config: object) -> LocalBackend:
    settings = {"kill_grace": "0.5", **{key: str(value) for key, value in config.items()}}
    return LocalBackend(BackendContext("local", data_dir, settings, reports))


@pytest.fixture
async def start(data_dir: Path) -> AsyncIterator[Start]:
    """``await start(reports, max_cores=1)``: a running backend, closed after the test."""
    backends: list[LocalBackend] = []
    try:
        async with anyio.create_task_group() as tg:

            async def start(reports: Reports, **config: object) -> LocalBackend:
                backend = make_backend(data_dir, reports, **config)
                await tg.start(backend.run)
                backends.append(backend)
                return backend

            yield start
            for backend in backends:
                await backend.close()
    finally:
        kill_leftovers(data_dir)


def kill_leftovers(data_dir: Path) -> None:
    """End every job a test left running, and collect its supervisor."""
    for state in (data_dir / "runs").glob("*.state") if data_dir.exists() else []:
        first = state.read_text().split("\n")[0]
        if not first.isdigit():
            continue
        pid = int(first)
        if is_supervisor_of(pid, str(state)[: -len(".state")]):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)


def job(
    work: Path, job_id: int, spec: str, *, attempt: int = 1, priority: int = 0, **options: Any
) -> JobSubmission:
    logs = work.parent / "data" / "logs"
    return JobSubmission(
        job_id=job_id,
        attempt=attempt,
        name=f"job{job_id}",
        spec=spec,
        options=options,
        working_dir=work,
        env={"PATH": os.environ["PATH"], "WORK": str(work)},
        priority=priority,
        stdout_path=logs / f"{job_id}.stdout",
        stderr_path=logs / f"{job_id}.stderr",
    )


async def wait_until(check: Callable[[], bool]) -> None:
    with anyio.fail_after(TIMEOUT):
        while not check():
            await anyio.sleep(0.01)


def read(path: Path) -> str:
    return path.read_text() if path.exists() else ""


async def supervisor_pid(data_dir: Path, key: str) -> int:
    """The supervisor's pid, once it has recorded it (just after it starts)."""
    files = RunFiles(data_dir / "runs", key)
    await wait_until(lambda: files.read_state() is not None)
    state = files.read_state()
    assert state is not None
    return state.pid


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


# -- running jobs ---------------------------------------------------------


async def test_a_job_that_succeeds(start: Start, work: Path, data_dir: Path) -> None:
    reports = Reports()
    backend = await start(reports)
    submitted = job(work, 1, "echo hello\necho to-stderr >&2\n")
    ref = await backend.submit(submitted, [])
    assert ref == "1.1"
    report = await reports.final(ref)
    assert report.status is S.COMPLETED and report.exit_code == 0
    assert reports.statuses(ref) == [S.SUBMITTED, S.RUNNING, S.COMPLETED]
    running = reports.by_ref[ref][1]
    assert running.started_at is not None and report.ended_at is not None
    assert report.started_at == running.started_at <= report.ended_at
    assert read(submitted.stdout_path) == "hello\n"
    assert read(submitted.stderr_path) == "to-stderr\n"
    assert (await backend.status([ref]))[ref].status is S.COMPLETED


async def test_a_non_zero_exit_is_failed_with_its_code(start: Start, work: Path) -> None:
    reports = Reports()
    backend = await start(reports)
    ref = await backend.submit(job(work, 1, "exit 3\n"), [])
    report = await reports.final(ref)
    assert report.status is S.FAILED and report.exit_code == 3
    assert (await backend.status([ref]))[ref].exit_code == 3


async def test_logs_are_written_while_the_job_runs_and_appended(start: Start, work: Path) -> None:
    reports = Reports()
    backend = await start(reports)
    spec = "echo first\necho oops >&2\nwhile [ ! -e release ]; do sleep 0.02; done\necho second\n"
    submitted = job(work, 1, spec)
    submitted.stdout_path.parent.mkdir(parents=True)
    submitted.stdout_path.write_text("earlier\n")
    ref = await backend.submit(submitted, [])
    await wait_until(lambda: "first" in read(submitted.stdout_path))
    await wait_until(lambda: "oops" in read(submitted.stderr_path))
    assert (await backend.status([ref]))[ref].status is S.RUNNING
    (work / "release").touch()
    assert (await reports.final(ref)).status is S.COMPLETED
    assert read(submitted.stdout_path) == "earlier\nfirst\nsecond\n"


async def test_working_dir_and_env_are_the_jobs_own(
    start: Start, work: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GANTRY_SERVER_ONLY", "leaks")
    reports = Reports()
    backend = await start(reports)
    inner = work / "inner"
    inner.mkdir()
    submitted = JobSubmission(
        job_id=7,
        attempt=2,
        name="env",
        spec='pwd\nprintf "%s\\n" "$FOO"\nenv > env.txt\n',
        options={},
        working_dir=inner,
        env={"PATH": os.environ["PATH"], "FOO": "bar baz"},
        stdout_path=tmp_path / "new" / "dirs" / "out",
        stderr_path=tmp_path / "new" / "other" / "err",
    )
    ref = await backend.submit(submitted, [])
    assert ref == "7.2"
    assert (await reports.final(ref)).status is S.COMPLETED
    assert read(submitted.stdout_path) == f"{inner}\nbar baz\n"
    assert submitted.stderr_path.exists()
    env = read(inner / "env.txt")
    assert "FOO=bar baz" in env
    assert "GANTRY_SERVER_ONLY" not in env


async def test_signals_the_server_ignores_are_default_again_for_the_job(
    start: Start, work: Path
) -> None:
    # Python ignores SIGPIPE; a job's `yes | head` must end `yes` by SIGPIPE (141).
    reports = Reports()
    backend = await start(reports)
    submitted = job(work, 1, 'yes | head -c 1 >/dev/null; echo "${PIPESTATUS[0]}"\n')
    await backend.submit(submitted, [])
    assert (await reports.final("1.1")).status is S.COMPLETED
    assert read(submitted.stdout_path) == "141\n"
    assert read(submitted.stderr_path) == ""


async def test_processes_a_job_leaves_behind_are_ended(start: Start, work: Path) -> None:
    reports = Reports()
    backend = await start(reports)
    ref = await backend.submit(job(work, 1, "sleep 30 &\necho $! > bg\n"), [])
    assert (await reports.final(ref)).status is S.COMPLETED
    background = int(read(work / "bg"))
    await wait_until(lambda: not Path(f"/proc/{background}").exists() or _zombie(background))


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


async def test_a_missing_working_dir_fails_the_job(start: Start, work: Path) -> None:
    reports = Reports()
    backend = await start(reports)
    submitted = job(work / "nope", 1, "true\n")
    await backend.submit(submitted, [])
    report = await reports.final("1.1")
    assert report.status is S.FAILED
    assert report.reason is not None and "nope does not exist" in report.reason


async def test_submitting_the_same_key_twice_runs_it_once(start: Start, work: Path) -> None:
    reports = Reports()
    backend = await start(reports)
    submitted = job(work, 1, "echo run >> runs\nsleep 0.2\n")
    assert await backend.submit(submitted, []) == await backend.submit(submitted, [])
    await reports.final("1.1")
    assert read(work / "runs") == "run\n"
    assert reports.statuses("1.1").count(S.RUNNING) == 1


async def test_submit_rejects_jobs_that_can_never_fit(start: Start, work: Path) -> None:
    backend = await start(Reports(), max_cores=2)
    with pytest.raises(BackendError, match="backend.local.max_cores"):
        await backend.submit(job(work, 1, "true\n", cores=3), [])


async def test_health(start: Start) -> None:
    backend = await start(Reports(), max_cores=3)
    healthy, why = await backend.health()
    assert healthy and "0/3 cores" in why
    await backend.close()
    assert not (await backend.health())[0]


async def test_a_closed_backend_takes_no_jobs(start: Start, work: Path) -> None:
    backend = await start(Reports())
    await backend.close()
    with pytest.raises(BackendError, match="closed"):
        await backend.submit(job(work, 1, "true\n"), [])


# -- resources and order --------------------------------------------------

TIMED = """echo "$JOB start $EPOCHREALTIME" >> "$WORK/times"
sleep 0.3
echo "$JOB end $EPOCHREALTIME" >> "$WORK/times"
"""


def intervals(work: Path) -> list[tuple[float, float]]:
    seen: dict[str, dict[str, float]] = defaultdict(dict)
    for line in read(work / "times").splitlines():
        name, edge, when = line.split()
        seen[name][edge] = float(when.replace(",", "."))
    return sorted((times["start"], times["end"]) for times in seen.values())


def named_job(work: Path, job_id: int, spec: str, **options: Any) -> JobSubmission:
    """A job that knows its own id as $JOB."""
    submitted = job(work, job_id, spec, **options)
    return dataclasses.replace(submitted, env={**submitted.env, "JOB": str(job_id)})


def assert_one_at_a_time(work: Path, jobs: int) -> None:
    spans = intervals(work)
    assert len(spans) == jobs
    for (_, end), (next_start, _) in itertools.pairwise(spans):
        assert end <= next_start, f"jobs overlapped: {spans}"


async def test_one_core_runs_one_job_at_a_time(start: Start, work: Path) -> None:
    reports = Reports()
    backend = await start(reports, max_cores=1)
    refs = [await backend.submit(named_job(work, job_id, TIMED), []) for job_id in (1, 2, 3)]
    # submit() returned at once: only one job could have started.
    assert sum(S.RUNNING in reports.statuses(ref) for ref in refs) <= 1
    for ref in refs:
        assert (await reports.final(ref)).status is S.COMPLETED
    assert_one_at_a_time(work, 3)


async def test_memory_is_a_limit_too(start: Start, work: Path) -> None:
    reports = Reports()
    backend = await start(reports, max_cores=4, max_memory="1g")
    refs = [await backend.submit(named_job(work, i, TIMED, memory="600m"), []) for i in (1, 2)]
    for ref in refs:
        assert (await reports.final(ref)).status is S.COMPLETED
    assert_one_at_a_time(work, 2)


async def test_jobs_that_fit_together_run_together(start: Start, work: Path) -> None:
    reports = Reports()
    backend = await start(reports, max_cores=2)
    gate = """touch "$WORK/in.$JOB"
while [ ! -e "$WORK/in.1" ] || [ ! -e "$WORK/in.2" ]; do sleep 0.02; done
"""
    for job_id in (1, 2):
        await backend.submit(named_job(work, job_id, gate), [])
    # Each job waits for the other to have started: both must run at once.
    assert (await reports.final("1.1")).status is S.COMPLETED
    assert (await reports.final("2.1")).status is S.COMPLETED


async def test_higher_priority_starts_first_then_lower_job_id(start: Start, work: Path) -> None:
    reports = Reports()
    backend = await start(reports, max_cores=1)
    await backend.submit(job(work, 1, 'while [ ! -e "$WORK/release" ]; do sleep 0.02; done\n'), [])
    await reports.wait_for("1.1", S.RUNNING)
    for job_id, priority in [(2, 0), (4, 5), (3, 5), (5, -1)]:
        await backend.submit(job(work, job_id, f"echo {job_id} >> order\n", priority=priority), [])
    (work / "release").touch()
    for ref in ("2.1", "3.1", "4.1", "5.1"):
        await reports.final(ref)
    assert read(work / "order").split() == ["3", "4", "2", "5"]


async def test_a_job_waits_until_cores_free_up(start: Start, work: Path) -> None:
    reports = Reports()
    backend = await start(reports, max_cores=2)
    await backend.submit(job(work, 1, 'while [ ! -e "$WORK/release" ]; do sleep 0.02; done\n'), [])
    await reports.wait_for("1.1", S.RUNNING)
    await backend.submit(job(work, 2, "true\n", cores=2), [])
    await anyio.sleep(0.3)
    assert reports.statuses("2.1") == [S.SUBMITTED]
    assert (await backend.status(["2.1"]))["2.1"].status is S.SUBMITTED
    (work / "release").touch()
    assert (await reports.final("2.1")).status is S.COMPLETED


# -- walltime and cancel --------------------------------------------------

TRAPS_TERM = 'trap "echo got TERM >> $WORK/term" TERM\nwhile :; do sleep 0.05; done\n'


async def test_walltime_terms_the_job(start: Start, work: Path, data_dir: Path) -> None:
    reports = Reports()
    backend = await start(reports)
    ref = await backend.submit(job(work, 1, "sleep 30\n", walltime="00:00:01"), [])
    report = await reports.final(ref)
    assert report.status is S.FAILED
    assert report.reason == "walltime 00:00:01 exceeded; killed"
    assert report.exit_code == 143  # bash ended by TERM
    pid = await supervisor_pid(data_dir, ref)
    await wait_until(lambda: not group_alive(pid))
    assert (await backend.status([ref]))[ref].reason == "walltime 00:00:01 exceeded; killed"


async def test_walltime_kills_a_job_that_ignores_term(
    start: Start, work: Path, data_dir: Path
) -> None:
    reports = Reports()
    backend = await start(reports, kill_grace=0.3)
    ref = await backend.submit(job(work, 1, TRAPS_TERM, walltime="00:00:01"), [])
    report = await reports.final(ref)
    assert report.status is S.FAILED and report.exit_code == 137
    assert report.reason == "walltime 00:00:01 exceeded; killed"
    assert "got TERM" in read(work / "term")  # TERM came first, then KILL
    pid = await supervisor_pid(data_dir, ref)
    await wait_until(lambda: not group_alive(pid))


async def test_cancel_a_running_job(start: Start, work: Path, data_dir: Path) -> None:
    reports = Reports()
    backend = await start(reports)
    ref = await backend.submit(job(work, 1, "touch started\nsleep 30\n"), [])
    # Once the job runs its own commands, a TERM reaches it. (One in the first
    # instant, while the supervisor forks it, may not: KILL after the grace then.)
    await wait_until(lambda: (work / "started").exists())
    await backend.cancel(ref)
    report = await reports.final(ref)
    assert report.status is S.CANCELLED and report.exit_code == 143
    pid = await supervisor_pid(data_dir, ref)
    await wait_until(lambda: not group_alive(pid))
    # Idempotent: again, an ended ref, unknown refs; no error, no new report.
    await backend.cancel(ref)
    await backend.cancel("99.1")
    await backend.cancel("../../etc")
    assert reports.statuses(ref) == [S.SUBMITTED, S.RUNNING, S.CANCELLED]
    assert (await backend.status([ref]))[ref].status is S.CANCELLED


async def test_cancel_kills_a_job_that_ignores_term(start: Start, work: Path) -> None:
    reports = Reports()
    backend = await start(reports, kill_grace=0.3)
    ref = await backend.submit(job(work, 1, TRAPS_TERM), [])
    await wait_until(lambda: (work.parent / "data/logs/1.stdout").exists())
    await reports.wait_for(ref, S.RUNNING)
    await anyio.sleep(0.1)  # let bash set its trap
    await backend.cancel(ref)
    report = await reports.final(ref)
    assert report.status is S.CANCELLED and report.exit_code == 137
    assert "got TERM" in read(work / "term")


async def test_cancel_a_job_that_has_not_started(start: Start, work: Path, data_dir: Path) -> None:
    reports = Reports()
    backend = await start(reports, max_cores=1)
    await backend.submit(job(work, 1, 'while [ ! -e "$WORK/release" ]; do sleep 0.02; done\n'), [])
    await reports.wait_for("1.1", S.RUNNING)
    ref = await backend.submit(job(work, 2, "touch ran\n"), [])
    await backend.cancel(ref)
    assert reports.statuses(ref) == [S.SUBMITTED, S.CANCELLED]
    await backend.cancel(ref)
    (work / "release").touch()
    await reports.final("1.1")
    await anyio.sleep(0.2)
    assert reports.statuses(ref) == [S.SUBMITTED, S.CANCELLED]
    assert not (work / "ran").exists()
    assert not RunFiles(data_dir / "runs", ref).launched()


# -- after a restart ------------------------------------------------------


async def test_a_restarted_backend_adopts_a_running_job(
    start: Start, work: Path, data_dir: Path
) -> None:
    first = Reports()
    a = await start(first)
    submitted = job(work, 1, "sleep 1\nexit 3\n")
    ref = await a.submit(submitted, [])
    await first.wait_for(ref, S.RUNNING)
    await a.close()  # the job runs on
    assert group_alive(await supervisor_pid(data_dir, ref))
    assert not any(r.status.is_final for r in first.by_ref[ref])

    second = Reports()
    b = await start(second)
    assert await b.lookup([ref, "2.1"]) == {ref: ref}
    assert (await b.status([ref]))[ref].status is S.RUNNING
    await b.adopt(submitted, ref)
    report = await second.final(ref)
    assert report.status is S.FAILED and report.exit_code == 3
    assert second.statuses(ref) == [S.RUNNING, S.FAILED]
    assert second.by_ref[ref][0].started_at is not None


async def test_adopting_an_overdue_job_kills_it_at_once(
    start: Start, work: Path, data_dir: Path
) -> None:
    first = Reports()
    a = await start(first)
    submitted = job(work, 1, "sleep 30\n", walltime="00:00:01")
    ref = await a.submit(submitted, [])
    await first.wait_for(ref, S.RUNNING)
    await a.close()
    await anyio.sleep(1.2)  # past its walltime while no backend watched
    assert group_alive(await supervisor_pid(data_dir, ref))

    second = Reports()
    b = await start(second)
    await b.adopt(submitted, ref)
    report = await second.final(ref)
    assert report.status is S.FAILED and report.reason == "walltime 00:00:01 exceeded; killed"
    pid = await supervisor_pid(data_dir, ref)
    await wait_until(lambda: not group_alive(pid))


async def test_a_kill_begun_before_a_restart_is_finished_after(
    start: Start, work: Path, data_dir: Path
) -> None:
    first = Reports()
    a = await start(first, kill_grace=30)
    submitted = job(work, 1, TRAPS_TERM)
    ref = await a.submit(submitted, [])
    await first.wait_for(ref, S.RUNNING)
    await anyio.sleep(0.1)  # let bash set its trap
    await a.cancel(ref)
    await wait_until(lambda: "got TERM" in read(work / "term"))
    await a.close()  # in the grace period: the job still runs

    second = Reports()
    b = await start(second, kill_grace=0.3)
    await b.adopt(submitted, ref)
    report = await second.final(ref)
    assert report.status is S.CANCELLED and report.exit_code == 137
    pid = await supervisor_pid(data_dir, ref)
    await wait_until(lambda: not group_alive(pid))


async def test_status_of_a_job_that_ended_while_no_backend_ran(
    start: Start, work: Path, data_dir: Path
) -> None:
    first = Reports()
    a = await start(first)
    ref = await a.submit(job(work, 1, "sleep 0.3\nexit 5\n"), [])
    await first.wait_for(ref, S.RUNNING)
    await a.close()
    files = RunFiles(data_dir / "runs", ref)
    await wait_until(lambda: "\n" in read(Path(files.state_path)).partition("\n")[2])

    b = make_backend(data_dir, Reports())  # not even started: status reads the files
    report = await b.status([ref, "8.1", "nonsense"])
    assert report[ref].status is S.FAILED and report[ref].exit_code == 5
    assert report[ref].ended_at is not None
    assert report["8.1"].status is S.UNKNOWN and report["nonsense"].status is S.UNKNOWN


async def test_a_job_whose_supervisor_was_killed_is_failed(
    start: Start, work: Path, data_dir: Path
) -> None:
    first = Reports()
    a = await start(first)
    submitted = job(work, 1, "touch started\nsleep 30\n")
    ref = await a.submit(submitted, [])
    await wait_until(lambda: (work / "started").exists())
    await a.close()
    pid = await supervisor_pid(data_dir, ref)  # the job's own pid: the supervisor started it
    kill_machine_supervisor(data_dir)  # its job runs on, but nobody can learn its exit code
    assert group_alive(pid)

    second = Reports()
    b = await start(second)
    assert (await b.status([ref]))[ref].status is S.RUNNING
    await b.adopt(submitted, ref)
    os.killpg(pid, signal.SIGKILL)  # the orphaned job ends
    report = await second.final(ref)
    assert report.status is S.FAILED and report.reason == SUPERVISOR_DIED


async def test_jobs_run_on_when_the_machine_supervisor_dies_under_a_server(
    start: Start, work: Path, data_dir: Path
) -> None:
    reports = Reports()
    backend = await start(reports)
    ref = await backend.submit(job(work, 1, "touch started\nsleep 30\n"), [])
    await wait_until(lambda: (work / "started").exists())
    pid = await supervisor_pid(data_dir, ref)
    kill_machine_supervisor(data_dir)
    # A new one takes the next job; the first is watched by its pid.
    after = await backend.submit(job(work, 2, "exit 3\n"), [])
    assert (await reports.final(after)).exit_code == 3
    os.killpg(pid, signal.SIGKILL)
    report = await reports.final(ref)
    assert report.status is S.FAILED and report.reason == SUPERVISOR_DIED


def kill_machine_supervisor(data_dir: Path) -> None:
    """SIGKILL the long-lived supervisor of ``data_dir``'s jobs (found by its command line)."""
    runs = os.fsencode(data_dir / "runs")
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                argv = (entry / "cmdline").read_bytes().split(b"\0")
                if argv[-2:] == [runs, b""] and argv[-3].endswith(b"daemon.py"):
                    os.kill(int(entry.name), signal.SIGKILL)
                    return
    raise AssertionError("no machine supervisor runs")


async def test_adopting_a_job_that_never_started_runs_it(start: Start, work: Path) -> None:
    reports = Reports()
    backend = await start(reports)
    submitted = job(work, 1, "echo ran > ran\n")
    assert await backend.lookup([submitted.key]) == {}
    await backend.adopt(submitted, submitted.key)
    assert (await reports.final(submitted.key)).status is S.COMPLETED
    assert read(work / "ran") == "ran\n"


async def test_submitting_again_after_a_restart_never_runs_a_job_twice(
    start: Start, work: Path
) -> None:
    first = Reports()
    a = await start(first)
    submitted = job(work, 1, "echo run >> runs\n")
    await a.submit(submitted, [])
    assert (await first.final("1.1")).status is S.COMPLETED
    await a.close()

    second = Reports()
    b = await start(second)
    await b.submit(submitted, [])  # as after a crash that lost the ref
    assert (await second.final("1.1")).status is S.COMPLETED
    assert read(work / "runs") == "run\n"


async def test_without_pidfds_jobs_are_watched_by_polling(
    start: Start, work: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unsupported(pid: int) -> int:
        raise PidfdUnsupported

    monkeypatch.setattr("gantry.backends.local.backend.open_pidfd", unsupported)
    first = Reports()
    a = await start(first)
    assert (await a.submit(job(work, 1, "exit 4\n"), [])) == "1.1"
    assert (await first.final("1.1")).exit_code == 4
    submitted = job(work, 2, "sleep 0.5\nexit 6\n")
    ref = await a.submit(submitted, [])
    await first.wait_for(ref, S.RUNNING)
    await a.close()

    second = Reports()
    b = await start(second)
    await b.adopt(submitted, ref)
    assert (await second.final(ref)).exit_code == 6


async def test_a_supervisor_that_has_not_recorded_its_pid_yet_is_found(
    work: Path, data_dir: Path
) -> None:
    # A server died between starting a supervisor and the supervisor's first
    # line: the job counts as started only while that supervisor exists.
    files = RunFiles(data_dir / "runs", "3.1")
    (data_dir / "runs").mkdir(parents=True)
    files.write_script("true\n")
    stand_in = spawn_stand_in(files.base)
    try:
        backend = make_backend(data_dir, Reports())
        await wait_until(lambda: is_supervisor_of(stand_in, files.base))
        assert await backend.lookup(["3.1"]) == {"3.1": "3.1"}
        assert (await backend.status(["3.1"]))["3.1"].status is S.RUNNING
    finally:
        kill_and_collect(stand_in)
    assert await backend.lookup(["3.1"]) == {}  # it never ran the job: submit it again


def spawn_stand_in(base: str) -> int:
    """A process that looks like the supervisor of the job at ``base`` and records nothing."""
    argv = ["sh", "-c", "sleep 30", SUPERVISOR_NAME, base]
    return os.posix_spawn("/bin/sh", argv, {}, setsid=True)


def kill_and_collect(pid: int, *, group: bool = True) -> None:
    if group:
        os.killpg(pid, signal.SIGKILL)
    else:
        os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)


async def test_a_recorded_pid_now_used_by_another_process_is_not_the_job(
    start: Start, work: Path, data_dir: Path
) -> None:
    # The supervisor died and its pid went to an unrelated process.
    other = spawn_sleeper()
    try:
        record_run(data_dir, "5.1", other)
        reports = Reports()
        backend = await start(reports)
        assert (await backend.status(["5.1"]))["5.1"].reason == SUPERVISOR_DIED
        await backend.adopt(job(work, 5, "sleep 30\n"), "5.1")
        assert (await reports.final("5.1")).reason == SUPERVISOR_DIED
        assert group_alive(other)  # and it was left alone
    finally:
        kill_and_collect(other)


def spawn_sleeper() -> int:
    return os.posix_spawn("/bin/sleep", ["sleep", "30"], {}, setsid=True)


def record_run(data_dir: Path, key: str, pid: int) -> None:
    """The files a server and supervisor leave for a job started as ``pid``."""
    files = RunFiles(data_dir / "runs", key)
    (data_dir / "runs").mkdir(parents=True, exist_ok=True)
    files.write_script("sleep 30\n")
    Path(files.state_path).write_text(f"{pid}\n")
    long_ago = time.time() - 600  # recorded long before the pid was given to ``pid``
    os.utime(files.state_path, (long_ago, long_ago))


async def test_a_log_that_cannot_be_written_fails_the_job_before_it_starts(
    start: Start, work: Path, tmp_path: Path
) -> None:
    reports = Reports()
    backend = await start(reports)
    (tmp_path / "blocker").write_text("a file, not a directory")
    submitted = dataclasses.replace(
        job(work, 1, "touch ran\n"), stderr_path=tmp_path / "blocker" / "1.stderr"
    )
    await backend.submit(submitted, [])
    report = await reports.final("1.1")
    assert report.status is S.FAILED
    assert report.reason is not None and "cannot write the job's log" in report.reason
    assert reports.statuses("1.1") == [S.SUBMITTED, S.FAILED]
    assert not (work / "ran").exists()


async def test_stdout_and_stderr_may_share_one_file(start: Start, work: Path) -> None:
    reports = Reports()
    backend = await start(reports)
    submitted = job(work, 1, "echo one\necho two >&2\necho three\n")
    submitted = dataclasses.replace(submitted, stderr_path=submitted.stdout_path)
    await backend.submit(submitted, [])
    assert (await reports.final("1.1")).status is S.COMPLETED
    assert read(submitted.stdout_path) == "one\ntwo\nthree\n"


# -- the supervisor on its own ---------------------------------------------


def run_supervisor(tmp_path: Path, spec: str, working_dir: Path) -> tuple[RunFiles, int, Path]:
    """Start a supervisor for job 1.1 the way the backend does; (files, pid, stderr)."""
    runs = tmp_path / "runs"
    runs.mkdir(exist_ok=True)
    files = RunFiles(runs, "1.1")
    files.write_script(spec)
    shell, bash = find_shells()
    stderr = tmp_path / "stderr"
    with open(os.devnull, "rb") as stdin, open(stderr, "ab") as err:
        stdio = (stdin.fileno(), err.fileno(), err.fileno())
        env = {"PATH": os.environ["PATH"]}
        pid = spawn_supervisor(shell, bash, files.base, str(working_dir), env, stdio)
    return files, pid, stderr


def test_the_supervisor_records_pid_then_exit_code(tmp_path: Path) -> None:
    files, pid, _ = run_supervisor(tmp_path, "exit 7\n", tmp_path)
    os.waitpid(pid, 0)
    state = files.read_state()
    assert state is not None and (state.pid, state.exit_code) == (pid, 7)


def test_the_supervisor_outlives_a_term_to_its_group_and_records_it(tmp_path: Path) -> None:
    files, pid, _ = run_supervisor(tmp_path, "touch started\nsleep 30\n", tmp_path)
    deadline = time.monotonic() + TIMEOUT
    while not (tmp_path / "started").exists():
        assert time.monotonic() < deadline
        time.sleep(0.01)
    os.killpg(pid, signal.SIGTERM)
    os.waitpid(pid, 0)
    state = files.read_state()
    assert state is not None and state.exit_code == 143


def test_the_supervisor_fails_a_job_whose_working_dir_is_gone(tmp_path: Path) -> None:
    files, pid, stderr = run_supervisor(tmp_path, "touch ran\n", tmp_path / "missing")
    os.waitpid(pid, 0)
    state = files.read_state()
    assert state is not None and state.exit_code == 1
    assert "missing" in stderr.read_text()  # the shell's own message, in the job's stderr
    assert not (tmp_path / "ran").exists()
