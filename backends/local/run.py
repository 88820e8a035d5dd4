"""One started job: its supervisor process, watched until it ends, killed if asked."""

from __future__ import annotations

import contextlib
import math
import os
import signal
import time
from dataclasses import dataclass

import anyio

from gantry.backends.base import Accounting, StatusReport
from gantry.backends.local.limits import Request
from gantry.backends.local.process import pidfd_exited, reap, signal_group, start_ticks
from gantry.backends.local.rundir import KillRecord, RunFiles, final_report

# Without pidfds: check often at first (most jobs are short), then rarely.
_POLL_FIRST, _POLL_MAX = 0.01, 1.0
_SETTLE_CHECKS = 200  # 2 s for a just-started supervisor to record its pid


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
        ticks = start_ticks(pid) if pidfd is None else None
        deadline = math.inf
        if request.walltime is not None:
            # From the job's own start, so an adopted job keeps its deadline.
            remaining = started_at + request.walltime - time.time()
            deadline = anyio.current_time() + remaining
        scope = anyio.CancelScope(deadline=deadline)
        return cls(key, pid, pidfd, ticks, started_at, request, files, scope)

    def exited(self) -> bool:
        if self.pidfd is not None:
            return pidfd_exited(self.pidfd)
        ticks = start_ticks(self.pid)
        return ticks is None or ticks != self.start_ticks

    async def wait(self) -> None:
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
        return self.finish()

    async def _terminate(self, grace: float) -> None:
        """TERM to the job's group; KILL after ``grace`` seconds if it is still there."""
        assert self.kill is not None
        # Until its pid is recorded, the supervisor may not have set its traps,
        # and a TERM would end it without a record: wait for that (briefly).
        for _ in range(_SETTLE_CHECKS):
            if self.files.read_state() is not None or self.exited():
                break
            await anyio.sleep(_POLL_FIRST)
        with contextlib.suppress(OSError):  # it only helps a later server say why
            self.files.write_killed(self.kill)
        self.signalled = True
        signal_group(self.pid, signal.SIGTERM)
        with anyio.move_on_after(grace):
            await self.wait()
        # No await between the check and the kill: the pid is still this job's.
        if not self.exited():
            signal_group(self.pid, signal.SIGKILL)
            await self.wait()

    def finish(self) -> StatusReport:
        """Collect the ended supervisor and say how the job ended, and what it cost."""
        usage = reap(self.pid)
        self.close()
        killed = self.kill if self.signalled else None
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
