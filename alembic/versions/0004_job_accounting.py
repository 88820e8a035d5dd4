"""job accounting: CPU, peak memory and wall time of ended jobs; instrument time and samples

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06 03:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_COLUMNS = (
    ("cpu_user_seconds", sa.Float),
    ("cpu_system_seconds", sa.Float),
    ("max_rss_bytes", sa.BigInteger),
    ("wall_seconds", sa.Float),
    ("driver_seconds", sa.Float),
    ("samples", sa.BigInteger),
)


def upgrade() -> None:
    # Nullable columns without defaults: an ADD COLUMN each, no table rewrite.
    for name, kind in _COLUMNS:
        op.add_column("job", sa.Column(name, kind(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("job", schema=None) as batch_op:
        for name, _ in reversed(_COLUMNS):
            batch_op.drop_column(name)
