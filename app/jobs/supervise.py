"""One guarded runner for every plug-in's long-lived task (backends, drivers).

The task runs in a task group of its own; if it crashes the crash is logged
and handed to ``on_crash``, and the server stays up. Start-up never waits
for a task that died before it was ready.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import anyio
from anyio.abc import TaskStatus

log = logging.getLogger(__name__)


async def run_guarded(
    label: str,
    run: Callable[..., Coroutine[Any, Any, Any]],
    *,
    on_crash: Callable[[Exception], None],
    close: Callable[[], Awaitable[None]] | None = None,
    task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """``await tg.start(run)`` in its own group; ``label`` ("backend slurm") names it in logs.

    ``close`` runs once the task ended, however it ended, shielded from
    cancellation; its own failure is logged too.
    """
    started = False
    try:
        async with anyio.create_task_group() as tg:
            await tg.start(run)
            started = True
            task_status.started()
    except Exception as exc:
        log.exception("%s stopped with an error", label)
        on_crash(exc)
        if not started:
            task_status.started()
    finally:
        if close is not None:
            with anyio.CancelScope(shield=True):
                try:
                    await close()
                except Exception:
                    log.exception("%s failed to close", label)
