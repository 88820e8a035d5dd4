"""The machine's job supervisor: one long-lived process that starts and reaps jobs.

Run as a script (``python -I -S daemon.py <runs dir>``: the standard library
only, so it starts in milliseconds and imports nothing of the server), it
double-forks into its own session and so outlives every server. Servers talk
to it over a ``SOCK_SEQPACKET`` unix socket in the abstract namespace, named
after the runs directory and the user (peers of another uid are refused),
one JSON message per packet:

- ``start`` (the job's key, file base, bash, working dir, environment; its
  stdout and stderr descriptors ride along as ``SCM_RIGHTS``): it spawns
  ``bash <base>.sh`` in a session of its own, writes the pid to
  ``<base>.state`` and answers ``started`` (or ``failed`` with the reason);
- ``kill`` (key, signal): signals the job's process group, if the job has
  not been reaped yet, so a signal never reaches a reused pid;
- on a job's end it signals what the job left in its group (TERM, as Slurm
  does), reaps it with ``wait4``, appends the exit code and the ``times``
  lines to ``<base>.state`` (the format the per-job sh supervisor writes)
  and only then tells every connected server ``ended`` with the rusage.

A server that connects is told which jobs run (``hello``). The state files
are the durable record: what a server missed while it was down, it reads
there. The supervisor exits once it has had neither jobs nor servers for
:data:`IDLE_SECONDS`.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import selectors
import signal
import socket
import sys
import time

IDLE_SECONDS = 10.0
PACKET = 1 << 20  # the largest message (a job's environment rides in it)
BUFFER = 4 << 20
# Dispositions a child inherits if its parent ignores them (Python ignores
# SIGPIPE and SIGXFSZ): put back to default, as subprocess does.
RESET_SIGNALS = tuple(
    getattr(signal, name)
    for name in (
        "SIGPIPE",
        "SIGXFSZ",
        "SIGINT",
        "SIGQUIT",
        "SIGHUP",
        "SIGTERM",
        "SIGCHLD",
        "SIGUSR1",
        "SIGUSR2",
        "SIGTSTP",
        "SIGTTIN",
        "SIGTTOU",
    )
)


def address(runs_dir: str) -> bytes:
    """The abstract socket name of the supervisor of ``runs_dir`` for this user."""
    digest = hashlib.sha256(os.path.realpath(runs_dir).encode()).hexdigest()[:24]
    return f"\0gantry-supervisor-{os.getuid()}-{digest}".encode()


def times_text(seconds: float) -> str:
    """One value as sh's ``times`` prints it: ``1m2.500000s``."""
    minutes, rest = divmod(max(0.0, seconds), 60)
    return f"{int(minutes)}m{rest:.6f}s"


def exit_code(status: int) -> int:
    """A wait status as a shell reports it: 128 + the signal for a signalled process."""
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


class Supervisor:
    def __init__(self, runs_dir: str, listener: socket.socket) -> None:
        self.runs_dir = runs_dir
        self.listener = listener
        self.selector = selectors.DefaultSelector()
        self.clients: set[socket.socket] = set()
        self.running: dict[int, tuple[str, str]] = {}  # pid -> (key, base)
        self.by_key: dict[str, int] = {}
        self.devnull = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        self.wake_r, self.wake_w = socket.socketpair()
        self.wake_r.setblocking(False)
        self.wake_w.setblocking(False)
        signal.set_wakeup_fd(self.wake_w.fileno(), warn_on_full_buffer=False)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # wakes the selector
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)  # jobs outlive whoever signals the session
        self.selector.register(listener, selectors.EVENT_READ, self.accept)
        self.selector.register(self.wake_r, selectors.EVENT_READ, self.reap)
        self.idle_since = time.monotonic()

    def serve(self) -> None:
        while True:
            for key, _ in self.selector.select(timeout=1.0):
                key.data(key.fileobj)
            self.reap(None)  # a SIGCHLD between two selects is never lost
            if self.running or self.clients:
                self.idle_since = time.monotonic()
            elif time.monotonic() - self.idle_since > IDLE_SECONDS:
                return

    # -- servers ------------------------------------------------------------

    def accept(self, listener: socket.socket) -> None:
        with contextlib.suppress(BlockingIOError):
            conn, _ = listener.accept()
            creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
            if int.from_bytes(creds[4:8], sys.byteorder) != os.getuid():
                conn.close()
                return
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, BUFFER)
            conn.setblocking(False)
            self.clients.add(conn)
            self.selector.register(conn, selectors.EVENT_READ, self.receive)
            self.send(conn, {"op": "hello", "running": sorted(self.by_key)})

    def drop(self, conn: socket.socket) -> None:
        self.clients.discard(conn)
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(conn)
        conn.close()

    def send(self, conn: socket.socket, message: dict[str, object]) -> None:
        conn.setblocking(True)  # a server reads promptly; never drop a message
        try:
            conn.settimeout(10.0)
            conn.send(json.dumps(message).encode())
        except OSError:
            self.drop(conn)
        else:
            conn.setblocking(False)

    def broadcast(self, message: dict[str, object]) -> None:
        for conn in list(self.clients):
            self.send(conn, message)

    def receive(self, conn: socket.socket) -> None:
        while True:
            try:
                data, fds, _, _ = socket.recv_fds(conn, PACKET, 2)
            except BlockingIOError:
                return
            except OSError:
                data, fds = b"", []
            if not data:
                for fd in fds:
                    os.close(fd)
                self.drop(conn)
                return
            try:
                message = json.loads(data)
                if message["op"] == "start":
                    self.start(conn, message, fds)
                elif message["op"] == "kill":
                    self.kill(message["key"], int(message["sig"]))
            finally:
                for fd in fds:
                    os.close(fd)

    # -- jobs ---------------------------------------------------------------

    def start(self, conn: socket.socket, message: dict[str, object], fds: list[int]) -> None:
        key, base = str(message["key"]), str(message["base"])
        if key in self.by_key:  # asked twice: it runs once
            self.send(conn, {"op": "started", "key": key, "pid": self.by_key[key]})
            return
        out, err = (fds + fds)[:2] if fds else (self.devnull, self.devnull)
        env = message["env"]
        assert isinstance(env, dict)
        try:
            os.chdir(str(message["cwd"]))  # one thread: the spawn inherits it
            try:
                pid = os.posix_spawn(
                    str(message["bash"]),
                    ["bash", base + ".sh"],
                    env,
                    file_actions=[
                        (os.POSIX_SPAWN_DUP2, fd, target)
                        for target, fd in enumerate((self.devnull, out, err))
                    ],
                    setsid=True,
                    setsigdef=RESET_SIGNALS,
                    setsigmask=(),
                )
            finally:
                os.chdir("/")
        except OSError as exc:
            self.send(conn, {"op": "failed", "key": key, "reason": f"could not start: {exc}"})
            return
        self.running[pid] = (key, base)
        self.by_key[key] = pid
        with contextlib.suppress(OSError):  # the job runs on; found by its command line
            write(base + ".state", f"{pid}\n", os.O_TRUNC)
        self.send(conn, {"op": "started", "key": key, "pid": pid})

    def kill(self, key: str, sig: int) -> None:
        pid = self.by_key.get(key)
        if pid is not None:  # not reaped yet: the group is still this job's
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, sig)

    def reap(self, _: object) -> None:
        with contextlib.suppress(OSError):
            while self.wake_r.recv(4096):
                pass
        while True:
            try:
                info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                return
            if info is None or info.si_pid == 0:
                return
            pid = info.si_pid
            # The leader is a zombie, so its group id is still this job's: end what
            # the job left behind, as the sh supervisor's `kill -TERM 0` did.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGTERM)
            _, status, usage = os.wait4(pid, 0)
            self.ended(pid, exit_code(status), usage)

    def ended(self, pid: int, code: int, usage: object) -> None:
        entry = self.running.pop(pid, None)
        if entry is None:
            return  # the intermediate of our own double fork
        key, base = entry
        self.by_key.pop(key, None)
        user, system = usage.ru_utime, usage.ru_stime  # type: ignore[attr-defined]
        text = f"{code}\n0m0.000000s 0m0.000000s\n{times_text(user)} {times_text(system)}\n"
        with contextlib.suppress(OSError):
            write(base + ".state", text, os.O_APPEND)
        self.broadcast(
            {
                "op": "ended",
                "key": key,
                "pid": pid,
                "rc": code,
                "utime": user,
                "stime": system,
                "maxrss": usage.ru_maxrss * 1024,  # type: ignore[attr-defined]
                "at": time.time(),
            }
        )


def write(path: str, text: str, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | mode, 0o644)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def listen(runs_dir: str) -> socket.socket | None:
    """The bound listening socket, or None if another supervisor holds the name."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    try:
        listener.bind(address(runs_dir))
    except OSError as exc:
        listener.close()
        if exc.errno == errno.EADDRINUSE:
            return None
        raise
    listener.listen(64)
    listener.setblocking(False)
    return listener


def main(runs_dir: str) -> None:
    if os.fork():  # the server reaps this parent at once; the supervisor is init's
        os._exit(0)
    os.chdir("/")
    listener = listen(runs_dir)
    if listener is None:
        return  # one is running already
    Supervisor(runs_dir, listener).serve()


if __name__ == "__main__":
    main(sys.argv[1])
