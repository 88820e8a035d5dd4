"""A job's files under ``<data_dir>/runs/``: what survives the server.

For the job key ``12.1``:

- ``12.1.sh``: the job's spec, written by the server just before it starts;
- ``12.1.state``: the supervisor's pid on the first line (its first act), then
  the job's exit code on the second (its last); a line counts once it ends in
  a newline, and the file's mtime is then the job's end;
- ``12.1.killed``: ``cancel`` or ``walltime <seconds>``, written by the server
  just before it signals the job, so a later server knows why the job ended.

Flat files, not a directory per job, and one state file, not one per fact:
creating an inode is the dearest thing a job does to the file system.
"""

from __future__ import annotations

import os
import re
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from gantry.backends.base import BackendStatus, StatusReport
from gantry.backends.options import format_walltime

_KEY = re.compile(r"[0-9]+\.[0-9]+")
KILLED_BY_SIGKILL = 128 + signal.SIGKILL  # what a shell reports for a SIGKILLed command
SUPERVISOR_DIED = "killed (supervisor died without recording an exit code)"


def is_key(ref: str) -> bool:
    """Whether ``ref`` looks like a job key, so it is safe to use in a file name."""
    return _KEY.fullmatch(ref) is not None


@dataclass(frozen=True, slots=True)
class RunState:
    """What the supervisor recorded: its pid, then (once the job ended) the exit code."""

    pid: int
    exit_code: int | None = None
    ended_at: float | None = None  # the state file's mtime, once exit_code is in


@dataclass(frozen=True, slots=True)
class KillRecord:
    why: Literal["cancel", "walltime"]
    walltime: int | None = None

    def text(self) -> str:
        return "cancel\n" if self.why == "cancel" else f"walltime {self.walltime}\n"


def parse_state(text: str, mtime: float | None = None) -> RunState | None:
    """The state, or None before the pid line is complete."""
    lines = text.split("\n")
    if len(lines) < 2 or not lines[0].isdigit():
        return None
    pid = int(lines[0])
    # A second line without its newline is still being written.
    if len(lines) >= 3 and lines[1].lstrip("-").isdigit():
        return RunState(pid, int(lines[1]), mtime)
    return RunState(pid)


def parse_killed(text: str) -> KillRecord | None:
    fields = text.split()
    if fields == ["cancel"]:
        return KillRecord("cancel")
    if len(fields) == 2 and fields[0] == "walltime" and fields[1].isdigit():
        return KillRecord("walltime", int(fields[1]))
    return None


def final_report(
    state: RunState | None,
    killed: KillRecord | None,
    started_at: float | None = None,
    ended_at: float | None = None,
) -> StatusReport:
    """How a job ended. ``killed`` only if the server did signal it; ``ended_at``
    defaults to the time the supervisor recorded the exit, if it did.
    """
    code = state.exit_code if state is not None else None
    if ended_at is None and state is not None:
        ended_at = state.ended_at
    if killed is not None:
        if code is None:
            code = KILLED_BY_SIGKILL
        if killed.why == "cancel":
            return StatusReport(
                BackendStatus.CANCELLED, code, "cancelled", "cancelled", started_at, ended_at
            )
        reason = f"walltime {format_walltime(killed.walltime or 0)} exceeded; killed"
        return StatusReport(BackendStatus.FAILED, code, reason, "walltime", started_at, ended_at)
    if code is None:
        return StatusReport(
            BackendStatus.FAILED, None, SUPERVISOR_DIED, "no exit code", started_at, ended_at
        )
    if code == 0:
        return StatusReport(BackendStatus.COMPLETED, 0, None, "exit 0", started_at, ended_at)
    reason = f"exited with code {code}"
    return StatusReport(BackendStatus.FAILED, code, reason, f"exit {code}", started_at, ended_at)


class RunFiles:
    """The files of one job attempt; every read tolerates a file not there yet."""

    __slots__ = ("base",)

    def __init__(self, runs: Path, key: str) -> None:
        self.base = f"{runs}/{key}"  # a str: these paths are built on every launch

    @property
    def script(self) -> str:
        return self.base + ".sh"

    @property
    def state_path(self) -> str:
        return self.base + ".state"

    def launched(self) -> bool:
        """Whether a server got as far as starting this job (it writes the script first)."""
        return os.path.exists(self.script)

    def write_script(self, spec: str) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
        fd = os.open(self.script, flags, 0o644)
        try:
            data = memoryview(spec.encode())
            while data:
                data = data[os.write(fd, data) :]
        finally:
            os.close(fd)

    def read_state(self) -> RunState | None:
        try:
            with open(self.state_path, "rb") as file:
                text = file.read().decode(errors="replace")
                mtime = os.fstat(file.fileno()).st_mtime
        except FileNotFoundError:
            return None
        return parse_state(text, mtime)

    def read_killed(self) -> KillRecord | None:
        try:
            text = Path(self.base + ".killed").read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        return parse_killed(text)

    def write_killed(self, kill: KillRecord) -> None:
        Path(self.base + ".killed").write_text(kill.text(), encoding="utf-8")
