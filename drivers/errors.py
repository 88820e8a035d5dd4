"""Errors of the driver contract. ``ModelInterface`` turns them into failed Replies."""

from __future__ import annotations


class DriverError(Exception):
    """A call could not be done; the message says why and how to fix it."""


class AttrError(DriverError, ValueError):
    """A value for an attribute is unknown, read-only, or invalid."""


class TaskInvalid(DriverError, ValueError):
    """A task was refused at submit."""


class TaskTimeout(DriverError, TimeoutError):
    """A task overran ``max_duration`` plus the grace period (a hung device)."""
