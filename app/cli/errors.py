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
from gantry.client import AuthError, ConnectionFailed, GantryError, InvalidRequest, Unreachable

P = ParamSpec("P")
R = TypeVar("R")

FAILED = 1
USAGE = 2
INTERRUPTED = 130


class CliError(Exception):
    """A message the user can act on, and the exit code."""

    def __init__(self, message: str, code: int = FAILED) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def from_client(exc: GantryError) -> CliError:
    """The client's error (the server's words) with the CLI's hints and exit code."""
    message = exc.message
    if isinstance(exc, Unreachable):
        message += ": start it with `gantry serve` or set --url/GANTRY_URL"
    elif isinstance(exc, AuthError) and "GANTRY_TOKEN" not in message:
        message += " (the CLI sends the token in GANTRY_TOKEN)"
    usage = isinstance(exc, InvalidRequest | ConnectionFailed)
    return CliError(message, USAGE if usage else FAILED)


def guarded(func: Callable[P, R]) -> Callable[P, R]:
    """Print a :class:`CliError` (or the client's error) on stderr and exit with its code.

    ``functools.wraps`` keeps the signature and annotations typer reads.
    """

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except GantryError as exc:
            failure = from_client(exc)
        except CliError as exc:
            failure = exc
        render.error(failure.message)
        raise typer.Exit(failure.code) from None

    return wrapper
