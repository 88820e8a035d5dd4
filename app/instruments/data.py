"""Durable storage of instrument data: append-only JSON lines, one file per role.

``<data_dir>/data/<job id>/<role>.jsonl`` (later attempts:
``<job id>.<attempt>/``), one sample per line::

    {"uts": 1795308950.22, "task": 0, "task_name": "warm up", "technique": "ramp",
     "values": {"temperature": 21.0}, "units": {"temperature": "degC"}}

Runners hand drained samples to :meth:`DataStore.append` (no I/O on the
loop); one flusher serialises and appends everything pending on a worker
thread, flushing every batch (readers see it at once) and fsyncing at most
once a second (and when a job ends). Nothing written is ever rewritten.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import anyio
from anyio.abc import TaskStatus

from gantry.drivers.interface_2_0 import Sample

log = logging.getLogger(__name__)

FSYNC_EVERY = 1.0
META_FILE = "meta.json"


def job_data_dir(data_dir: Path, job_id: int, attempt: int) -> Path:
    """Built from integers only, so nothing a user sends becomes a path."""
    base = data_dir / "data"
    if attempt <= 1:
        return base / str(int(job_id))
    return base / f"{int(job_id)}.{int(attempt)}"


def role_file(directory: Path, role: str) -> Path:
    return directory / f"{role}.jsonl"


@dataclass(frozen=True, slots=True)
class TaskMeta:
    """What every line of one task repeats; its JSON is made once."""

    index: int
    name: str | None
    technique: str
    fragment: str = field(init=False)

    def __post_init__(self) -> None:
        text = json.dumps({"task": self.index, "task_name": self.name, "technique": self.technique})
        object.__setattr__(self, "fragment", text[1:-1])


Batch = list[tuple[TaskMeta, Sequence[Sample]]]


def _default(value: object) -> Any:
    return str(value)


def encode(meta: TaskMeta, samples: Sequence[Sample]) -> bytes:
    units_cache: dict[int, str] = {}
    dumps = json.dumps
    lines = []
    for s in samples:
        units = units_cache.get(id(s.units))
        if units is None:
            units = units_cache[id(s.units)] = dumps(dict(s.units))
        values = dumps(s.values, default=_default)
        lines.append(f'{{"uts":{s.uts!r},{meta.fragment},"values":{values},"units":{units}}}\n')
    return "".join(lines).encode()


class DataStore:
    """Appends the samples of every running job; one writer thread at a time."""

    def __init__(self) -> None:
        self._pending: dict[Path, Batch] = {}
        self._closing: list[tuple[list[Path], anyio.Event]] = []
        self._wake = anyio.Event()
        self._running = False
        self._limiter = anyio.CapacityLimiter(1)
        # Touched only on the writer thread (under the limiter).
        self._files: dict[Path, IO[bytes]] = {}
        self._dirty: set[Path] = set()
        self._synced_at = time.monotonic()
        #: samples written, for status and benchmarks
        self.written = 0

    def append(self, path: Path, meta: TaskMeta, samples: Sequence[Sample]) -> None:
        """Queue samples for ``path``; returns at once."""
        if samples:
            self._pending.setdefault(path, []).append((meta, samples))
            self._wake.set()

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        self._running = True
        task_status.started()
        try:
            while True:
                await self._wake.wait()
                self._wake = anyio.Event()
                await self._flush()
        finally:
            self._running = False
            with anyio.CancelScope(shield=True):
                await self._flush()
                # Jobs still running at shutdown keep their files open: close them.
                await anyio.to_thread.run_sync(self._close_all, limiter=self._limiter)

    async def close(self, paths: Sequence[Path]) -> None:
        """Return once everything appended for ``paths`` is written, fsynced and closed.

        Goes through the flusher's queue, so it also waits for a batch that
        is being written right now.
        """
        done = anyio.Event()
        self._closing.append((list(paths), done))
        if self._running:
            self._wake.set()
            await done.wait()
        else:  # shutting down: the flusher is gone, write here
            await self._flush()

    async def _flush(self) -> None:
        pending, self._pending = self._pending, {}
        closing, self._closing = self._closing, []
        try:
            if pending or closing:
                paths = [p for ps, _ in closing for p in ps]
                await anyio.to_thread.run_sync(self._write, pending, paths, limiter=self._limiter)
        finally:
            # Even if cancelled: the thread finished its write before we got here.
            for _, done in closing:
                done.set()

    # -- on the writer thread -------------------------------------------------

    def _file(self, path: Path) -> IO[bytes]:
        handle = self._files.get(path)
        if handle is None:
            path.parent.mkdir(parents=True, exist_ok=True)
            handle = self._files[path] = path.open("ab")
        return handle

    def _write(self, pending: Mapping[Path, Batch], closing: Sequence[Path]) -> None:
        for path, batch in pending.items():
            try:
                handle = self._file(path)
                for meta, samples in batch:
                    handle.write(encode(meta, samples))
                    self.written += len(samples)
                handle.flush()
                self._dirty.add(path)
            except OSError:
                log.exception("could not store data in %s", path)
        if closing:
            self._sync(closing)
            for path in closing:
                opened = self._files.pop(path, None)
                if opened is not None:
                    opened.close()
        if time.monotonic() - self._synced_at >= FSYNC_EVERY:
            self._sync(list(self._dirty))
            self._synced_at = time.monotonic()

    def _close_all(self) -> None:
        self._sync(list(self._files))
        while self._files:
            _, handle = self._files.popitem()
            handle.close()

    def _sync(self, paths: Sequence[Path]) -> None:
        for path in paths:
            handle = self._files.get(path)
            if handle is not None:
                try:
                    os.fsync(handle.fileno())
                except OSError:
                    log.exception("could not fsync %s", path)
            self._dirty.discard(path)


def write_meta(directory: Path, meta: Mapping[str, Any]) -> None:
    """The job's and components' metadata, for exports (written once, at start)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / META_FILE).write_text(json.dumps(meta, indent=2, default=str) + "\n")


def read_meta(directory: Path) -> dict[str, Any]:
    try:
        data = json.loads((directory / META_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
