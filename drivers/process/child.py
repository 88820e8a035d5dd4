"""One life of a driver process: start it, watch it, stop it, say why it ended.

Watched for the ways a driver goes wrong that a call cannot report: the
process exits (a segfault, an error out of the driver's run), its loop stops
answering heartbeats (a call that blocks instead of awaiting: it gets a
SIGABRT first, so faulthandler writes every thread's stack to its log), or
its memory outgrows the limit. Each ends the process and returns the reason.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import anyio
import psutil  # type: ignore[import-untyped]  # psutil ships no type hints
from anyio.abc import Process, SocketStream

from gantry.drivers.interface_2_0 import TaskInfo
from gantry.drivers.process.link import Link, StartFailed
from gantry.drivers.process.wire import Channel, ChannelClosed

log = logging.getLogger(__name__)

#: Seconds a process gets after SIGABRT (to write its stacks) and after the
#: channel closed (to reset its components) before it is killed.
ABORT_WAIT = 2.0
STOP_WAIT = 5.0
#: Seconds an exited process's channel may take to deliver its last words.
LAST_WORDS_WAIT = 1.0


@dataclass(frozen=True, slots=True)
class ProcessOptions:
    """How a driver process is supervised (the devices file's ``[drivers.<name>]``)."""

    #: s the process's loop may leave a heartbeat unanswered before it counts as blocked
    hang_timeout: float = 5.0
    #: RSS (MB) above which the process is restarted; 0: no limit
    max_rss_mb: float = 1024.0
    #: s the process may take to import and build its driver
    start_timeout: float = 60.0
    #: s between heartbeats and memory checks
    heartbeat: float = 1.0


def _rss_mb(pid: int) -> float:
    return float(psutil.Process(pid).memory_info().rss) / 1e6


def exit_reason(code: int | None, last_words: str | None) -> str:
    if last_words:
        return f"stopped with an error: {last_words}"
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"its process was killed by {name}"
    return f"its process exited with code {code}"


class Child:
    """Runs driver processes of one driver, one at a time, each until it ends."""

    def __init__(
        self,
        label: str,
        hello: Mapping[str, Any],
        options: ProcessOptions,
        log_path: Path | None,
        on_task: Callable[[TaskInfo], None],
    ) -> None:
        self.label = label
        self.hello = dict(hello)
        self.options = options
        self.log_path = log_path
        self.on_task = on_task
        self.pid: int | None = None

    async def run(self, on_ready: Callable[[Link], Awaitable[None]]) -> str:
        """One process: started, ``on_ready`` once it serves, then watched; why it ended.

        Raises :class:`StartFailed` if it never served.
        """
        ours, theirs = socket.socketpair()
        try:
            process = await self._spawn(theirs)
        finally:
            theirs.close()
        self.pid = process.pid
        link = Link(Channel(await SocketStream.from_socket(ours)), self.label, self.on_task)
        reason = "stopped: the server is stopping"
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(link.serve)
                with anyio.move_on_after(self.options.start_timeout) as scope:
                    try:
                        await link.hello(self.hello)
                    except StartFailed as exc:
                        raise StartFailed(await self._start_failure(process, link, exc)) from None
                if scope.cancelled_caught:
                    raise StartFailed(f"did not start within {self.options.start_timeout:g} s")
                await on_ready(link)
                reason = await self._watch(process, link)
                tg.cancel_scope.cancel()
        finally:
            link.close(self.explain(reason))
            with anyio.CancelScope(shield=True):
                await self._stop(process, link)
        return reason

    def explain(self, reason: str) -> str:
        """``driver 'x' <reason> (log: <path>)``: what a failed call or task says."""
        where = f" (log: {self.log_path})" if self.log_path is not None else ""
        return f"{self.label} {reason}{where}"

    async def _spawn(self, theirs: socket.socket) -> Process:
        log_file: IO[bytes] | None = None
        if self.log_path is not None:
            log_file = await anyio.to_thread.run_sync(_open_log, self.log_path)
        try:
            return await anyio.open_process(
                [sys.executable, "-m", "gantry.drivers.process.worker", str(theirs.fileno())],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
                pass_fds=(theirs.fileno(),),
                # Its own session: a Ctrl-C at the terminal reaches the server, which
                # stops its drivers in order, not every driver at once.
                start_new_session=True,
            )
        finally:
            if log_file is not None:
                log_file.close()

    async def _start_failure(self, process: Process, link: Link, exc: StartFailed) -> str:
        if not link.ended.is_set():
            return str(exc)  # the driver said why
        with anyio.move_on_after(LAST_WORDS_WAIT):
            return exit_reason(await process.wait(), link.last_words)
        return str(exc)

    async def _watch(self, process: Process, link: Link) -> str:
        found: list[str] = []

        async def exited() -> None:
            code = await process.wait()
            with anyio.move_on_after(LAST_WORDS_WAIT):
                await link.ended.wait()  # the reader has read everything sent
            found.append(exit_reason(code, link.last_words))

        async def hung_up() -> None:
            await link.ended.wait()
            with anyio.move_on_after(STOP_WAIT):
                await process.wait()
                await anyio.sleep_forever()  # exited() says why
            found.append(f"kept running but {link.end_reason}")

        async def health() -> None:
            opts = self.options
            while True:
                await anyio.sleep(opts.heartbeat)
                with anyio.move_on_after(opts.hang_timeout) as scope:
                    try:
                        await link.ping()
                    except ChannelClosed:
                        await anyio.sleep_forever()  # exited() says why
                if scope.cancelled_caught:
                    found.append(
                        f"its process did not answer for {opts.hang_timeout:g} s (hang_timeout): "
                        "a call blocks its event loop; its stacks are in its log"
                    )
                    _signal(process, signal.SIGABRT)
                    return
                if opts.max_rss_mb:
                    rss = await anyio.to_thread.run_sync(_rss_mb, process.pid)
                    if rss > opts.max_rss_mb:
                        found.append(
                            f"its process used {rss:.0f} MB of memory, over its limit of "
                            f"{opts.max_rss_mb:g} MB (max_rss_mb)"
                        )
                        return

        async with anyio.create_task_group() as tg:
            for watcher in (exited, hung_up, health):
                tg.start_soon(_first, watcher, tg.cancel_scope)
        return found[0] if found else "its process ended"

    async def _stop(self, process: Process, link: Link) -> None:
        """Close the channel (the process resets its components and exits), then make sure."""
        with contextlib.suppress(Exception):
            await link.channel.aclose()
        if process.returncode is None:
            with anyio.move_on_after(STOP_WAIT if link.last_words is None else ABORT_WAIT):
                await process.wait()
        if process.returncode is None:
            log.warning("%s did not stop in time; killing its process %d", self.label, process.pid)
            _signal(process, signal.SIGKILL)
            await process.wait()
        self.pid = None


async def _first(watcher: Callable[[], Awaitable[None]], scope: anyio.CancelScope) -> None:
    await watcher()
    scope.cancel()


def _signal(process: Process, sig: signal.Signals) -> None:
    # The process leads its own group: anything the driver started goes too.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)


def _open_log(path: Path) -> IO[bytes]:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.open("ab")
