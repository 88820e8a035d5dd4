"""The server's side of the machine's job supervisor (:mod:`gantry.backends.local.daemon`).

:class:`SupervisorLink` connects to the supervisor of the runs directory,
starting one if none listens, and then only sends: ``start`` with the job's
log descriptors, ``kill``. What comes back (``started``, ``failed``,
``ended``) goes to the callbacks it was given, on the event loop. If the
supervisor goes away the link says so (``on_lost``) and the next start
connects to a new one: the jobs of the old one are watched by their pids.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio

from gantry.backends.local import daemon
from gantry.backends.local.daemon import BUFFER, PACKET, address

SCRIPT = daemon.__file__
_CONNECT_TRIES = 250  # 5 s for a new supervisor to listen


class SupervisorGone(OSError):
    """No supervisor could be reached or started."""


@dataclass(slots=True)
class Handlers:
    started: Callable[[str, int], None]
    failed: Callable[[str, str], None]
    ended: Callable[[dict[str, Any]], None]
    lost: Callable[[], None]
    #: keys the supervisor runs, as it said on connecting
    running: set[str] = field(default_factory=set)


class SupervisorLink:
    def __init__(self, runs_dir: str, handlers: Handlers) -> None:
        self._address = address(runs_dir)
        self._runs_dir = runs_dir
        self._handlers = handlers
        self._sock: socket.socket | None = None
        #: start messages not answered yet, with their descriptors: sent again to a
        #: new supervisor if this one dies before it started the job
        self.unanswered: dict[str, tuple[bytes, list[int]]] = {}

    @property
    def running(self) -> set[str]:
        """The keys of the jobs the supervisor ran when we connected."""
        return self._handlers.running

    async def connect(self) -> None:
        """Connect, starting a supervisor if none runs; SupervisorGone if that fails."""
        for attempt in range(_CONNECT_TRIES):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
            try:
                sock.connect(self._address)
            except OSError:
                sock.close()
                if attempt % 50 == 0:
                    await anyio.to_thread.run_sync(self._spawn)
                await anyio.sleep(0.02)
                continue
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, BUFFER)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, BUFFER)
                with anyio.fail_after(10):
                    await anyio.wait_readable(sock)
                hello = sock.recv(PACKET)
                self._handlers.running = set(json.loads(hello).get("running", ()))
            except (OSError, ValueError, TimeoutError):
                sock.close()  # it went away before it said hello: start another
                await anyio.sleep(0.02)
                continue
            except BaseException:
                sock.close()
                raise
            sock.setblocking(False)
            self._sock = sock
            return
        raise SupervisorGone(f"no job supervisor for {self._runs_dir} could be started")

    def _spawn(self) -> None:
        """Start a supervisor (it double-forks: the child we reap here exits at once)."""
        argv = [sys.executable, "-I", "-S", SCRIPT, self._runs_dir]
        devnull = os.open(os.devnull, os.O_RDWR)
        log = os.open(
            os.path.join(self._runs_dir, "supervisor.log"),
            os.O_WRONLY | os.O_CREAT | os.O_APPEND,
            0o644,
        )
        try:
            pid = os.posix_spawn(
                sys.executable,
                argv,
                {"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
                file_actions=[
                    (os.POSIX_SPAWN_DUP2, fd, n) for n, fd in enumerate((devnull, log, log))
                ],
                setsid=True,
            )
        finally:
            os.close(devnull)
            os.close(log)
        os.waitpid(pid, 0)

    async def serve(self) -> None:
        """Deliver what the supervisor says, until it goes away (then ``lost``)."""
        while self._sock is not None:
            sock = self._sock
            try:
                await anyio.wait_readable(sock)
                data = sock.recv(PACKET)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:
                self._close()
                self._handlers.lost()
                return
            self._deliver(json.loads(data))

    def _deliver(self, message: dict[str, Any]) -> None:
        op, key = message.get("op"), message.get("key", "")
        if op in ("started", "failed"):
            self._forget(key)
        if op == "started":
            self._handlers.started(key, int(message["pid"]))
        elif op == "failed":
            self._handlers.failed(key, str(message["reason"]))
        elif op == "ended":
            self._handlers.ended(message)

    def start(
        self,
        key: str,
        base: str,
        bash: str,
        working_dir: str,
        env: Mapping[str, str],
        stdio: tuple[int, int],
    ) -> None:
        """Ask for the job to be started; raises OSError if the message cannot go."""
        message = {"op": "start", "key": key, "base": base, "bash": bash, "cwd": working_dir}
        message["env"] = dict(env)  # type: ignore[assignment]
        data = json.dumps(message).encode()
        fds = list(dict.fromkeys(stdio))
        self._send(data, fds)
        self.unanswered[key] = (data, [os.dup(fd) for fd in fds])

    def resend(self, data: bytes, fds: list[int]) -> None:
        """A start another supervisor took but never answered (it died): ours now."""
        key = str(json.loads(data)["key"])
        try:
            self._send(data, fds)
        except OSError:
            for fd in fds:
                os.close(fd)
            raise
        self.unanswered[key] = (data, fds)

    def _forget(self, key: str) -> None:
        _, fds = self.unanswered.pop(key, (b"", []))
        for fd in fds:
            os.close(fd)

    def kill(self, key: str, sig: int) -> bool:
        """Signal the job's group through the supervisor; False if there is none."""
        try:
            self._send(json.dumps({"op": "kill", "key": key, "sig": int(sig)}).encode(), [])
        except OSError:
            return False
        return True

    def _send(self, data: bytes, fds: list[int]) -> None:
        sock = self._sock
        if sock is None:
            raise SupervisorGone("the job supervisor is not connected")
        sock.setblocking(True)  # the supervisor reads at once; a full buffer is brief
        try:
            sock.settimeout(10.0)
            socket.send_fds(sock, [data], fds)
        finally:
            with contextlib.suppress(OSError):
                sock.setblocking(False)

    def _close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def close(self) -> None:
        """Disconnect; the supervisor and its jobs run on."""
        self._close()
        for key in list(self.unanswered):
            self._forget(key)
