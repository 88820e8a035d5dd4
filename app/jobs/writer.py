"""Group commit: every database write of the server goes through one writer.

Concurrent callers hand over small operations (functions of a SQLAlchemy
``Connection``); the writer runs whatever has piled up in ONE transaction on
a worker thread and resolves each caller's future. A single writer means
SQLite never sees two writers ("database is locked" cannot happen inside the
server) and one commit serves many requests: that is what lets one process
accept thousands of submissions a second.

If a batch fails, it is rolled back and its operations run again one per
transaction, so one bad operation fails only its own caller.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio
from anyio.abc import TaskStatus
from sqlalchemy import Connection, Engine

from gantry.jobs.meter import Meter, NoMeter

log = logging.getLogger(__name__)

T = TypeVar("T")
Operation = Callable[[Connection], T]
MAX_BATCH = 2000


@dataclass(slots=True)
class _Pending:
    operation: Operation[Any]
    future: asyncio.Future[Any]
    on_commit: Callable[[Any], None] | None = None
    result: Any = field(default=None)


class WriterClosed(RuntimeError):
    """The server is shutting down; nothing more is written."""


class Writer:
    """Runs write operations in shared transactions on one thread."""

    def __init__(self, engine: Engine, meter: Meter | None = None) -> None:
        self._engine = engine
        self._meter: Meter = meter or NoMeter()
        self._queue: asyncio.Queue[_Pending] | None = None
        self._closed = False

    async def execute(
        self, operation: Operation[T], on_commit: Callable[[T], None] | None = None
    ) -> T:
        """Run ``operation`` in the next transaction; return its result once committed.

        ``on_commit`` runs on the event loop right after the commit, before any
        caller of that batch resumes: the engine uses it to learn new jobs
        before anyone can act on their ids.
        """
        if self._queue is None or self._closed:
            raise WriterClosed("the database writer is not running")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Pending(operation, future, on_commit))
        return await future

    @property
    def depth(self) -> int:
        """Operations waiting for the next transaction."""
        return self._queue.qsize() if self._queue is not None else 0

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        self._queue = asyncio.Queue()
        task_status.started()
        try:
            while True:
                batch = [await self._queue.get()]
                while len(batch) < MAX_BATCH and not self._queue.empty():
                    batch.append(self._queue.get_nowait())
                await self._commit(batch)
        finally:
            self._closed = True
            # Shutdown: flush what was handed over, then refuse more.
            pending = []
            while self._queue is not None and not self._queue.empty():
                pending.append(self._queue.get_nowait())
            if pending:
                with anyio.CancelScope(shield=True):
                    await self._commit(pending)

    async def _commit(self, batch: list[_Pending]) -> None:
        try:
            await anyio.to_thread.run_sync(self._run_batch, batch)
        except Exception:
            if len(batch) == 1:
                self._settle(batch[0], failed=True)
                return
            log.warning("write batch of %d failed; retrying one by one", len(batch))
            for item in batch:
                await self._commit([item])
            return
        for item in batch:
            self._settle(item, failed=False)

    def _run_batch(self, batch: list[_Pending]) -> None:
        try:
            started = time.perf_counter()
            with self._engine.begin() as conn:
                for item in batch:
                    item.result = item.operation(conn)
            self._meter.committed(time.perf_counter() - started)
        except Exception as exc:
            if len(batch) == 1:
                batch[0].result = exc
            raise

    def _settle(self, item: _Pending, *, failed: bool) -> None:
        if failed:
            exc = (
                item.result
                if isinstance(item.result, BaseException)
                else RuntimeError("write failed")
            )
            if not item.future.done():
                item.future.set_exception(exc)
            return
        # The hook runs even if the caller was cancelled: the write happened.
        if item.on_commit is not None:
            try:
                item.on_commit(item.result)
            except Exception:
                log.exception("on_commit hook failed")
        if not item.future.done():
            item.future.set_result(item.result)
