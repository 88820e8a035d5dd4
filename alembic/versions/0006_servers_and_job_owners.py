"""several servers: a row per server with its heartbeat; each unfinished job's owner

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-08 00:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gantry_server",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("host", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("machine", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("owner", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=True)
        )
        batch_op.add_column(sa.Column("cancel_request", sa.Text(), nullable=True))
        batch_op.create_index("ix_job_owner_state", ["owner", "state"], unique=False)
        batch_op.create_index(
            "ix_job_cancel_request",
            ["owner"],
            unique=False,
            postgresql_where=sa.text("cancel_request IS NOT NULL"),
            sqlite_where=sa.text("cancel_request IS NOT NULL"),
        )


def downgrade() -> None:
    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.drop_index("ix_job_cancel_request")
        batch_op.drop_index("ix_job_owner_state")
        batch_op.drop_column("cancel_request")
        batch_op.drop_column("owner")
    op.drop_table("gantry_server")
