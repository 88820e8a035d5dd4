"""Modules stay small enough to read in one sitting (STYLE.md: under ~400 lines).

Tests and benchmarks are exempt; everything that ships is not.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ("app", "backends", "drivers", "alembic")
LIMIT = 400


def test_no_shipped_module_is_over_the_limit() -> None:
    too_long = {
        str(path.relative_to(ROOT)): lines
        for folder in SHIPPED
        for path in sorted((ROOT / folder).rglob("*.py"))
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > LIMIT
    }
    assert not too_long, f"split these modules (over {LIMIT} lines): {too_long}"
