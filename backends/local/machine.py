"""The local backend's use of the machine's supervisor (:mod:`gantry.backends.local.daemon`).

:class:`Machine` connects to it (starting one if none runs), routes what it
says to the runs it concerns, and, if it goes away, hands its jobs to
watching by pid and connects to a new one for the next jobs. Without any
(it could not be started) the backend falls back to an sh supervisor per job.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from anyio.abc import TaskGroup

from gantry.backends.local.ondisk import find_state
from gantry.backends.local.process import supervisor_started_at
from gantry.backends.local.run import Run
from gantry.backends.local.rundir import RunFiles
from gantry.backends.local.supervisor import Handlers, SupervisorLink

log = logging.getLogger(__name__)


class Machine:
    def __init__(
        self,
        runs_dir: str,
        running: Mapping[str, Run],
        open_pidfd: Callable[[int], int | None],
        group: Callable[[], TaskGroup | None],
    ) -> None:
        self._runs_dir = runs_dir
        self._running = running
        self._open_pidfd = open_pidfd
        self._group = group  # the backend's task group, while it runs
        self.link: SupervisorLink | None = None
        self._closed = False

    async def connect(self) -> None:
        """Connect to (or start) the machine's supervisor; without one, sh per job."""
        handlers = Handlers(self._started, self._failed, self._ended, self._lost)
        link = SupervisorLink(self._runs_dir, handlers)
        try:
            await link.connect()
        except OSError as exc:
            log.warning("local: no job supervisor (%s); one sh supervisor per job", exc)
            return
        self.link = link
        self._spawn(link.serve)

    def start(
        self,
        key: str,
        files: RunFiles,
        bash: str,
        working_dir: str,
        env: Mapping[str, str],
        logs: tuple[int, int],
    ) -> SupervisorLink | None:
        """Hand the job to the supervisor; the link it went to, or None if there is none."""
        link = self.link
        if link is None:
            return None
        try:
            link.start(key, files.base, bash, working_dir, env, logs)
        except OSError as exc:  # it went away: its end is noticed on its socket
            log.warning("local: the job supervisor took no job (%s); using sh", exc)
            return None
        return link

    def adopted(self, run: Run) -> None:
        """A job found running after a restart: its supervisor tells its end, if it is ours."""
        if self.link is not None and run.key in self.link.running:
            run.link = self.link

    def close(self) -> None:
        self._closed = True
        if self.link is not None:
            self.link.close()
            self.link = None

    def _spawn(self, task: Callable[[], Coroutine[Any, Any, None]]) -> None:
        group = self._group()
        if group is not None:
            group.start_soon(task)

    # -- what the supervisor says -------------------------------------------

    def _started(self, key: str, pid: int) -> None:
        run = self._running.get(key)
        if run is not None and not run.pid:
            run.pid = pid

    def _failed(self, key: str, reason: str) -> None:
        run = self._running.get(key)
        if run is not None and run.link is not None:
            run.ended({"failed": reason})

    def _ended(self, message: dict[str, Any]) -> None:
        run = self._running.get(str(message.get("key")))
        if run is not None and run.link is not None:
            run.ended(message)

    def _lost(self) -> None:
        """The supervisor is gone: its jobs are watched by pid; a new one is started,
        and takes the jobs the old one never started."""
        lost, self.link = self.link, None
        assert lost is not None
        unstarted = {}
        for run in list(self._running.values()):
            if run.link is not lost or run.end is not None:
                continue
            if not run.pid and run.key in lost.unanswered and find_state(run.files) is None:
                unstarted[run.key] = lost.unanswered.pop(run.key)
            else:
                self._orphan(run)
        lost.close()
        if not self._closed:
            self._spawn(lambda: self._take_over(unstarted))

    async def _take_over(self, unstarted: dict[str, tuple[bytes, list[int]]]) -> None:
        await self.connect()
        for key, (data, fds) in unstarted.items():
            run = self._running.get(key)
            if run is None:
                for fd in fds:
                    os.close(fd)
                continue
            try:
                if self.link is None:
                    for fd in fds:
                        os.close(fd)
                    raise OSError("no job supervisor could be started")
                self.link.resend(data, fds)
                run.link = self.link
            except OSError as exc:
                run.ended({"failed": str(exc)})

    def _orphan(self, run: Run) -> None:
        state = find_state(run.files)
        pid = run.pid or (state.pid if state is not None else 0)
        pidfd = run.pidfd
        if pidfd is None and pid:
            try:
                pidfd = self._open_pidfd(pid)
            except ProcessLookupError:
                pidfd = None
            written = state.written_at if state is not None else None
            if supervisor_started_at(pid, run.files.base, written) is None:
                if pidfd is not None:  # gone, or the pid is another process's now
                    os.close(pidfd)
                pidfd, pid = None, 0
        run.orphaned(pid, pidfd)
