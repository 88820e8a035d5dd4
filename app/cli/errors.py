"""Expected failures of a command: a message for the user and an exit code.

Exit codes: 1 for a failed job or a refused request (404, 409, ...), 2 for a
usage problem (bad arguments, 422, no server, bad config), 130 when
interrupted. Nothing expected ever ends in a traceback.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import typer

from gantry.cli import render

P = ParamSpec("P")
R = TypeVar("R")

FAILED = 1
USAGE = 2
INTERRUPTED = 130


class CliError(Exception):
    """A message the user can act on; ``status`` is the HTTP status if any."""

    def __init__(self, message: str, code: int = FAILED, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status


def guarded(func: Callable[P, R]) -> Callable[P, R]:
    """Print a :class:`CliError` on stderr and exit with its code.

    ``functools.wraps`` keeps the signature and annotations typer reads.
    """

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except CliError as exc:
            render.error(exc.message)
            raise typer.Exit(exc.code) from None

    return wrapper
