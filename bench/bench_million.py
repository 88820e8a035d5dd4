"""gantry with 1,000,000 jobs in its database.

The database is filled directly (after ``gantry.db.upgrade``): 1M ended jobs
with a realistic mix of states, backends, names, tags, dependencies and
their events (~4.1M), bulk-inserted with sqlite3 ``executemany`` in big
transactions, secondary indexes dropped during the fill and rebuilt after.
The filled file is cached (``--cache-dir``, default ~/.cache/gantry-bench)
under a name that includes the schema's hash, so reruns skip the fill; each
run works on a copy.

Targets, all with the 1M database:
- ``GET /api/v1/jobs/{id}``, random ids, single requests (wrk, 1 connection):
  p99 <= 5 ms;
- filtered list pages (``limit=100``: ``state=failed``, ``tag=...``,
  ``name=<prefix>``, ``backend=...``), single requests: p99 <= 20 ms each;
- submit throughput (bench_api's method: wrk, 16 connections, every job
  depends on a blocker) >= 80 % of the same on an empty database, same run;
- server RSS <= 250 MB after all of that (including cancelling the blocker
  and with it every submitted job).

    .venv/bin/python bench/bench_million.py [--jobs 1000000] [--cache-dir DIR]
        [--refill] [--read-duration 5] [--duration 10] [--pin]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import queue
import random
import shutil
import sqlite3
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_api import (
    active_jobs,
    add_load_args,
    cancel_cascade,
    print_load,
    submit_blocker,
    submit_load,
)
from common import (
    SOURCE,
    Server,
    add_nice_arg,
    check,
    ensure_wrk,
    finish,
    lua_random_get,
    run_wrk,
    scratch_dir,
    start_results,
)

# The database is made by the same checkout the servers run (GANTRY_BENCH_SOURCE).
sys.path.insert(0, str(SOURCE))

GET_P99_MS = 5.0
LIST_P99_MS = 20.0
SUBMIT_RATIO = 0.8
RSS_MB = 250.0
FILL_VERSION = 2  # bump when the generated data changes
JOBS = "/api/v1/jobs"

STEPS = [
    "align",
    "call_variants",
    "qc",
    "index",
    "merge",
    "fastqc",
    "trim",
    "sort",
    "annotate",
    "report",
]
PROJECTS = [f"proj_{c}" for c in "abcdefghijklmnopqrst"]  # 20: ~5 % each
LOCAL_OPTIONS = {c: json.dumps({"cores": c}) for c in (1, 2, 4)}
SLURM_OPTIONS = {
    c: json.dumps({"cores": c, "memory": "8g", "walltime": "01:00:00", "partition": "normal"})
    for c in (1, 4, 8)
}
USERS = ["user:alice", "user:bob", "user:chen", "user:dana", "user:emil"]


# --- the fill -------------------------------------------------------------------


def schema_hash(path: Path) -> str:
    with sqlite3.connect(path) as conn:
        sql = sorted(
            row[0] for row in conn.execute("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL")
        )
    return hashlib.sha256("\n".join(sql).encode()).hexdigest()[:12]


def _ts(value: datetime | None) -> str | None:
    # SQLAlchemy's SQLite DATETIME text, as gantry stores it (UTC, no offset);
    # ``value`` is naive UTC here (isoformat is ~10x faster than strftime).
    return None if value is None else value.isoformat(" ", "microseconds")


def _json_list(items: list[str]) -> str:
    # json.dumps of plain strings (no quotes or backslashes in generated data)
    return "[" + ", ".join(f'"{item}"' for item in items) + "]"


def generate(
    n: int, seed: int = 1
) -> Iterator[
    tuple[list[dict[str, Any]], list[tuple[Any, ...]], list[tuple[str, int]], list[tuple[int, int]]]
]:
    """Chunks of (job rows, event rows, tag rows, dependency rows), ids 1..n in order."""
    rng = random.Random(seed)
    start = datetime(2026, 8, 24)  # naive UTC, ~90 days before the benchmark's date
    step_s = 90 * 86400 / n
    chunk = 50_000
    event_id = 0
    for base in range(1, n + 1, chunk):
        jobs, events, tags, deps = [], [], [], []
        for job_id in range(base, min(base + chunk, n + 1)):
            created = start + timedelta(seconds=job_id * step_s)
            r = rng.random()
            state = "completed" if r < 0.80 else "failed" if r < 0.92 else "cancelled"
            backend = "local" if rng.random() < 0.75 else "slurm"
            step = STEPS[job_id % len(STEPS)]
            sample = rng.randrange(10_000)
            project = PROJECTS[rng.randrange(len(PROJECTS))]
            job_tags = [project]
            if rng.random() < 0.3:
                job_tags.append("nightly")
            if rng.random() < 0.5:
                job_tags.append(USERS[rng.randrange(len(USERS))])
            job_tags.sort()
            queued_s = rng.uniform(0.01, 2.0 if backend == "local" else 60.0)
            run_s = rng.uniform(1, 600)
            started = created + timedelta(seconds=queued_s)
            ended = started + timedelta(seconds=run_s)
            never_ran = state == "cancelled" and rng.random() < 0.5
            if backend == "local":
                cores = rng.choice((1, 1, 1, 2, 4))
                options = LOCAL_OPTIONS[cores]
                ref = f"{job_id}.1"
            else:
                cores = rng.choice((1, 4, 8))
                options = SLURM_OPTIONS[cores]
                ref = str(1_000_000 + job_id)
            if state == "completed":
                exit_code, reason = 0, "exited 0"
            elif state == "failed":
                exit_code = rng.choice((1, 1, 2, 127, 137))
                reason = f"exited {exit_code}"
            else:
                exit_code = None if never_ran else 143
                reason = "cancelled by request"
            sample_name = f"s{sample:05d}"
            jobs.append(
                {
                    "id": job_id,
                    "name": f"{step}.{sample_name}",
                    "kind": "command",
                    "backend": backend,
                    "spec": f"#!/bin/bash\nset -euo pipefail\n{step} --sample {sample_name} "
                    f"--threads {cores} data/{sample_name}.in > "
                    f"out/{step}/{sample_name}.out\n",
                    "payload": "null",
                    "options": options,
                    "env": f'{{"SAMPLE": "{sample_name}"}}' if rng.random() < 0.2 else "{}",
                    "working_dir": f"/data/{project}" if rng.random() < 0.5 else None,
                    "inputs": f'["data/{sample_name}.in"]',
                    "outputs": f'["out/{step}/{sample_name}.out"]',
                    "tags": _json_list(job_tags),
                    "warnings": "[]",
                    "priority": 0,
                    "state": state,
                    "reason": reason,
                    "backend_ref": None if never_ran else ref,
                    "exit_code": exit_code,
                    "attempt": 0 if never_ran else 1,
                    "created_at": _ts(created),
                    "updated_at": _ts(ended),
                    "started_at": None if never_ran else _ts(started),
                    "ended_at": _ts(ended),
                }
            )
            tags.extend((t, job_id) for t in job_tags)
            if job_id > 1 and step != STEPS[0] and rng.random() < 0.5:
                deps.append((job_id, job_id - 1))
            if never_ran:
                path = [
                    ("queued", "submitted to gantry", created),
                    ("cancelling", reason, ended),
                    ("cancelled", reason, ended),
                ]
            else:
                path = [
                    ("queued", "submitted to gantry", created),
                    (
                        "submitted",
                        f"submitted to {backend} as {ref}",
                        created + timedelta(milliseconds=5),
                    ),
                    ("running", f"running on {backend}", started),
                ]
                if state == "cancelled":
                    path.append(("cancelling", reason, ended))
                path.append((state, reason, ended))
            previous = None
            for to_state, message, at in path:
                event_id += 1
                events.append((event_id, job_id, _ts(at), previous, to_state, message))
                previous = to_state
        yield jobs, events, tags, deps


def _in_background(chunks: Iterator[Any], depth: int = 3) -> Iterator[Any]:
    """Generate the next chunks in a thread while sqlite (which releases the GIL) inserts."""
    pipe: queue.Queue[Any] = queue.Queue(maxsize=depth)
    end = object()

    def produce() -> None:
        try:
            for chunk in chunks:
                pipe.put(chunk)
        finally:
            pipe.put(end)

    worker = threading.Thread(target=produce, daemon=True)
    worker.start()
    while (chunk := pipe.get()) is not end:
        yield chunk
    worker.join()


def fill(path: Path, n: int) -> dict[str, Any]:
    """A fresh database at ``path`` with ``n`` ended jobs; returns timings."""
    from gantry import db  # the project's migrations make the schema

    begin = time.perf_counter()
    path.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    db.upgrade(f"sqlite:///{path}")
    migrated = time.perf_counter()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-400000")
    conn.execute("PRAGMA temp_store=MEMORY")
    conn.execute("PRAGMA foreign_keys=OFF")
    columns = {row[1]: row for row in conn.execute("PRAGMA table_info(job)")}
    # Columns added by later migrations keep their defaults; one that is
    # NOT NULL without a default would need a value from this script.
    sample = next(generate(1))[0][0]
    missing = [
        name
        for name, (_, _, _, notnull, default, pk) in columns.items()
        if name not in sample and notnull and default is None and not pk
    ]
    if missing:
        raise SystemExit(
            f"bench_million.py does not know the job columns {missing}: "
            "give them values in generate()"
        )
    names = [c for c in sample if c in columns]
    indexes = [
        row
        for row in conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type='index' AND sql IS NOT NULL"
        )
    ]
    for name, _ in indexes:
        conn.execute(f'DROP INDEX "{name}"')
    job_sql = f"INSERT INTO job ({', '.join(names)}) VALUES ({', '.join(':' + c for c in names)})"
    counts = {"jobs": 0, "events": 0, "tags": 0, "dependencies": 0}
    for jobs, events, tags, deps in _in_background(generate(n)):
        conn.execute("BEGIN")
        conn.executemany(job_sql, jobs)
        conn.executemany(
            "INSERT INTO job_event (id, job_id, at, from_state, to_state, message) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            events,
        )
        conn.executemany("INSERT INTO job_tag (tag, job_id) VALUES (?, ?)", tags)
        conn.executemany("INSERT INTO job_dependency (job_id, depends_on_id) VALUES (?, ?)", deps)
        conn.execute("COMMIT")
        counts["jobs"] += len(jobs)
        counts["events"] += len(events)
        counts["tags"] += len(tags)
        counts["dependencies"] += len(deps)
        print(f"\r  filled {counts['jobs']:,} jobs", end="", flush=True)
    inserted = time.perf_counter()
    print()
    for _, sql in indexes:
        conn.execute(sql)
    indexed = time.perf_counter()
    conn.execute("PRAGMA journal_mode=WAL")  # as the server opens it
    conn.close()
    done = time.perf_counter()
    return {
        **counts,
        "seconds": done - begin,
        "migrate_s": migrated - begin,
        "insert_s": inserted - migrated,
        "index_s": indexed - inserted,
        "size_mb": path.stat().st_size / 2**20,
    }


def cached_db(cache_dir: Path, n: int, refill: bool) -> tuple[Path, dict[str, Any] | None]:
    """The filled database for ``n`` jobs and this schema, filling it if needed."""
    from gantry import db

    cache_dir.mkdir(parents=True, exist_ok=True)
    probe = cache_dir / "schema-probe.db"
    probe.unlink(missing_ok=True)
    db.upgrade(f"sqlite:///{probe}")
    key = schema_hash(probe)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{probe}{suffix}").unlink(missing_ok=True)
    path = cache_dir / f"million-{n}-v{FILL_VERSION}-{key}.db"
    meta = path.with_suffix(".json")
    if path.exists() and meta.exists() and not refill:
        return path, None
    # Fills for other schemas (other checkouts, older migrations): keep the two newest.
    others = sorted(
        (p for p in cache_dir.glob("million-*.db") if p != path),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    for old in others[2:]:
        old.unlink()
        old.with_suffix(".json").unlink(missing_ok=True)
    print(f"filling {path} with {n:,} jobs ...")
    tmp = path.with_suffix(".tmp")
    stats = fill(tmp, n)
    os.replace(tmp, path)
    meta.write_text(json.dumps(stats, indent=2) + "\n")
    return path, stats


# --- the measurements -----------------------------------------------------------


def read_latency(
    server: Server, path: str, *, duration: float, script: str | None = None, connections: int = 1
) -> Any:
    """wrk GETs; the result also carries the server's CPU time per request."""
    before = server.sample()
    result = run_wrk(
        server.url(path), duration=duration, connections=connections, threads=1, script=script
    )
    cpu_s, _ = server.sample().cpu_since(before)
    result.server_cpu_us = cpu_s / max(result.requests, 1) * 1e6
    return result


def _line(result: Any) -> str:
    return f"{result.summary()}; server {result.server_cpu_us:.0f} CPU-us/request"


def bench_reads(
    server: Server, n: int, args: argparse.Namespace
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    out: dict[str, Any] = {}
    checks = []
    print(
        f"\n  GET /api/v1/jobs/{{random id in 1..{n}}}, single requests "
        f"(wrk, 1 connection, {args.read_duration:g} s):"
    )
    script = lua_random_get(f"{JOBS}/%d", 1, n)
    run_wrk(server.url(JOBS), duration=1, connections=1, threads=1, script=script)  # warm-up
    single = read_latency(server, JOBS, duration=args.read_duration, script=script)
    print(f"    {_line(single)}")
    busy = read_latency(server, JOBS, duration=args.read_duration, script=script, connections=16)
    print(f"    16 connections: {_line(busy)}")
    out["get_single"] = {**single.as_dict(), "server_cpu_us": single.server_cpu_us}
    out["get_16"] = {**busy.as_dict(), "server_cpu_us": busy.server_cpu_us}
    checks.append(
        check(
            f"GET job by id p99 ({n:,} jobs)",
            f"{single.p99_ms:.2f} ms",
            f"<= {GET_P99_MS:g} ms",
            single.p99_ms <= GET_P99_MS and single.errors == 0,
        )
    )
    pages = {
        "state=failed": "state=failed&limit=100",
        "tag=nightly (30 %)": "tag=nightly&limit=100",
        "tag=proj_k (5 %)": "tag=proj_k&limit=100",
        "name=align (prefix, 10 %)": "name=align&limit=100",
        "name=qc.s0042 (prefix, rare)": "name=qc.s0042&limit=100",
        "backend=slurm": "backend=slurm&limit=100",
        "state=failed, deep page": f"state=failed&limit=100&before={n // 2}",
    }
    print(
        f"  list pages, limit=100, single requests (wrk, 1 connection, "
        f"{args.read_duration:g} s each):"
    )
    out["lists"] = {}
    with httpx.Client(base_url=server.base_url, timeout=60) as client:
        for label, query in pages.items():
            answer = client.get(f"{JOBS}?{query}")
            answer.raise_for_status()
            items = len(answer.json()["items"])
            result = read_latency(server, f"{JOBS}?{query}", duration=args.read_duration)
            print(f"    {label:30s} {items:3d} items: {_line(result)}")
            out["lists"][label] = {
                **result.as_dict(),
                "items": items,
                "server_cpu_us": result.server_cpu_us,
            }
            checks.append(
                check(
                    f"list {label} p99 ({n:,} jobs)",
                    f"{result.p99_ms:.2f} ms",
                    f"<= {LIST_P99_MS:g} ms",
                    result.p99_ms <= LIST_P99_MS and result.errors == 0,
                )
            )
    return out, checks


def submit_run(server: Server, args: argparse.Namespace) -> dict[str, Any]:
    with httpx.Client(base_url=server.base_url, timeout=60) as client:
        blocker = submit_blocker(client)
        run = submit_load(server, blocker, args)
        run["engine_holds"] = active_jobs(client) - 1
        run["cascade"] = cancel_cascade(client, blocker)
    run["rss_after_cascade_mb"] = server.sample().rss_mb
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_load_args(parser)
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "gantry-bench",
    )
    parser.add_argument("--refill", action="store_true", help="ignore the cached database")
    parser.add_argument("--read-duration", type=float, default=5.0)
    add_nice_arg(parser)
    args = parser.parse_args()
    results = start_results(args)
    ensure_wrk()
    checks: list[dict[str, Any]] = []

    print(f"\n== 5. gantry with {args.jobs:,} jobs in the database")
    source, stats = cached_db(args.cache_dir, args.jobs, args.refill)
    if stats is None:
        stats = json.loads(source.with_suffix(".json").read_text())
        print(
            f"  cached database {source} ({stats['size_mb']:.0f} MB); it took "
            f"{stats['seconds']:.1f} s to fill (--refill to fill it again)"
        )
    else:
        print(
            f"  filled in {stats['seconds']:.1f} s (migrations {stats['migrate_s']:.1f} s, "
            f"inserts {stats['insert_s']:.1f} s, indexes {stats['index_s']:.1f} s): "
            f"{stats['jobs']:,} jobs, {stats['events']:,} events, {stats['tags']:,} tags, "
            f"{stats['dependencies']:,} dependencies, {stats['size_mb']:.0f} MB"
        )
    results["fill"] = stats
    cpus = [0] if args.pin else None
    with scratch_dir("gantry-bench-million-", keep=args.keep) as root:
        # Submit throughput on an empty database first, the same method.
        empty = Server.gantry(root / "empty", cpus=cpus, label="gantry-empty")
        with empty:
            results["submit_empty"] = submit_run(empty, args)
        print("  submit on an empty database:")
        print_load("empty", results["submit_empty"])

        data_dir = root / "million"
        data_dir.mkdir()
        begin = time.perf_counter()
        shutil.copyfile(source, data_dir / "gantry.db")
        print(f"  copied the database in {time.perf_counter() - begin:.1f} s")
        server = Server.gantry(data_dir, cpus=cpus, label="gantry-million")
        begin = time.perf_counter()
        with server:
            started = time.perf_counter() - begin
            print(f"  server up in {started:.1f} s, RSS {server.sample().rss_mb:.0f} MB")
            results["startup_s"] = started
            reads, read_checks = bench_reads(server, args.jobs, args)
            results["reads"] = reads
            checks += read_checks
            print("  submit on the 1M database:")
            full = submit_run(server, args)
            results["submit_million"] = full
            print_load("1M", full)
            c = full["cascade"]
            print(
                f"  {'':9s} cancel of the blocker: {c['jobs']} jobs in {c['engine_s']:.2f} s "
                f"(engine), {c['db_s']:.2f} s (written)"
            )
            rss, peak = server.sample().rss_mb, server.peak_rss_mb()
    ratio = full["wrk"].rps / results["submit_empty"]["wrk"].rps
    print("  result:")
    checks.append(
        check(
            "submit rate, 1M vs empty database",
            f"{ratio:.2f} "
            f"({full['wrk'].rps:.0f} / {results['submit_empty']['wrk'].rps:.0f} "
            f"jobs/s)",
            f">= {SUBMIT_RATIO:.2f}",
            ratio >= SUBMIT_RATIO and full["wrk"].errors == 0,
        )
    )
    checks.append(
        check(
            "server RSS after all of it",
            f"{rss:.0f} MB (peak {peak:.0f} MB)",
            f"<= {RSS_MB:g} MB",
            rss <= RSS_MB,
        )
    )
    results["ratio"], results["rss_mb"], results["peak_rss_mb"] = ratio, rss, peak
    results["checks"] = checks
    for key in ("submit_empty", "submit_million"):
        results[key] = {**results[key], "wrk": results[key]["wrk"].as_dict()}
    finish("bench_million", results, checks)


if __name__ == "__main__":
    main()
