"""What must hold before a server starts; each refusal says what to change.

``create_app``'s lifespan refuses with these checks, and ``gantry serve``
runs them first so a refusal is one plain line instead of a start-up
traceback. No HTTP here.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection
from pathlib import Path

from sqlalchemy import create_engine

from gantry import db
from gantry.instruments.devices import Devices, DevicesFileError, load_devices
from gantry.tokens import active_hashes


class StartupRefused(RuntimeError):
    """The server must not start as configured; the message says what to change."""


def is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def refuse_exposure(host: str, has_tokens: bool) -> None:
    """Listening beyond this machine needs API tokens: without one, anyone could submit."""
    if not has_tokens and not is_loopback(host):
        raise StartupRefused(
            f"refusing to listen on {host} without API tokens: create one with "
            "`gantry token create --scope admin NAME`, or listen on 127.0.0.1"
        )


def devices_or_refuse(devices_file: Path | None, driver_names: Collection[str]) -> Devices:
    """The devices file read; a malformed one names its line and field."""
    try:
        return load_devices(devices_file, driver_names)
    except DevicesFileError as exc:
        raise StartupRefused(str(exc)) from None


def tokens_exist(database_url: str) -> bool:
    """Whether an active API token exists, migrating the database first (blocking)."""
    db.upgrade(database_url)
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            return bool(active_hashes(conn))
    finally:
        engine.dispose()
