"""API tokens: created and revoked locally (``gantry token``), checked by the server.

A token is ``gty_<random>``; only its SHA-256 is stored, so a copy of the
database gives no access. Scopes nest: ``admin`` ⊇ ``submit`` ⊇ ``read``.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Table, insert, select, update

from gantry.models import ApiToken, utcnow

token_t: Table = ApiToken.__table__  # type: ignore[attr-defined]

SCOPES = ("read", "submit", "admin")
PREFIX = "gty_"


class TokenError(ValueError):
    """A token request cannot be honoured; the message says why and what to do."""


def implied(scopes: list[str]) -> frozenset[str]:
    """Every scope a token holds, counting the ones its scopes include."""
    best = max((SCOPES.index(s) for s in scopes if s in SCOPES), default=-1)
    return frozenset(SCOPES[: best + 1])


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class TokenInfo:
    id: int
    name: str
    scopes: list[str]
    created_at: Any
    revoked_at: Any


def create_token(conn: Connection, name: str, scopes: list[str]) -> tuple[int, str]:
    """Store a new token; returns its id and the secret (shown once, never stored)."""
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise TokenError(f"scopes must be among {', '.join(SCOPES)} (got {scopes or 'none'})")
    if not name.strip() or len(name) > 100:
        raise TokenError("a token needs a name of 1 to 100 characters, e.g. 'ci-runner'")
    token = PREFIX + secrets.token_urlsafe(32)
    result = conn.execute(
        insert(token_t).values(
            name=name, secret_hash=digest(token), scopes=sorted(set(scopes)), created_at=utcnow()
        )
    )
    assert result.inserted_primary_key is not None
    return int(result.inserted_primary_key[0]), token


def revoke_token(conn: Connection, token_id: int) -> bool:
    result = conn.execute(
        update(token_t)
        .where(token_t.c.id == token_id, token_t.c.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    return result.rowcount > 0


def list_tokens(conn: Connection) -> list[TokenInfo]:
    rows = conn.execute(select(token_t).order_by(token_t.c.id)).mappings()
    return [
        TokenInfo(r["id"], r["name"], list(r["scopes"]), r["created_at"], r["revoked_at"])
        for r in rows
    ]


@dataclass(frozen=True, slots=True)
class ActiveToken:
    """What the API needs of a token not revoked: its name and the scopes it holds."""

    name: str
    scopes: frozenset[str]


def active_hashes(conn: Connection) -> dict[str, ActiveToken]:
    """secret hash -> the token, for every token not revoked."""
    rows = conn.execute(
        select(token_t.c.secret_hash, token_t.c.name, token_t.c.scopes).where(
            token_t.c.revoked_at.is_(None)
        )
    )
    return {row.secret_hash: ActiveToken(row.name, implied(list(row.scopes))) for row in rows}


def any_token_made(conn: Connection) -> bool:
    """Whether a token was ever made: revoking the last one must not open the server."""
    return conn.execute(select(token_t.c.id).limit(1)).first() is not None
