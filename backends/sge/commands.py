"""Running Grid Engine's commands: exec-style argv, a time limit, a count of each."""

from __future__ import annotations

import shutil
import subprocess
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import anyio
import anyio.lowlevel

from gantry.backends.base import BackendError

NOT_FOUND_HINT = "install Grid Engine or start the test cell with scripts/sge/start.sh (as root)"

#: What the commands print when qmaster cannot be reached (down, restarting).
UNREACHABLE = (
    "unable to contact qmaster",
    "commlib error",
    "can't find connection",
    "unable to send message",
    "failed receiving gdi request",
)


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
        text = "; ".join(line.strip() for line in self.stderr.splitlines() if line.strip())
        return text or " ".join(self.stdout.split()) or f"{self.argv[0]} exited {self.returncode}"

    @property
    def unreachable(self) -> bool:
        text = (self.stderr + self.stdout).lower()
        return any(pattern in text for pattern in UNREACHABLE)


class SgeCommands:
    """Runs qsub/qstat/qacct/qdel/qhost, counting each call (the benchmark reads ``counts``)."""

    def __init__(self, timeout: float = 30.0) -> None:
        self.timeout = timeout
        self.counts: Counter[str] = Counter()
        self._paths: dict[str, str] = {}

    def executable(self, name: str) -> str:
        path = self._paths.get(name) or shutil.which(name)
        if path is None:
            raise BackendError(f"{name} not found: {NOT_FOUND_HINT}")
        self._paths[name] = path
        return path

    async def run(
        self, argv: Sequence[str], *, stdin: str | None = None, env: dict[str, str] | None = None
    ) -> Result:
        """Run one command; BackendError if it is missing or does not answer in time."""
        await anyio.lowlevel.checkpoint_if_cancelled()
        argv = tuple(argv)
        command = (self.executable(argv[0]), *argv[1:])
        self.counts[argv[0]] += 1
        try:
            # Shielded: a qsub cut short by cancellation may still have submitted.
            with anyio.CancelScope(shield=True), anyio.fail_after(self.timeout):
                done = await anyio.run_process(
                    command,
                    input=stdin.encode() if stdin is not None else None,
                    stdin=None if stdin is not None else subprocess.DEVNULL,
                    check=False,
                    env=env,
                )
        except FileNotFoundError:
            self._paths.pop(argv[0], None)
            raise BackendError(f"{argv[0]} not found: {NOT_FOUND_HINT}") from None
        except TimeoutError:
            raise BackendError(f"{argv[0]} did not answer within {self.timeout:g} s") from None
        out, err = done.stdout.decode(errors="replace"), done.stderr.decode(errors="replace")
        return Result(argv, done.returncode, out, err)


def checked_ref(ref: str) -> str:
    """An SGE job number; refusing anything else keeps argv free of stray options."""
    text = str(ref).strip()
    if not text.isdigit():
        raise BackendError(f"{ref!r} is not an SGE job number")
    return text
