"""What every command shares: where the server is, and a client for it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gantry.client import DEFAULT_URL, Client

if TYPE_CHECKING:
    from gantry.client.sync import Transport


@dataclass
class Runtime:
    """Set by the global options; tests hand in one with a mock ``transport``."""

    url: str = DEFAULT_URL
    transport: Transport | None = None

    def client(self) -> Client:
        token = os.environ.get("GANTRY_TOKEN") or None
        return Client(self.url, token=token, transport=self.transport)
