"""Whether a database error means the database is away (restarting, unreachable).

Such a write may be tried again once it is back; any other error is the
write's own fault. The API answers an outage with a retryable 503.
"""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError


def is_outage(exc: BaseException) -> bool:
    """True for a lost or refused connection, not for a bad statement."""
    if isinstance(exc, OperationalError | InterfaceError):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)
