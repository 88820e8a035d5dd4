"""jobs, dependencies, tags and events

Revision ID: 0001
Revises:
Create Date: 2026-11-22 00:45:11.378729
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "job",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("backend", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("spec", sa.Text(), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=True),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("env", sa.JSON(), nullable=False),
        sa.Column("working_dir", sqlmodel.sql.sqltypes.AutoString(length=4096), nullable=True),
        sa.Column("inputs", sa.JSON(), nullable=False),
        sa.Column("outputs", sa.JSON(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("warnings", sa.JSON(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("backend_ref", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
        sa.Column("exit_code", sa.Integer(), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("started_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("ended_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.create_index("ix_job_backend_id", ["backend", "id"], unique=False)
        batch_op.create_index("ix_job_name_id", ["name", "id"], unique=False)
        batch_op.create_index("ix_job_state_id", ["state", "id"], unique=False)

    op.create_table(
        "job_dependency",
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("depends_on_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["depends_on_id"], ["job.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["job_id"], ["job.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("job_id", "depends_on_id"),
    )
    with op.batch_alter_table("job_dependency", schema=None) as batch_op:
        batch_op.create_index("ix_job_dependency_depends_on_id", ["depends_on_id"], unique=False)

    op.create_table(
        "job_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("from_state", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
        sa.Column("to_state", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["job_id"], ["job.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("job_event", schema=None) as batch_op:
        batch_op.create_index("ix_job_event_job_id_id", ["job_id", "id"], unique=False)

    op.create_table(
        "job_tag",
        sa.Column("tag", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["job.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("tag", "job_id"),
    )


def downgrade() -> None:

    op.drop_table("job_tag")
    with op.batch_alter_table("job_event", schema=None) as batch_op:
        batch_op.drop_index("ix_job_event_job_id_id")

    op.drop_table("job_event")
    with op.batch_alter_table("job_dependency", schema=None) as batch_op:
        batch_op.drop_index("ix_job_dependency_depends_on_id")

    op.drop_table("job_dependency")
    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.drop_index("ix_job_state_id")
        batch_op.drop_index("ix_job_name_id")
        batch_op.drop_index("ix_job_backend_id")

    op.drop_table("job")
