"""Bearer-token checks for the API.

Tokens are required once one was made (revoked or not), and always when the server listens on
a non-loopback address (``create_app`` refuses to start there without one).
The server re-reads the active tokens at most every ``REFRESH`` seconds, so a
token created or revoked with the CLI takes effect within that time.
Browsers' EventSource cannot set headers: SSE clients may pass
``?access_token=``.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

import anyio
from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine as Database

from gantry.tokens import ActiveToken, active_hashes, any_token_made, digest

REFRESH = 2.0

bearer = HTTPBearer(auto_error=False, description="An API token: `gantry token create`.")


class TokenCache:
    def __init__(self, database: Database, *, always_required: bool) -> None:
        self._database = database
        self._always = always_required
        self._hashes: dict[str, ActiveToken] = {}
        self._required = always_required
        self._loaded_at = float("-inf")
        self._lock = anyio.Lock()

    def _load(self) -> tuple[dict[str, ActiveToken], bool]:
        with self._database.connect() as conn:
            return active_hashes(conn), any_token_made(conn)

    async def current(self) -> dict[str, ActiveToken]:
        """Active token hashes, re-read at most every ``REFRESH`` seconds."""
        if time.monotonic() - self._loaded_at > REFRESH:
            async with self._lock:
                if time.monotonic() - self._loaded_at > REFRESH:
                    self._hashes, made = await anyio.to_thread.run_sync(self._load)
                    self._required = self._always or made
                    self._loaded_at = time.monotonic()
        return self._hashes

    async def check(self, token: str | None, scope: str) -> str | None:
        """The name of ``token`` if it may act in ``scope`` (None on an open server)."""
        hashes = await self.current()
        if not self._required:
            return None  # no token was ever made: an open, loopback-only server
        if not token:
            raise HTTPException(
                status_code=401,
                detail="this server requires an API token: pass 'Authorization: Bearer <token>' "
                "(CLI: set GANTRY_TOKEN); create one with `gantry token create`",
                headers={"WWW-Authenticate": "Bearer"},
            )
        found = hashes.get(digest(token))
        if found is None:
            raise HTTPException(
                status_code=401,
                detail="the API token is unknown or revoked: create a new one with "
                "`gantry token create`",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if scope not in found.scopes:
            raise HTTPException(
                status_code=403,
                detail=f"this token lacks the '{scope}' scope: use a token created with "
                f"--scope {scope}",
            )
        return found.name


def require_for_method(read: str = "read", write: str = "submit") -> Any:
    """``read`` for GET/HEAD, ``write`` for everything else."""

    async def check(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> None:
        token = credentials.credentials if credentials else request.query_params.get("access_token")
        scope = read if request.method in ("GET", "HEAD") else write
        cache: TokenCache = request.app.state.tokens
        # Who acts, for what a request makes (a job's submitted_by).
        request.state.token_name = await cache.check(token, scope)

    return Depends(check)


def token_name(request: Request) -> str | None:
    """The name of the request's token, once ``require_for_method`` checked it."""
    name: str | None = getattr(request.state, "token_name", None)
    return name


#: A route's caller, by token name (None on a server without tokens).
TokenNameDep = Annotated[str | None, Depends(token_name)]
