"""A throwaway PostgreSQL cluster for tests (initdb as the postgres user).

Needs the PostgreSQL server binaries (Debian: `apt-get install postgresql`,
which scripts/test does as root) and root (to run them as `postgres`).
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

HOW = "needs PostgreSQL server binaries and root: apt-get install postgresql (scripts/test does it)"


def find_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for version in sorted(Path("/usr/lib/postgresql").glob("*"), reverse=True):
        candidate = version / "bin" / name
        if candidate.exists():
            return str(candidate)
    return None


def available() -> bool:
    return (
        bool(find_bin("initdb") and find_bin("pg_ctl"))
        and os.geteuid() == 0
        and bool(shutil.which("runuser"))
    )


@dataclass
class Cluster:
    port: int
    socket_dir: Path
    _names: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def new_database(self) -> str:
        """A fresh empty database; returns its SQLAlchemy URL."""
        import psycopg

        name = f"gantry_{os.getpid()}_{next(self._names)}"
        admin = f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"


def start(port: int) -> tuple[Cluster, Path]:
    root = Path(tempfile.mkdtemp(prefix="gantry-pg-"))
    shutil.chown(root, "postgres", "postgres")
    data = root / "data"

    def as_postgres(*args: str) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", *args], check=True, capture_output=True, timeout=120
        )

    as_postgres(
        find_bin("initdb") or "initdb",
        "-D",
        str(data),
        "-A",
        "trust",
        "-U",
        "postgres",
        "--locale=C.UTF-8",
        "-E",
        "UTF8",
    )
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    as_postgres(
        find_bin("pg_ctl") or "pg_ctl",
        "-D",
        str(data),
        "-o",
        options,
        "-w",
        "-l",
        str(root / "log"),
        "start",
    )
    return Cluster(port, root), root


def stop(root: Path) -> None:
    subprocess.run(
        [
            "runuser",
            "-u",
            "postgres",
            "--",
            find_bin("pg_ctl") or "pg_ctl",
            "-D",
            str(root / "data"),
            "-m",
            "fast",
            "-w",
            "stop",
        ],
        capture_output=True,
        timeout=60,
    )
    shutil.rmtree(root, ignore_errors=True)
