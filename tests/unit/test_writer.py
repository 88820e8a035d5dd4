"""The group-commit writer: batching, isolation of a failing operation."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from sqlalchemy import Connection, text

from gantry import db
from gantry.jobs.writer import Writer, WriterClosed


async def test_concurrent_operations_share_transactions_and_a_bad_one_fails_alone(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    engine = db.make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (v INTEGER UNIQUE)"))
    writer = Writer(engine)
    results: dict[int, object] = {}
    commits: list[int] = []

    async def insert(value: int) -> None:
        def op(conn: Connection) -> int:
            conn.execute(text("INSERT INTO t (v) VALUES (:v)"), {"v": value})
            return value

        try:
            results[value] = await writer.execute(op, commits.append)
        except Exception as exc:
            results[value] = exc

    async with anyio.create_task_group() as tg:
        await tg.start(writer.run)
        async with anyio.create_task_group() as clients:
            for value in [*range(50), 7]:  # the second 7 violates UNIQUE
                clients.start_soon(insert, value)
        tg.cancel_scope.cancel()
    with engine.connect() as conn:
        stored = sorted(v for (v,) in conn.execute(text("SELECT v FROM t")))
    engine.dispose()
    assert stored == list(range(50))
    failures = [r for r in results.values() if isinstance(r, Exception)]
    assert len(failures) == 1 and "UNIQUE" in str(failures[0])
    assert sorted(commits) == list(range(50))


async def test_a_writer_that_is_not_running_refuses_work(tmp_path: Path) -> None:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'w.db'}")
    with pytest.raises(WriterClosed):
        await Writer(engine).execute(lambda conn: None)
    engine.dispose()
