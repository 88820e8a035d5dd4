"""Throughput of the local backend against a bare asyncio loop.

Both run the same N ``bash script`` jobs (the script is ``true``) with the same
concurrency: the bare loop with ``asyncio.create_subprocess_exec`` under a
semaphore, the backend alone (no server, a reporter that only counts) with
``max_cores`` = the concurrency. The backend does what it does in the server:
a script and a state file per job, a supervisor, logs appended to files.

Target: the backend reaches at least 50 % of the bare loop's rate. The runs
come in pairs (bare, then backend) and the ratio is the median over pairs, so
that other load on the machine weighs on both sides alike; CPU per job (this
process and its children) is printed too, being steadier than rates.

    .venv/bin/python bench/bench_local_backend.py [--jobs 2000] [--concurrency N] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import anyio
from common import bare_loop

from gantry.backends.base import BackendContext, BackendStatus, JobSubmission, StatusReport
from gantry.backends.local import LocalBackend

TARGET = 0.5


async def backend(workdir: Path, jobs: int, concurrency: int, logs: bool = True) -> float:
    """Jobs per second of the local backend, submit of the first to end of the last.

    Without ``logs``, jobs write to /dev/null as the bare loop's do: that takes
    the two files a job's logs cost out of the comparison.
    """
    ended = 0
    done = anyio.Event()

    def report(ref: str, report: StatusReport) -> None:
        nonlocal ended
        if report.status.is_final:
            if report.status is not BackendStatus.COMPLETED:
                raise SystemExit(f"job {ref} did not complete: {report}")
            ended += 1
            if ended == jobs:
                done.set()

    config = {"max_cores": str(concurrency)}
    local = LocalBackend(BackendContext("local", workdir / "data", config, report))
    env = dict(os.environ)
    log_dir = workdir / "data" / "logs"
    async with anyio.create_task_group() as tg:
        await tg.start(local.run)
        begin = time.perf_counter()
        for job_id in range(1, jobs + 1):
            job = JobSubmission(
                job_id=job_id,
                attempt=1,
                name=f"true-{job_id}",
                spec="true\n",
                options={"cores": 1},
                working_dir=workdir,
                env=env,
                stdout_path=log_dir / f"{job_id}.stdout" if logs else Path(os.devnull),
                stderr_path=log_dir / f"{job_id}.stderr" if logs else Path(os.devnull),
            )
            await local.submit(job, [])
        await done.wait()
        elapsed = time.perf_counter() - begin
        await local.close()
    SUPERVISOR_CPU.append(supervisor_cpu(workdir / "data" / "runs"))
    return jobs / elapsed


#: CPU seconds of the machine's supervisor (not our child) of each backend run, with its jobs
SUPERVISOR_CPU: list[float] = []


def supervisor_cpu(runs: Path) -> float:
    """utime + stime + those of its reaped children, of the supervisor of ``runs`` (0 if none)."""
    wanted = [os.fsencode(runs), b""]
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            if entry.name.isdigit() and argv[-2:] == wanted and argv[-3].endswith(b"daemon.py"):
                fields = (entry / "stat").read_text().rpartition(")")[2].split()
                return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError):
            continue
    return 0.0


def measure(run: Callable[[Path], float], workdir: Path) -> tuple[float, float]:
    """(jobs/s, CPU seconds of this process, its children and the job supervisor) of one run."""
    before = _cpu()
    SUPERVISOR_CPU.clear()
    rate = run(Path(tempfile.mkdtemp(dir=workdir)))
    return rate, _cpu() - before + sum(SUPERVISOR_CPU)


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--rounds", type=int, default=3, help="pairs of runs, bare then backend")
    parser.add_argument("--no-logs", action="store_true", help="backend jobs log to /dev/null")
    args = parser.parse_args()
    jobs, concurrency, logs = args.jobs, args.concurrency, not args.no_logs

    # Paired runs, so that a change in the machine's load hits both sides of a ratio.
    # Files are deleted only at the end: on an ext4 without a journal, creating a
    # file right after many were deleted costs up to ten times as much.
    pairs = []
    with tempfile.TemporaryDirectory(prefix="gantry-bench-") as top:
        for _ in range(args.rounds):
            bare = measure(lambda tmp: asyncio.run(bare_loop(tmp, jobs, concurrency)), Path(top))
            ours = measure(lambda tmp: anyio.run(backend, tmp, jobs, concurrency, logs), Path(top))
            pairs.append((bare, ours))
            print(
                f"  bare {bare[0]:7.1f} jobs/s, {bare[1] / jobs * 1e3:5.2f} ms CPU/job | "
                f"backend {ours[0]:7.1f} jobs/s, {ours[1] / jobs * 1e3:5.2f} ms CPU/job | "
                f"ratio {ours[0] / bare[0]:.2f}",
                flush=True,
            )
    ratio = statistics.median(ours[0] / bare[0] for bare, ours in pairs)
    print(
        f"jobs={jobs} concurrency={concurrency} rounds={args.rounds} logs={logs} "
        f"load={os.getloadavg()[0]:.1f}"
    )
    print(f"bare asyncio loop : {max(bare[0] for bare, _ in pairs):8.1f} jobs/s (best)")
    print(f"local backend     : {max(ours[0] for _, ours in pairs):8.1f} jobs/s (best)")
    verdict = "meets" if ratio >= TARGET else "MISSES"
    print(
        f"ratio             : {ratio:8.2f} (median of pairs; {verdict} the target of {TARGET:.2f})"
    )


if __name__ == "__main__":
    main()
