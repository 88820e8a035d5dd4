"""Slurm's commands, run by the shared runner (``gantry.backends.scheduler.commands``),
and what their answers say.

Slurm's own time format is pinned to epoch seconds (``SLURM_TIME_FORMAT=%s``)
so squeue and sacct print parseable times.
"""

from __future__ import annotations

import os

from gantry.backends.base import BackendError
from gantry.backends.scheduler.commands import Commands, Result
from gantry.backends.scheduler.commands import checked_ref as scheduler_ref

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


def slurm_commands(timeout: float = 30.0) -> Commands:
    """Runs ``sbatch``/``squeue``/``sacct``/``scancel``/``sinfo``, counting each call."""
    return Commands(NOT_FOUND_HINT, timeout, environment=_environment)


def _environment() -> dict[str, str]:
    return {**os.environ, "SLURM_TIME_FORMAT": "%s"}


def transient(result: Result) -> bool:
    """The controller is busy or restarting: worth trying again."""
    return result.says(TRANSIENT_ERRORS)


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
    return result.says(GONE)


def checked_ref(ref: str) -> str:
    """A Slurm job id; refusing anything else keeps argv free of stray options."""
    return scheduler_ref(ref, "a Slurm job id")


def chunks(items: list[str], size: int) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]
