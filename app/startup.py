"""What must hold before a server starts; each refusal says what to change.

``create_app``'s lifespan refuses with these checks, and ``gantry serve``
runs them first so a refusal is one plain line instead of a start-up
traceback. No HTTP here.
"""

from __future__ import annotations

import fcntl
import ipaddress
import os
from collections.abc import Collection
from pathlib import Path

from sqlalchemy import create_engine

from gantry import db
from gantry.instruments.devices import Devices, DevicesFileError, load_devices
from gantry.tokens import active_hashes


class StartupRefused(RuntimeError):
    """The server must not start as configured; the message says what to change."""


def is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def refuse_exposure(host: str, has_tokens: bool) -> None:
    """Listening beyond this machine needs API tokens: without one, anyone could submit."""
    if not has_tokens and not is_loopback(host):
        raise StartupRefused(
            f"refusing to listen on {host} without API tokens: create one with "
            "`gantry token create --scope admin NAME`, or listen on 127.0.0.1"
        )


def devices_or_refuse(devices_file: Path | None, driver_names: Collection[str]) -> Devices:
    """The devices file read; a malformed one names its line and field."""
    try:
        return load_devices(devices_file, driver_names)
    except DevicesFileError as exc:
        raise StartupRefused(str(exc)) from None


def tokens_exist(database_url: str) -> bool:
    """Whether an active API token exists, migrating the database first (blocking)."""
    db.upgrade(database_url)
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            return bool(active_hashes(conn))
    finally:
        engine.dispose()


class SingleServer:
    """The lock that makes a SQLite database one server's: held while the server runs.

    An OS lock (``flock``) on ``<database>.server``, so it ends with the
    process however it ends (kill -9 included): a restart is never refused.
    """

    def __init__(self, url: str) -> None:
        self.path = Path(url.split("///", 1)[-1] + ".server")
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            database = self.path.with_suffix("")
            raise StartupRefused(
                f"another gantry server (pid {holder}) is serving the SQLite database "
                f"{database}: SQLite is for one server at a time, since each would run every "
                "job. Stop that server, or run several servers on PostgreSQL: "
                "GANTRY_DATABASE_URL=postgresql+psycopg://USER@HOST/DB (docs/multi-server.md)"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the file ends the lock
            self._fd = None


def refuse_second_sqlite_server(url: str) -> None:
    """Refuse at once if another server holds this SQLite database (``gantry serve``)."""
    if url.startswith("sqlite") and ":memory:" not in url:
        lock = SingleServer(url)
        lock.acquire()
        lock.release()
