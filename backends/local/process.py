"""Starting, recognising and signalling a job's supervisor: a few lines of sh.

The fallback of the machine's job supervisor (:mod:`gantry.backends.local.daemon`),
used when that cannot be started, and what jobs of older servers run under;
recognising a job's process covers both.

This supervisor is the job's session leader. It records its pid, runs
``bash <key>.sh`` in the foreground, and records the exit code, so the job
outlives the server and a later server learns how it ended. It traps
TERM/INT/HUP: a TERM to the job's process group kills the job (traps are reset
in children) while the supervisor lives on to record 143.

The server opens the job's log files and hands them over as the supervisor's
stdout and stderr, which the job inherits: a log it cannot write fails the job
with a clear reason before anything starts.

It is plain POSIX sh, every step a builtin, run by dash where there is one:
dash starts in a fraction of bash's time (measured here: 1.0 ms of CPU against
1.6 ms; an exec of /bin/true is 0.9 ms), and the supervisor is paid for on
every job. dash also ignores what a job's environment says to bash
(``BASH_ENV``, exported functions, ``SHELLOPTS``), which the job's own bash
still honours.
"""

from __future__ import annotations

import contextlib
import errno
import os
import resource
import select
import shutil
import signal
import time
from collections.abc import Mapping

from gantry.backends.local.daemon import RESET_SIGNALS

# $1 file base (runs/<key>), $2 bash, $3 working dir; stdout and stderr are the
# job's logs already. A signal that came before the job started (its group had
# no job yet) stops it from starting, with the code the job would have had.
# `kill 0` at the end ends what the job left behind in its group, as Slurm does.
# `times` (a builtin) records the CPU time of the job's process tree after the
# exit code, for a server that did not start the job and cannot wait4 it.
SUPERVISOR = """trap 'x=143' TERM; trap 'x=130' INT; trap 'x=129' HUP
echo "$$" > "$1.state"
if ! cd -- "$3"; then
  rc=1
elif [ -n "$x" ]; then
  rc=$x
else
  "$2" "$1.sh"
  rc=$?
fi
kill -TERM 0
{ echo "$rc"; times; } >> "$1.state"
"""
SUPERVISOR_NAME = "gantry-supervisor"  # its $0, so `ps` says what it is
# A start time is known to a clock tick (10 ms), a file's mtime to the kernel's tick.
_CLOCK_SLACK = 0.5


def find_shells() -> tuple[str, str]:
    """(supervisor shell, job shell): dash if installed, else /bin/sh; and bash."""
    bash = shutil.which("bash") or "/bin/bash"
    return shutil.which("dash") or "/bin/sh", bash


def spawn_supervisor(
    shell: str,
    bash: str,
    base: str,
    working_dir: str,
    env: Mapping[str, str],
    stdio: tuple[int, int, int],
) -> int:
    """Start the supervisor in a new session; returns its pid (= the job's group id).

    ``stdio`` are the descriptors to give it (and so the job) as 0, 1 and 2.
    Paths must be absolute: the supervisor changes directory first.
    posix_spawn (vfork-like) keeps the server's own cost per job small.
    """
    argv = ["sh", "-c", SUPERVISOR, SUPERVISOR_NAME, base, bash, working_dir]
    return os.posix_spawn(
        shell,
        argv,
        env,
        file_actions=[(os.POSIX_SPAWN_DUP2, fd, target) for target, fd in enumerate(stdio)],
        setsid=True,
        setsigdef=RESET_SIGNALS,
        setsigmask=(),
    )


class PidfdUnsupported(Exception):
    """The kernel (or a seccomp filter) has no pidfd_open."""


def open_pidfd(pid: int) -> int:
    """A pidfd, readable once the process ends; ProcessLookupError if it is gone."""
    try:
        return os.pidfd_open(pid)
    except AttributeError:
        raise PidfdUnsupported from None
    except OSError as exc:
        if exc.errno in (errno.ENOSYS, errno.EPERM, errno.EINVAL):
            raise PidfdUnsupported from None
        raise


def pidfd_exited(pidfd: int) -> bool:
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    return bool(poller.poll(0))


def start_ticks(pid: int) -> int | None:
    """When ``pid`` started (/proc/<pid>/stat field 22), or None if it is gone or a zombie."""
    # comm (field 2) may hold spaces and parentheses: split after its last ')'.
    fields = _stat_fields(pid)
    return None if fields is None or fields[0] in (b"Z", b"X") else int(fields[19])


def started_at(ticks: int) -> float:
    """The epoch time of a process start given in clock ticks since boot."""
    booted = time.time() - time.clock_gettime(time.CLOCK_BOOTTIME)
    return booted + ticks / os.sysconf("SC_CLK_TCK")


def supervisor_started_at(pid: int, base: str, written_at: float | None = None) -> float | None:
    """When the job at ``base`` started, if ``pid`` is still it and runs.

    ``pid`` is either a per-job sh supervisor (its command line names the job's
    files) or, started by the machine's supervisor, the job's own bash: the
    leader of a session of its own that started before its pid was recorded
    (``written_at``, the state file's mtime), which a process that got the pid
    later cannot have, whatever it execs.
    """
    stat = _stat_fields(pid)
    if stat is None or stat[0] in (b"Z", b"X"):
        return None
    ticks = int(stat[19])
    if is_supervisor_of(pid, base):
        return started_at(ticks)
    if written_at is None or int(stat[3]) != pid:
        return None
    began = started_at(ticks)
    return began if began <= written_at + _CLOCK_SLACK else None


def _stat_fields(pid: int) -> list[bytes] | None:
    """/proc/<pid>/stat from field 3 (state) on, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as file:
            text = file.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return text[text.rindex(b")") + 2 :].split()


def is_supervisor_of(pid: int, base: str) -> bool:
    """Whether ``pid`` is the live supervisor of the job whose files are at ``base``.

    Its command line names that job's files, so a process that got the pid
    after the supervisor died is never taken for it (nor is a zombie: empty).
    A job the machine's supervisor started is ``bash <base>.sh`` itself.
    """
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as file:
            argv = file.read().split(b"\0")
    except (FileNotFoundError, ProcessLookupError):
        return False
    if len(argv) == 3 and argv[1] == os.fsencode(base + ".sh"):
        return True
    return len(argv) > 4 and argv[3] == SUPERVISOR_NAME.encode() and argv[4] == os.fsencode(base)


def find_supervisor(base: str) -> int | None:
    """The pid of the supervisor of the job at ``base``, by a scan of /proc.

    Only for the moment between a spawn and the supervisor's first line, when
    its pid is not yet recorded (a server that died just then, say).
    """
    with os.scandir("/proc") as entries:
        for entry in entries:
            if entry.name.isdigit() and is_supervisor_of(int(entry.name), base):
                return int(entry.name)
    return None


def reap(pid: int) -> resource.struct_rusage | None:
    """Collect the exit of a child of ours, with what its process tree used.

    wait4's rusage counts the supervisor and every descendant that was waited
    for (the job's bash waits for its commands): the job's whole tree. None for
    a process that is not our child (adopted after a restart).
    """
    try:
        found, _, usage = os.wait4(pid, os.WNOHANG)
    except ChildProcessError:
        return None
    return usage if found == pid else None


def is_child(pid: int) -> bool:
    """Whether ``pid`` is a child of ours (a per-job supervisor we spawned)."""
    try:
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return False
    return True


def signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)
