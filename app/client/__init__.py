"""gantry's Python client: ``Client`` (blocking) and ``AsyncClient``, one implementation.

    from gantry.client import Client

    with Client("http://127.0.0.1:8000", token="...") as gantry:
        job = gantry.submit(spec="echo hello", name="greet")
        print(gantry.wait(job.id).state, gantry.logs(job.id))

Answers are the API's own pydantic models (:mod:`gantry.client.models`);
error answers raise a :class:`GantryError` subclass carrying the server's
message. See docs/client.md.
"""

from gantry.client.aio import AsyncClient
from gantry.client.core import DEFAULT_URL
from gantry.client.errors import (
    ApiError,
    AuthError,
    Conflict,
    ConnectionFailed,
    ConnectionLost,
    FieldError,
    GantryError,
    InvalidRequest,
    NotFound,
    RequestTimeout,
    ServerError,
    StreamEnded,
    Unavailable,
    Unreachable,
    WaitTimeout,
)
from gantry.client.sync import Client

__all__ = [
    "DEFAULT_URL",
    "ApiError",
    "AsyncClient",
    "AuthError",
    "Client",
    "Conflict",
    "ConnectionFailed",
    "ConnectionLost",
    "FieldError",
    "GantryError",
    "InvalidRequest",
    "NotFound",
    "RequestTimeout",
    "ServerError",
    "StreamEnded",
    "Unavailable",
    "Unreachable",
    "WaitTimeout",
]
