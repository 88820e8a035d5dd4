"""The submit loop both schedulers use: retried with backoff on transient errors,
checking by job name first that a failed call did not submit after all."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import anyio

from gantry.backends.base import BackendError
from gantry.backends.scheduler.commands import CommandTimeout, Result

log = logging.getLogger(__name__)


class SubmitFailed(BackendError):
    """Every try failed transiently; ``problem`` is the scheduler's last word."""

    def __init__(self, message: str, problem: str) -> None:
        super().__init__(message)
        self.problem = problem


async def submit_with_retries(
    run_once: Callable[[], Awaitable[Result]],
    ref_of: Callable[[Result], str],
    lookup: Callable[[], Awaitable[str | None]],
    transient: Callable[[Result], bool],
    *,
    retries: int,
    delay: float,
    scheduler: str,
    key: str,
) -> str:
    """The job's ref; BackendError if the scheduler refused it, SubmitFailed after
    ``retries`` transient failures (``delay`` s before the first retry, doubled each)."""
    problem = command = ""
    for attempt in range(retries + 1):
        if attempt:
            try:  # the failed call may have submitted the job after all
                found = await lookup()
            except BackendError:
                found = None
            if found is not None:
                return found
            wait = delay * 2 ** (attempt - 1)
            log.warning("%s for job %s failed (%s); retry %d/%d in %.1f s",
                        command, key, problem, attempt, retries, wait)  # fmt: skip
            await anyio.sleep(wait)
        try:
            result = await run_once()
        except CommandTimeout as exc:
            problem = str(exc)
            command = problem.split()[0]
            continue
        command = result.argv[0]
        if result.ok:
            return ref_of(result)
        if not transient(result):
            raise BackendError(f"{scheduler} refused the job: {result.message}")
        problem = result.message
    tries = "once" if retries == 0 else f"{retries + 1} times"
    raise SubmitFailed(f"{command or 'submit'} failed {tries}: {problem}", problem)
