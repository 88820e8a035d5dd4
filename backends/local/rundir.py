"""A job's files under ``<data_dir>/runs/``: what survives the server.

For the job key ``12.1``:

- ``12.1.sh``: the job's spec, written by the server just before it starts;
- ``12.1.state``: the job's pid on the first line (the machine's supervisor
  writes it once it started ``bash 12.1.sh``; a per-job sh supervisor of an
  earlier version wrote its own pid, its first act), then
  the job's exit code on the second (its last); a line counts once it ends in
  a newline, and the file's mtime is then the job's end. After the exit code,
  the output of sh's ``times``: the supervisor's own CPU time, then that of
  the job's process tree (every descendant that was waited for), so a later
  server can still account for a job it did not start;
- ``12.1.killed``: ``cancel``, ``walltime <seconds>`` or ``memory <limit
  bytes> <seen bytes>``, written by the server just before it signals the
  job, so a later server knows why the job ended.

Flat files, not a directory per job, and one state file, not one per fact:
creating an inode is the dearest thing a job does to the file system.
"""

from __future__ import annotations

import os
import re
import signal
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from gantry.backends.base import Accounting, BackendStatus, StatusReport
from gantry.backends.options import format_memory_mb, format_walltime

_KEY = re.compile(r"[0-9]+\.[0-9]+(?:_[0-9]+)?")  # a job's key, or a task's (<key>_<index>)
# One `times` line: user and system time, e.g. "0m1.250000s 0m0.040000s".
_TIMES = re.compile(r"([0-9]+)m([0-9.]+)s ([0-9]+)m([0-9.]+)s")
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
    #: (user, system) CPU seconds of the job's process tree, from `times`
    cpu: tuple[float, float] | None = None
    #: the state file's mtime (while the job runs: when its pid was recorded)
    written_at: float | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class KillRecord:
    why: Literal["cancel", "walltime", "memory"]
    walltime: int | None = None
    #: memory: the job's limit, and the resident memory its processes held then
    memory: int | None = None
    seen: int | None = None

    def text(self) -> str:
        if self.why == "memory":
            return f"memory {self.memory} {self.seen}\n"
        return "cancel\n" if self.why == "cancel" else f"walltime {self.walltime}\n"

    def reason(self) -> str:
        if self.why == "memory":
            return (
                f"memory limit {format_memory_mb(self.memory or 0)} exceeded: its processes "
                f"held {format_memory_mb(self.seen or 0)}; killed"
            )
        return f"walltime {format_walltime(self.walltime or 0)} exceeded; killed"


def parse_state(text: str, mtime: float | None = None) -> RunState | None:
    """The state, or None before the pid line is complete."""
    lines = text.split("\n")
    if len(lines) < 2 or not lines[0].isdigit():
        return None
    pid = int(lines[0])
    # A second line without its newline is still being written.
    if len(lines) >= 3 and lines[1].lstrip("-").isdigit():
        # times: the shell's own line, then its children's (the job's tree).
        tree = _TIMES.fullmatch(lines[3].strip()) if len(lines) >= 5 else None
        cpu = None
        if tree is not None:
            m_user, s_user, m_sys, s_sys = tree.groups()
            cpu = (int(m_user) * 60 + float(s_user), int(m_sys) * 60 + float(s_sys))
        return RunState(pid, int(lines[1]), mtime, cpu, mtime)
    return RunState(pid, written_at=mtime)


def parse_killed(text: str) -> KillRecord | None:
    fields = text.split()
    if fields == ["cancel"]:
        return KillRecord("cancel")
    if len(fields) == 2 and fields[0] == "walltime" and fields[1].isdigit():
        return KillRecord("walltime", int(fields[1]))
    if len(fields) == 3 and fields[0] == "memory" and fields[1].isdigit() and fields[2].isdigit():
        return KillRecord("memory", memory=int(fields[1]), seen=int(fields[2]))
    return None


def final_report(
    state: RunState | None,
    killed: KillRecord | None,
    started_at: float | None = None,
    ended_at: float | None = None,
    measured: Accounting | None = None,
) -> StatusReport:
    """How a job ended, with what it cost. ``killed`` only if the server did
    signal it; ``ended_at`` defaults to the time the supervisor recorded the
    exit, if it did. ``measured`` is what the server measured itself (wait4);
    without it, the CPU times the supervisor recorded are used.
    """
    report = _ending(state, killed, started_at, ended_at)
    accounting = measured
    if accounting is None and state is not None and state.cpu is not None:
        accounting = Accounting(cpu_user=state.cpu[0], cpu_system=state.cpu[1])
    if report.started_at is not None and report.ended_at is not None:
        wall = max(0.0, report.ended_at - report.started_at)
        accounting = replace(accounting or Accounting(), wall=wall)
    return replace(report, accounting=accounting) if accounting is not None else report


def _ending(
    state: RunState | None,
    killed: KillRecord | None,
    started_at: float | None,
    ended_at: float | None,
) -> StatusReport:
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
        return StatusReport(
            BackendStatus.FAILED, code, killed.reason(), killed.why, started_at, ended_at
        )
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
