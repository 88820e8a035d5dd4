"""Ended jobs from Grid Engine's accounting file, read incrementally.

qmaster appends one colon-separated line per ended job (or array task) to
``$SGE_ROOT/$SGE_CELL/common/accounting`` (accounting(5)). ``qacct -j``
parses that whole file on every call, which grows with every job the cell
ever ran; this reader remembers how far it has read and parses only what was
appended since, so each poll costs a ``stat`` and the new lines. A file that
shrank or was replaced (rotated) is read again from its start.

qmaster buffers the file for ``accounting_flush_time`` (default: the
reporting ``flush_time``, 15 s): a record appears that long after the end
at worst. ``scripts/sge/start.sh`` sets it to 0 for the test cell.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path

from gantry.backends.sge.parsing import SgeJob, parse_accounting_line

#: Records kept for jobs not (yet) tracked: a job can end before its qsub returns.
KEEP_UNCLAIMED = 5_000


def default_path(environ: dict[str, str] | os._Environ[str] = os.environ) -> Path:
    """The cell's accounting file; without SGE_ROOT, Debian's default cell (as its
    qsub wrapper assumes)."""
    root = environ.get("SGE_ROOT") or "/var/lib/gridengine"
    return Path(root) / (environ.get("SGE_CELL") or "default") / "common" / "accounting"


class AccountingUnavailable(OSError):
    """The accounting file cannot be read from this host (qacct must do)."""


class AccountingFile:
    """The accounting file's new records since the last read (blocking I/O: run in a thread)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset: int | None = None  # None: not started
        self._inode: int | None = None
        self._partial = b""
        #: job number -> its records nobody tracked when they were read
        self._unclaimed: OrderedDict[str, list[SgeJob]] = OrderedDict()

    def start(self) -> None:
        """Skip what the file holds now: older ends are qacct's (after a restart)."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self._check_folder()
            self.offset, self._inode = 0, None
            return
        except OSError as exc:
            raise AccountingUnavailable(f"{self.path}: {exc.strerror}") from None
        self.offset, self._inode = st.st_size, st.st_ino

    def read(self) -> list[SgeJob]:
        """Every record appended since the last read (complete lines only)."""
        if self.offset is None:
            self.start()
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self._check_folder()
            return []
        except OSError as exc:
            raise AccountingUnavailable(f"{self.path}: {exc.strerror}") from None
        offset = self.offset or 0
        if st.st_ino != self._inode or st.st_size < offset:
            offset, self._partial = 0, b""  # rotated or truncated: a new file
            self._inode = st.st_ino
        if st.st_size == offset:
            self.offset = offset
            return []
        try:
            with open(self.path, "rb") as file:
                file.seek(offset)
                data = file.read()
        except OSError as exc:
            raise AccountingUnavailable(f"{self.path}: {exc.strerror}") from None
        self.offset = offset + len(data)
        complete, _, self._partial = (self._partial + data).rpartition(b"\n")
        jobs = []
        for line in complete.decode(errors="replace").splitlines():
            job = parse_accounting_line(line)
            if job is not None:
                jobs.append(job)
        return jobs

    def keep(self, job: SgeJob) -> None:
        """Remember a record nobody tracks (yet); the oldest jobs' are forgotten first."""
        self._unclaimed.setdefault(job.job_id, []).append(job)
        while len(self._unclaimed) > KEEP_UNCLAIMED:
            self._unclaimed.popitem(last=False)

    def claim(self, job_id: str) -> list[SgeJob]:
        """The records of ``job_id`` read before it was tracked (its tasks', for an array)."""
        return self._unclaimed.pop(job_id, [])

    def _check_folder(self) -> None:
        # No file yet is normal (no job ended in this cell); no folder means the
        # cell's common directory is not visible from here.
        if not self.path.parent.is_dir():
            raise AccountingUnavailable(f"{self.path.parent} is not a directory on this host")
