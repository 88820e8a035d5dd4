"""Running Slurm's commands: exec-style argv, a timeout, a count of each.

No shell is ever involved: every argument is one argv item, so nothing a user
wrote can become shell syntax. Slurm's own time format is pinned to epoch
seconds (``SLURM_TIME_FORMAT=%s``) so squeue and sacct print parseable times.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import anyio
import anyio.lowlevel

from gantry.backends.base import BackendError

log = logging.getLogger(__name__)

NOT_FOUND_HINT = "install Slurm or start the test cluster with scripts/slurm/start.sh"

#: Messages of errors that pass: the controller is busy or restarting.
TRANSIENT_ERRORS = (
    "socket timed out",
    "resource temporarily unavailable",
    "unable to contact slurm controller",
    "temporarily unable to accept job",
    "connection refused",
    "connection reset",
    "zero bytes were transmitted",
    "slurm_receive_msg",
    "try again",
)


class CommandNotFound(BackendError):
    """A Slurm command is not installed (or not on PATH)."""


class CommandTimeout(BackendError):
    """A Slurm command did not answer in time."""


@dataclass(frozen=True, slots=True)
class Result:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def message(self) -> str:
        """What the command said went wrong, on one line, without "sbatch: error:"."""
        lines = [_strip_prefix(line, self.argv[0]) for line in self.stderr.splitlines()]
        text = "; ".join(line for line in lines if line)
        return text or " ".join(self.stdout.split()) or f"{self.argv[0]} exited {self.returncode}"

    @property
    def transient(self) -> bool:
        lowered = self.stderr.lower()
        return any(pattern in lowered for pattern in TRANSIENT_ERRORS)


class SlurmCommands:
    """Runs ``sbatch``/``squeue``/``sacct``/``scancel``/``sinfo``, counting each call.

    ``counts`` maps a command name to how many times it was started; the
    benchmark reads it.
    """

    def __init__(self, timeout: float = 30.0) -> None:
        self.timeout = timeout
        self.counts: Counter[str] = Counter()
        self._env: dict[str, str] | None = None
        self._paths: dict[str, str] = {}

    def _environment(self) -> dict[str, str]:
        if self._env is None:  # built on first use: nothing happens at construction
            self._env = {**os.environ, "SLURM_TIME_FORMAT": "%s"}
        return self._env

    def executable(self, name: str) -> str:
        """The command's absolute path, found on the server's PATH (a job's env may lack it)."""
        path = self._paths.get(name) or shutil.which(name)
        if path is None:
            raise CommandNotFound(f"{name} not found: {NOT_FOUND_HINT}")
        self._paths[name] = path
        return path

    async def run(
        self,
        argv: Sequence[str],
        *,
        stdin: str | None = None,
        env: dict[str, str] | None = None,
        time_limit: float | None = None,
    ) -> Result:
        """Run one command; raise CommandNotFound or CommandTimeout, else return its result.

        ``env`` replaces the environment (sbatch hands its own to the job).
        """
        # The shield below hides cancellation, so give it its chance first: a loop
        # of commands (the poller) must still stop when cancelled.
        await anyio.lowlevel.checkpoint_if_cancelled()
        argv = tuple(argv)
        limit = self.timeout if time_limit is None else time_limit
        command = (self.executable(argv[0]), *argv[1:])
        environment = self._environment() if env is None else env
        self.counts[argv[0]] += 1
        started = time.monotonic()
        try:
            # Shielded: a command is never killed half-way by the caller's
            # cancellation (an sbatch cut short may still have submitted);
            # the time limit bounds the wait.
            with anyio.CancelScope(shield=True), anyio.fail_after(limit):
                if stdin:
                    done = await anyio.run_process(
                        command, input=stdin.encode(), check=False, env=environment
                    )
                else:
                    done = await anyio.run_process(
                        command, stdin=subprocess.DEVNULL, check=False, env=environment
                    )
        except FileNotFoundError:
            self._paths.pop(argv[0], None)
            raise CommandNotFound(f"{argv[0]} not found: {NOT_FOUND_HINT}") from None
        except TimeoutError:
            raise CommandTimeout(f"{argv[0]} did not answer within {limit:g} s") from None
        log.debug("%s -> %s in %.3f s", argv[0], done.returncode, time.monotonic() - started)
        return Result(
            argv,
            done.returncode,
            done.stdout.decode(errors="replace"),
            done.stderr.decode(errors="replace"),
        )


def _strip_prefix(line: str, command: str) -> str:
    line = line.strip()
    for prefix in (f"{command}: error:", f"{command}:"):
        if line.startswith(prefix):
            return line[len(prefix) :].strip()
    return line


#: scancel/squeue messages that mean "no such job (any more)": not an error.
GONE = ("invalid job id", "already completing or completed", "job has already finished")


def parse_sbatch(result: Result) -> str:
    # --parsable prints "<id>" or "<id>;<cluster>".
    lines = result.stdout.split()
    ref = lines[-1].split(";")[0] if lines else ""
    if not ref.isdigit():
        raise BackendError(f"sbatch printed no job id: {result.stdout.strip()!r}")
    return ref


def gone(result: Result) -> bool:
    lowered = result.stderr.lower()
    return any(message in lowered for message in GONE)


def checked_ref(ref: str) -> str:
    """A Slurm job id; refusing anything else keeps argv free of stray options."""
    text = str(ref).strip()
    if not text.isdigit():
        raise BackendError(f"{ref!r} is not a Slurm job id")
    return text


def id_order(job_id: str) -> int:
    return int(job_id) if job_id.isdigit() else -1


def chunks(items: list[str], size: int) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]
