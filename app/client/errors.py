"""What can go wrong talking to a gantry server, as exceptions that carry its words.

Every error answer of the API has a ``detail``: a sentence, or for a 422 a
list of ``{loc, msg, type}`` items (app/api/errors.py). :func:`from_response`
turns one into the matching class below; its message is the server's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx


class GantryError(Exception):
    """Base of every error of :mod:`gantry.client`; ``message`` says what to do."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# --- no answer ----------------------------------------------------------------------


class ConnectionFailed(GantryError):
    """No answer from the server: ``url`` is where it was looked for."""

    def __init__(self, message: str, url: str) -> None:
        super().__init__(message)
        self.url = url


class Unreachable(ConnectionFailed):
    """Nothing listens at the URL (connection refused, unknown host): nothing was sent."""


class ConnectionLost(ConnectionFailed):
    """The connection broke mid-request or mid-stream."""


class RequestTimeout(ConnectionFailed):
    """The server did not answer in time."""


class StreamEnded(GantryError):
    """A followed stream (logs, data) stopped before its job ended."""


class WaitTimeout(GantryError, TimeoutError):
    """A wait gave up; the jobs go on. ``states``: each unended job's last known state."""

    def __init__(self, message: str, states: Mapping[int, str]) -> None:
        super().__init__(message)
        self.states = dict(states)


# --- error answers --------------------------------------------------------------------


class ApiError(GantryError):
    """An error answer: ``status``, and ``body`` as the server sent it."""

    def __init__(self, message: str, status: int, body: dict[str, Any]) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


class NotFound(ApiError):
    """404: no such job, pipeline, component, ..."""


@dataclass(frozen=True, slots=True)
class FieldError:
    """One item of a 422: ``field`` is ``loc`` without its ``body``/``query`` part."""

    loc: tuple[str | int, ...]
    message: str
    type: str

    @property
    def field(self) -> str:
        loc = self.loc[1:] if self.loc and self.loc[0] in _LOC_ROOTS else self.loc
        where = ""
        for part in loc:
            where += f"[{part}]" if isinstance(part, int) else f".{part}" if where else str(part)
        return where

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


_LOC_ROOTS = ("body", "query", "path", "header")


class InvalidRequest(ApiError):
    """422: what was sent is wrong; ``errors`` names each field and the fix."""

    def __init__(self, status: int, body: dict[str, Any], errors: list[FieldError]) -> None:
        super().__init__("\n".join(map(str, errors)) or "invalid request", status, body)
        self.errors = errors


class AuthError(ApiError):
    """401 (no or a bad token) or 403 (the token lacks the scope)."""


class Conflict(ApiError):
    """409: the job already ended, the component is busy, a key was reused, ..."""

    @property
    def job_id(self) -> int | None:
        value = self.body.get("id")
        return value if isinstance(value, int) else None

    @property
    def state(self) -> str | None:
        value = self.body.get("state")
        return value if isinstance(value, str) else None


class Unavailable(ApiError):
    """503: try again; ``retry_after`` is the server's hint in seconds, if any."""

    def __init__(
        self, message: str, status: int, body: dict[str, Any], retry_after: float | None
    ) -> None:
        super().__init__(message, status, body)
        self.retry_after = retry_after


class ServerError(ApiError):
    """Any other 5xx: the server's log says more."""


_BY_STATUS: dict[int, type[ApiError]] = {401: AuthError, 403: AuthError, 404: NotFound}
_BY_STATUS[409] = Conflict


def from_response(response: httpx.Response) -> ApiError:
    """The error an answer means (call only for ``response.is_error``; its body read)."""
    status = response.status_code
    try:
        decoded = response.json()
    except ValueError:
        decoded = None
    body: dict[str, Any] = decoded if isinstance(decoded, dict) else {}
    detail = body.get("detail")
    if status == 422 and isinstance(detail, list):
        return InvalidRequest(status, body, [_field_error(item) for item in detail])
    if not isinstance(detail, str) or not detail:
        text = response.text.strip()[:200]
        detail = f"HTTP {status} {response.reason_phrase}" + (f": {text}" if text else "")
    if status == 422:  # a refusal worded as one sentence (an attr's value, ...)
        return InvalidRequest(status, body, [FieldError((), detail, "value_error")])
    if status == 503:
        return Unavailable(detail, status, body, retry_after(response))
    kind = _BY_STATUS.get(status) or (ServerError if status >= 500 else ApiError)
    return kind(detail, status, body)


def _field_error(item: Any) -> FieldError:
    if not isinstance(item, dict):
        return FieldError((), str(item), "value_error")
    loc = tuple(p if isinstance(p, int) else str(p) for p in item.get("loc") or ())
    message = str(item.get("msg", "invalid")).removeprefix("Value error, ")
    return FieldError(loc, message, str(item.get("type", "value_error")))


def retry_after(response: httpx.Response) -> float | None:
    """The Retry-After header in seconds (only its number form; gantry sends that)."""
    try:
        return max(0.0, float(response.headers["retry-after"]))
    except (KeyError, ValueError):
        return None


def transport_error(exc: httpx.TransportError, url: str) -> ConnectionFailed:
    """An httpx transport failure, worded with the server's URL."""
    if isinstance(exc, httpx.ConnectError):
        return Unreachable(f"cannot reach the gantry server at {url}", url)
    if isinstance(exc, httpx.TimeoutException):
        return RequestTimeout(f"the gantry server at {url} did not answer in time", url)
    reason = str(exc) or type(exc).__name__
    return ConnectionLost(f"lost the connection to the gantry server at {url} ({reason})", url)
