"""The yardstick: a minimal FastAPI + SQLite app, run like gantry (one uvicorn worker).

One row inserted and committed per submit (WAL, synchronous=NORMAL, as
gantry's database), a batch in one executemany and one commit, one row read
per GET. The body is validated by a small
pydantic model that accepts what gantry's submit accepts. No group commit,
no engine, no events: what "one FastAPI process with SQLite" does on this
machine, so gantry's submit path can be compared with it in the same run.

    BASELINE_DB=/tmp/b.db uvicorn --app-dir bench baseline_app:app
"""

from __future__ import annotations

import json
import os
import sqlite3
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, ConfigDict, Field

DB = os.environ.get("BASELINE_DB", "baseline.db")

conn = sqlite3.connect(DB, check_same_thread=False, isolation_level=None)
conn.execute("PRAGMA journal_mode=WAL")
conn.execute("PRAGMA synchronous=NORMAL")
conn.execute(
    "CREATE TABLE IF NOT EXISTS job (id INTEGER PRIMARY KEY, name TEXT NOT NULL, "
    "spec TEXT NOT NULL, depends_on TEXT NOT NULL, state TEXT NOT NULL, created_at TEXT NOT NULL)"
)


class JobIn(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str = "job"
    spec: str = Field(min_length=1)
    depends_on: list[int | str] = Field(default_factory=list)


app = FastAPI()


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/api/v1/jobs", status_code=201)
async def submit(job: JobIn) -> dict[str, Any]:
    now = datetime.now(UTC).isoformat()
    conn.execute("BEGIN IMMEDIATE")
    cur = conn.execute(
        "INSERT INTO job (name, spec, depends_on, state, created_at) VALUES (?, ?, ?, ?, ?)",
        (job.name, job.spec, json.dumps(job.depends_on), "queued", now),
    )
    conn.execute("COMMIT")
    return {
        "id": cur.lastrowid,
        "name": job.name,
        "spec": job.spec,
        "depends_on": job.depends_on,
        "state": "queued",
        "created_at": now,
    }


class JobsIn(BaseModel):
    jobs: list[JobIn] = Field(min_length=1)


@app.post("/api/v1/jobs/batch", status_code=201)
async def submit_batch(batch: JobsIn) -> dict[str, Any]:
    """The batch in one transaction, one executemany; ids and names back."""
    now = datetime.now(UTC).isoformat()
    conn.execute("BEGIN IMMEDIATE")
    first = conn.execute("SELECT coalesce(max(id), 0) + 1 FROM job").fetchone()[0]
    conn.executemany(
        "INSERT INTO job (id, name, spec, depends_on, state, created_at) VALUES (?, ?, ?, ?, ?, ?)",
        [
            (first + k, job.name, job.spec, json.dumps(job.depends_on), "queued", now)
            for k, job in enumerate(batch.jobs)
        ],
    )
    conn.execute("COMMIT")
    return {
        "jobs": [
            {"id": first + k, "name": job.name, "state": "queued"}
            for k, job in enumerate(batch.jobs)
        ]
    }


@app.get("/api/v1/jobs/{job_id}")
async def show(job_id: int) -> dict[str, Any]:
    row = conn.execute(
        "SELECT id, name, spec, depends_on, state, created_at FROM job WHERE id = ?", (job_id,)
    ).fetchone()
    if row is None:
        raise HTTPException(404, f"job {job_id} does not exist")
    return {
        "id": row[0],
        "name": row[1],
        "spec": row[2],
        "depends_on": json.loads(row[3]),
        "state": row[4],
        "created_at": row[5],
    }
