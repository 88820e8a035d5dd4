"""Name-prefix pages: the newest-ids window and the name index agree."""

from __future__ import annotations

from pathlib import Path

import pytest

from gantry import db
from gantry.jobs.store import JobFilter, NewJob, insert_jobs, list_jobs
from gantry.jobs.store import read as store


def pages(conn: object, prefix: str, limit: int) -> list[int]:
    seen: list[int] = []
    before = None
    while True:
        rows = list_jobs(conn, JobFilter(name_prefix=prefix), before_id=before, limit=limit)  # type: ignore[arg-type]
        seen += [r["id"] for r in rows]
        if len(rows) < limit:
            return seen
        before = rows[-1]["id"]


@pytest.mark.parametrize("window", [10, 50, 10_000])
def test_common_and_rare_prefixes_page_the_same_through_window_or_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, window: int
) -> None:
    url = f"sqlite:///{tmp_path / 'g.db'}"
    db.upgrade(url)
    engine = db.make_engine(url)
    names = [f"align_{i}" if i % 3 else f"qc_{i}" for i in range(300)] + ["rare_1", "rare_2"]
    with engine.begin() as conn:
        insert_jobs(conn, [NewJob(name=n, backend="local", spec="true") for n in names])
    monkeypatch.setattr(store, "PREFIX_WINDOW", window)
    with engine.connect() as conn:
        for prefix in ("align", "qc_", "rare", "nothing"):
            expected = sorted(
                (i + 1 for i, n in enumerate(names) if n.startswith(prefix)), reverse=True
            )
            assert pages(conn, prefix, 7) == expected, prefix
    engine.dispose()
