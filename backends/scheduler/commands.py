"""Running a batch scheduler's commands: exec-style argv, a time limit, a count of each.

No shell is ever involved: every argument is one argv item, so nothing a user
wrote can become shell syntax. Each backend makes one :class:`Commands` with
its own hint for a missing command (how to install or start the scheduler).
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import anyio
import anyio.lowlevel

from gantry.backends.base import BackendError

log = logging.getLogger(__name__)


class CommandNotFound(BackendError):
    """A scheduler command is not installed (or not on PATH)."""


class CommandTimeout(BackendError):
    """A scheduler command did not answer in time."""


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

    def says(self, patterns: Iterable[str], *, stdout: bool = False) -> bool:
        """Whether stderr (and stdout, if asked: it may hold users' job names) has a pattern."""
        text = (self.stderr + self.stdout if stdout else self.stderr).lower()
        return any(pattern in text for pattern in patterns)


def _strip_prefix(line: str, command: str) -> str:
    line = line.strip()
    for prefix in (f"{command}: error:", f"{command}:"):
        if line.startswith(prefix):
            return line[len(prefix) :].strip()
    return line


class Commands:
    """Runs one scheduler's commands, counting each call (benchmarks read ``counts``).

    ``environment`` builds the environment commands run in when the caller
    gives none (called on first use: nothing happens at construction).
    """

    def __init__(
        self,
        not_found_hint: str,
        timeout: float = 30.0,
        environment: Callable[[], dict[str, str]] | None = None,
    ) -> None:
        self.hint = not_found_hint
        self.timeout = timeout
        self.counts: Counter[str] = Counter()
        self._make_env = environment
        self._env: dict[str, str] | None = None
        self._paths: dict[str, str] = {}

    def executable(self, name: str) -> str:
        """The command's absolute path, found on the server's PATH (a job's env may lack it)."""
        path = self._paths.get(name) or shutil.which(name)
        if path is None:
            raise CommandNotFound(f"{name} not found: {self.hint}")
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

        ``env`` replaces the environment (sbatch and qsub hand theirs to the job).
        """
        # The shield below hides cancellation, so give it its chance first: a loop
        # of commands (the poller) must still stop when cancelled.
        await anyio.lowlevel.checkpoint_if_cancelled()
        argv = tuple(argv)
        limit = self.timeout if time_limit is None else time_limit
        command = (self.executable(argv[0]), *argv[1:])
        if env is None and self._make_env is not None:
            if self._env is None:
                self._env = self._make_env()
            env = self._env
        self.counts[argv[0]] += 1
        started = time.monotonic()
        try:
            # Shielded: a command is never killed half-way by the caller's
            # cancellation (a submit cut short may still have submitted); the
            # time limit bounds the wait.
            with anyio.CancelScope(shield=True), anyio.fail_after(limit):
                done = await anyio.run_process(
                    command,
                    input=stdin.encode() if stdin else None,
                    stdin=None if stdin else subprocess.DEVNULL,
                    check=False,
                    env=env,
                )
        except FileNotFoundError:
            self._paths.pop(argv[0], None)
            raise CommandNotFound(f"{argv[0]} not found: {self.hint}") from None
        except TimeoutError:
            raise CommandTimeout(f"{argv[0]} did not answer within {limit:g} s") from None
        log.debug("%s -> %s in %.3f s", argv[0], done.returncode, time.monotonic() - started)
        out, err = done.stdout.decode(errors="replace"), done.stderr.decode(errors="replace")
        return Result(argv, done.returncode, out, err)


def checked_ref(ref: str, what: str) -> str:
    """A job number (``what``: "a Slurm job id"); refusing anything else keeps argv
    free of stray options."""
    text = str(ref).strip()
    if not text.isdigit():
        raise BackendError(f"{ref!r} is not {what}")
    return text


def id_order(job_id: str) -> int:
    return int(job_id) if job_id.isdigit() else -1
