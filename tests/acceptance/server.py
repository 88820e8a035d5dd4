"""A real `gantry serve` process for acceptance tests: start, SIGTERM, kill -9, restart."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

GANTRY = str(Path(sys.executable).with_name("gantry"))
START_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def clean_env(**extra: str) -> dict[str, str]:
    """The test's environment without GANTRY_* variables, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GANTRY_")}
    return {**env, "NO_COLOR": "1", **extra}


class ServerProcess:
    """One data dir; the server on it can be stopped, killed and started again."""

    def __init__(self, root: Path, *, gantry: str = GANTRY, **env: str) -> None:
        self.root = root
        #: the ``gantry`` executable (another venv's, to test an installed wheel)
        self.gantry = gantry
        self.data_dir = root / "var"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def log_path(self) -> Path:
        return self.root / f"server-{self.starts}.log"

    def start(self) -> None:
        self.starts += 1
        log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [self.gantry, "serve", "--port", str(self.port), "--data-dir", str(self.data_dir)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=clean_env(**self.env),
            cwd=self.root,
        )
        log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gantry serve exited: {self.log_path.read_text()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"gantry serve did not start: {self.log_path.read_text()}")
            time.sleep(0.05)

    def kill(self) -> None:
        """kill -9: no shutdown code runs."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.proc = None

    def stop(self, timeout: float = 20) -> int:
        """SIGTERM and wait; SIGKILL if it hangs. Returns the exit code."""
        if self.proc is None:
            return 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self.proc = None
        return code

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, **kwargs)
