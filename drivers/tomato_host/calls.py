"""Calling a tomato driver: blocking, keyword-only, and ``sys.exit`` on errors.

tomato's ``log_errors`` decorator ends the driver *process* on an unexpected
exception (``sys.exit(e)``), because tomato runs each driver in its own
process. Here the call runs in a worker thread, and that exit becomes a
:class:`DriverError` carrying the driver's own message.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import anyio

from gantry.drivers.errors import DriverError
from gantry.drivers.interface_2_0.device import describe


class TomatoReply(NamedTuple):
    success: bool
    msg: str
    data: Any


async def blocking(limiter: anyio.CapacityLimiter, func: Callable[..., Any], **kwargs: Any) -> Any:
    """``func(**kwargs)`` in a thread, one at a time per ``limiter``; abandoned if it hangs."""

    def guarded() -> Any:
        try:
            return func(**kwargs)
        except SystemExit as exc:
            cause = exc.code
            if isinstance(cause, BaseException):
                raise DriverError(describe(cause)) from None
            raise DriverError(f"the driver gave up (exit {cause!r}); see the driver log") from None

    return await anyio.to_thread.run_sync(guarded, abandon_on_cancel=True, limiter=limiter)


async def call(
    limiter: anyio.CapacityLimiter, func: Callable[..., Any], **kwargs: Any
) -> TomatoReply:
    """A tomato API call; its ``Reply`` as plain fields."""
    reply = await blocking(limiter, func, **kwargs)
    return TomatoReply(bool(reply.success), str(reply.msg), reply.data)
