"""Grid Engine's commands, run by the shared runner (``gantry.backends.scheduler.commands``),
and what their answers say."""

from __future__ import annotations

from gantry.backends.base import BackendError
from gantry.backends.scheduler.commands import Commands, Result
from gantry.backends.scheduler.commands import checked_ref as scheduler_ref

NOT_FOUND_HINT = "install Grid Engine or start the test cell with scripts/sge/start.sh (as root)"

#: What the commands print when qmaster cannot be reached (down, restarting).
UNREACHABLE = (
    "unable to contact qmaster",
    "commlib error",
    "can't find connection",
    "unable to send message",
    "failed receiving gdi request",
)


def sge_commands(timeout: float = 30.0) -> Commands:
    """Runs qsub/qstat/qdel/qhost (and qacct, the fallback), counting each call."""
    return Commands(NOT_FOUND_HINT, timeout)


def unreachable(result: Result) -> bool:
    return result.says(UNREACHABLE, stdout=True)


def gone(result: Result) -> bool:
    """qdel of a job (or task) SGE no longer has: nothing to do."""
    return result.says(("does not exist",), stdout=True)


def parse_qsub(result: Result) -> str:
    # -terse prints "<id>", or "<id>.<first>-<last>:<step>" for an array.
    ref = result.stdout.strip().split(".")[0]
    if not ref.isdigit():
        raise BackendError(f"qsub printed no job number: {result.stdout.strip()!r}")
    return ref


def checked_ref(ref: str) -> str:
    """An SGE job number; refusing anything else keeps argv free of stray options."""
    return scheduler_ref(ref, "an SGE job number")
