"""Benchmark of the slurm backend on a real cluster (start it: scripts/slurm/start.sh).

1. Submit N trivial jobs through ``SlurmBackend.submit``, at most C sbatch in
   flight. By default they all wait (``afterok``) on a held "gate" job, so
   the submit rate is not mixed with running jobs and all N stay tracked.
2. Watch the poller for a few cycles with all N tracked: scheduler commands
   per cycle and cycle time.
3. Release the gate; wait until every final state is reported and measure
   how long after Slurm's end each report came.

Targets: >= 200 sbatch/s; <= 2 scheduler commands per poll cycle with 1,000
jobs tracked; a final state reported <= 2 s after Slurm's end.

Slurm records end times in whole seconds, so "report - EndTime" is up to 1 s
too high; each job also prints its own end (``date +%s.%N``, its last act,
before Slurm's end), so "report - job's end" is too high as well. The
smaller of the two is the tightest upper bound of the delay after Slurm's
end, and the target applies to it.

    .venv/bin/python bench/bench_slurm.py [--jobs 1000] [--concurrency 16] [--no-gate]
        [--baseline]   # also time plain sbatch calls (no backend) for comparison
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio

from gantry.backends.base import BackendContext, BackendStatus, JobSubmission, StatusReport
from gantry.backends.slurm import SlurmBackend

TARGET_SUBMITS_PER_S = 200
TARGET_COMMANDS_PER_CYCLE = 2
TARGET_DELAY_S = 2.0
SPEC = "date +%s.%N\n"


def percentiles(values: list[float]) -> str:
    if not values:
        return "n/a"
    ordered = sorted(values)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return (
        f"p50 {pick(0.50):.2f} s, p95 {pick(0.95):.2f} s, max {ordered[-1]:.2f} s "
        f"(mean {statistics.fmean(ordered):.2f} s)"
    )


def cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


async def wait_queue_empty(limit_s: float) -> None:
    with anyio.move_on_after(limit_s):
        while True:
            done = await anyio.run_process(["squeue", "--me", "--noheader"], check=False)
            if not done.stdout.strip():
                return
            await anyio.sleep(1)


async def baseline(jobs: int, concurrency: int, data_dir: Path) -> float:
    """Plain sbatch calls, same script and concurrency, no backend: sbatch/s."""
    limit = anyio.Semaphore(concurrency)
    env = {"PATH": os.environ["PATH"]}

    async def one(i: int) -> None:
        async with limit:
            await anyio.run_process(
                ["sbatch", "--parsable", "--hold", f"--output={data_dir}/base-{i}.out",
                 "--job-name=gantry-baseline", "--export=ALL"],
                input=("#!/bin/bash\n" + SPEC).encode(), env=env,
            )  # fmt: skip

    started = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for i in range(jobs):
            tg.start_soon(one, i)
    rate = jobs / (time.perf_counter() - started)
    await anyio.run_process(["scancel", "--me", "--name=gantry-baseline"], check=False)
    return rate


async def bench(jobs: int, concurrency: int, gate: bool, with_baseline: bool) -> bool:
    data_dir = Path(tempfile.mkdtemp(prefix="gantry-bench-slurm-"))
    finals: dict[str, tuple[float, StatusReport]] = {}
    all_final = anyio.Event()

    def report(ref: str, report: StatusReport) -> None:
        if report.status.is_final:
            finals[ref] = (time.time(), report)
            if len(finals) == jobs + gate:
                all_final.set()

    config = {"submit_concurrency": str(concurrency)}
    backend = SlurmBackend(BackendContext("slurm", data_dir, config, report))
    ok, why = await backend.health()
    if not ok:
        print(f"Slurm is not usable: {why}", file=sys.stderr)
        return False
    await wait_queue_empty(120)
    base_rate = await baseline(jobs, concurrency, data_dir) if with_baseline else None

    def job(i: int, spec: str = SPEC, **options: str) -> JobSubmission:
        return JobSubmission(
            job_id=i, attempt=1, name=f"bench-{i}", spec=spec, options=options,
            working_dir=data_dir, env={"PATH": "/usr/bin:/bin"},
            stdout_path=data_dir / "logs" / f"{i}.stdout",
            stderr_path=data_dir / "logs" / f"{i}.stderr",
        )  # fmt: skip

    refs: dict[int, str] = {}
    limit = anyio.Semaphore(concurrency)

    async with anyio.create_task_group() as tg:
        await tg.start(backend.run)
        gate_ref = await backend.submit(job(0, "true\n", slurm_args="--hold"), []) if gate else ""
        deps = [gate_ref] if gate else []

        async def submit(i: int) -> None:
            async with limit:
                refs[i] = await backend.submit(job(i), deps)

        cpu_before = cpu_seconds()
        started = time.perf_counter()
        async with anyio.create_task_group() as submitters:
            for i in range(1, jobs + 1):
                submitters.start_soon(submit, i)
        submit_s = time.perf_counter() - started
        cpu_per_submit_ms = (cpu_seconds() - cpu_before) / jobs * 1000
        tracked = len(backend._tracked)

        cycles_before, commands_before = backend.poll_stats.cycles, backend.poll_stats.commands
        if gate:  # watch the poller with every job tracked, then open the gate
            await anyio.sleep(5)
        watched_cycles = backend.poll_stats.cycles - cycles_before
        watched_commands = backend.poll_stats.commands - commands_before
        if gate:
            await anyio.run_process(["scontrol", "release", gate_ref])
        with anyio.move_on_after(max(120, jobs / 5)):
            await all_final.wait()
        total_s = time.perf_counter() - started
        tg.cancel_scope.cancel()

    stats = backend.poll_stats
    rate = jobs / submit_s
    after_end_time = {ref: t - r.ended_at for ref, (t, r) in finals.items() if r.ended_at}
    after_job_end: dict[str, float] = {}
    for i, ref in refs.items():
        path = data_dir / "logs" / f"{i}.stdout"
        text = path.read_text().strip() if path.exists() else ""
        if ref in finals and text:
            after_job_end[ref] = finals[ref][0] - float(text)
    delay = [min(d, after_job_end.get(ref, d)) for ref, d in after_end_time.items()]
    completed = sum(
        1
        for ref, (_, r) in finals.items()
        if ref != gate_ref and r.status is BackendStatus.COMPLETED
    )

    print(f"slurm backend benchmark: {jobs} jobs, {concurrency} sbatch in flight, "
          f"{'behind a held gate job' if gate else 'running as submitted'}")  # fmt: skip
    print(f"  load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    if base_rate is not None:
        print(f"  baseline, plain sbatch (no backend): {base_rate:.0f} sbatch/s")
    print(f"  submit: {submit_s:.2f} s -> {rate:.0f} sbatch/s (target >= {TARGET_SUBMITS_PER_S}); "
          f"CPU of this process + its sbatch children {cpu_per_submit_ms:.1f} ms/job")  # fmt: skip
    print(f"  tracked after submitting: {tracked}")
    if gate:
        per_cycle = watched_commands / max(watched_cycles, 1)
        print(f"  with all tracked, 5 s: {watched_cycles} poll cycles, {watched_commands} "
              f"commands ({per_cycle:.1f}/cycle)")  # fmt: skip
    print(f"  poll cycles overall: {stats.cycles}, commands {stats.commands}, max per cycle "
          f"{stats.max_commands_per_cycle} (target <= {TARGET_COMMANDS_PER_CYCLE}), mean cycle "
          f"{stats.seconds / max(stats.cycles, 1) * 1000:.0f} ms, max "
          f"{stats.max_seconds * 1000:.0f} ms")  # fmt: skip
    print(f"  commands run: {dict(backend.commands.counts)}")
    print(f"  all final {total_s:.1f} s after the first submit: {len(finals)}/{jobs + gate} "
          f"reported, {completed} completed")  # fmt: skip
    print(f"  report - Slurm EndTime (whole seconds): {percentiles(list(after_end_time.values()))}")
    print(f"  report - job's own last act:           {percentiles(list(after_job_end.values()))}")
    print(f"  delay after Slurm's end (upper bound): {percentiles(delay)} (target <= 2 s)")
    met = (
        rate >= TARGET_SUBMITS_PER_S
        and stats.max_commands_per_cycle <= TARGET_COMMANDS_PER_CYCLE
        and completed == jobs
        and bool(delay)
        and max(delay) <= TARGET_DELAY_S
    )
    print("  targets met" if met else "  TARGETS MISSED")
    return met


def main() -> None:
    parser = argparse.ArgumentParser(description="Benchmark the slurm backend on a real cluster")
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--no-gate", action="store_true", help="let jobs run as submitted")
    parser.add_argument("--baseline", action="store_true", help="also time plain sbatch calls")
    args = parser.parse_args()
    try:
        subprocess.run(["sinfo"], capture_output=True, check=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        sys.exit("Slurm is not running: start it with scripts/slurm/start.sh")
    met = anyio.run(bench, args.jobs, args.concurrency, not args.no_gate, args.baseline)
    sys.exit(0 if met else 1)


if __name__ == "__main__":
    main()
