"""One started job, watched until it ends, killed if asked.

A job the machine's supervisor started (``link`` set) ends when the
supervisor says so, with its exit code and rusage, and is signalled through
it. Any other (a per-job sh supervisor, a job adopted after a restart whose
supervisor is gone) is watched by its pid, with a pidfd where the kernel has
them.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import anyio

from gantry.backends.base import Accounting, BackendStatus, StatusReport
from gantry.backends.local.limits import Request
from gantry.backends.local.process import (
    is_child,
    pidfd_exited,
    reap,
    signal_group,
    start_ticks,
)
from gantry.backends.local.rundir import KillRecord, RunFiles, RunState, final_report

# Without pidfds: check often at first (most jobs are short), then rarely.
_POLL_FIRST, _POLL_MAX = 0.01, 1.0
_SETTLE_CHECKS = 200  # 2 s for a just-started supervisor to record its pid
_LATE_EXIT_CHECKS = 100  # 1 s for the machine's supervisor to record an exit it saw


class Signaller(Protocol):
    """The machine's supervisor, as far as a run needs it."""

    def kill(self, key: str, sig: int) -> bool: ...


@dataclass(eq=False, slots=True)
class Run:
    """A supervisor we watch: spawned by this server, or adopted after a restart.

    ``pidfd`` is None where the kernel has none; the run then polls /proc,
    telling a reused pid apart by the start time it saw first (``start_ticks``).
    """

    key: str
    pid: int
    pidfd: int | None
    start_ticks: int | None
    started_at: float
    request: Request
    files: RunFiles
    scope: anyio.CancelScope
    kill: KillRecord | None = None
    signalled: bool = False
    #: the most resident memory its processes were seen to hold (memory limits)
    peak_rss: int = 0
    #: the machine's supervisor that started it and will say how it ended
    link: Signaller | None = None
    #: what that supervisor said when the job ended
    end: dict[str, Any] | None = None
    changed: anyio.Event = field(default_factory=anyio.Event)

    @classmethod
    def create(
        cls,
        key: str,
        pid: int,
        pidfd: int | None,
        started_at: float,
        request: Request,
        files: RunFiles,
    ) -> Run:
        ticks = start_ticks(pid) if pidfd is None and pid else None
        deadline = math.inf
        if request.walltime is not None:
            # From the job's own start, so an adopted job keeps its deadline.
            remaining = started_at + request.walltime - time.time()
            deadline = anyio.current_time() + remaining
        scope = anyio.CancelScope(deadline=deadline)
        return cls(key, pid, pidfd, ticks, started_at, request, files, scope)

    @classmethod
    def supervised(
        cls, key: str, link: Signaller, started_at: float, request: Request, files: RunFiles
    ) -> Run:
        """A job the machine's supervisor is starting (its pid comes with ``started``)."""
        run = cls.create(key, 0, None, started_at, request, files)
        run.link = link
        return run

    def ended(self, message: dict[str, Any]) -> None:
        """The machine's supervisor reaped the job."""
        self.end = message
        self.changed.set()

    def orphaned(self, pid: int | None, pidfd: int | None) -> None:
        """Its supervisor went away: from now on the job is watched by its pid."""
        if self.link is None or self.end is not None:
            return
        self.link = None
        if pid:
            self.pid = pid
        self.pidfd = pidfd
        self.start_ticks = start_ticks(self.pid) if pidfd is None and self.pid else None
        self.changed.set()

    def exited(self) -> bool:
        if self.end is not None:
            return True
        if self.link is not None:
            return False
        if self.pidfd is not None:
            return pidfd_exited(self.pidfd)
        if not self.pid:
            return True  # never seen to start
        ticks = start_ticks(self.pid)
        return ticks is None or ticks != self.start_ticks

    async def wait(self) -> None:
        while self.link is not None and self.end is None:
            await self.changed.wait()
            self.changed = anyio.Event()
        if self.end is not None:
            return
        if self.pidfd is not None:
            await anyio.wait_readable(self.pidfd)
            return
        delay = _POLL_FIRST
        while not self.exited():
            await anyio.sleep(delay)
            delay = min(delay * 2, _POLL_MAX)

    def request_kill(self, kill: KillRecord) -> None:
        """Ask the watcher to kill the job; the first reason given wins."""
        if self.kill is None:
            self.kill = kill
            self.scope.cancel()

    async def watch(self, grace: float) -> StatusReport:
        """Wait for the supervisor to end, enforcing walltime and kill requests.

        Cancelled from outside (the server stops), it leaves the job running.
        """
        with self.scope:
            if self.kill is None:
                await self.wait()
        if not self.exited():
            if self.kill is None:  # the scope's deadline: walltime
                self.kill = KillRecord("walltime", self.request.walltime)
            await self._terminate(grace)
        return await self.finish_late()

    async def _terminate(self, grace: float) -> None:
        """TERM to the job's group; KILL after ``grace`` seconds if it is still there."""
        assert self.kill is not None
        # Until its pid is recorded, an sh supervisor may not have set its traps,
        # and a TERM would end it without a record: wait for that (briefly).
        # (The machine's supervisor takes a kill only after the start before it.)
        for _ in range(_SETTLE_CHECKS if self.link is None else 0):
            if self.files.read_state() is not None or self.exited():
                break
            await anyio.sleep(_POLL_FIRST)
        with contextlib.suppress(OSError):  # it only helps a later server say why
            self.files.write_killed(self.kill)
        self.signalled = True
        self._signal(signal.SIGTERM)
        with anyio.move_on_after(grace):
            await self.wait()
        # No await between the check and the kill: the pid is still this job's.
        if not self.exited():
            self._signal(signal.SIGKILL)
            await self.wait()

    def _signal(self, sig: signal.Signals) -> None:
        """Signal the job's group: through its supervisor (which knows whether it
        reaped the job yet), else by the pid we watch."""
        if self.link is not None and self.link.kill(self.key, sig):
            return
        if self.pid:
            signal_group(self.pid, sig)

    async def finish_late(self) -> StatusReport:
        """:meth:`finish`, giving an exit that was seen by pid a moment to be recorded.

        A job whose machine supervisor still runs is recorded just after it
        ended; only one whose supervisor died stays without an exit code.
        """
        if self.end is None and self.link is None:
            for _ in range(_LATE_EXIT_CHECKS):
                state = self.files.read_state()
                if state is None or state.exit_code is not None or is_child(self.pid):
                    break
                await anyio.sleep(_POLL_FIRST)
        return self.finish()

    def finish(self) -> StatusReport:
        """Say how the job ended, and what it cost (collecting our own child)."""
        killed = self.kill if self.signalled else None
        if self.end is not None:
            end = self.end
            self.close()
            if "failed" in end:  # the supervisor could not start it
                reason = f"could not start the job: {end['failed']}"
                return StatusReport(BackendStatus.FAILED, reason=reason, ended_at=time.time())
            ended_at = float(end["at"])
            recorded = RunState(self.pid or int(end["pid"]), int(end["rc"]), ended_at)
            peak = max(int(end["maxrss"]), self.peak_rss)
            cpu = Accounting(float(end["utime"]), float(end["stime"]), max_rss=peak)
            return final_report(recorded, killed, self.started_at, ended_at, cpu)
        usage = reap(self.pid) if self.pid else None
        self.close()
        state = self.files.read_state()
        measured = None
        if usage is not None:  # ru_maxrss is KiB on Linux
            peak = max(usage.ru_maxrss * 1024, self.peak_rss)
            measured = Accounting(cpu_user=usage.ru_utime, cpu_system=usage.ru_stime, max_rss=peak)
        elif state is not None and state.cpu is not None:  # adopted: not our child
            user, system = state.cpu
            measured = Accounting(user, system, max_rss=self.peak_rss or None)
        return final_report(state, killed, self.started_at, time.time(), measured)

    def close(self) -> None:
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None
