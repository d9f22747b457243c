"""Export jobs: one row per (finished run, PACS destination) with its state, tries and last error (issue 7 §4).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Non-native, as every enum here: a VARCHAR, so a new state needs no ALTER TYPE.
EXPORT_STATE = sa.Enum("pending", "sending", "sent", "dead_letter", name="exportstate", native_enum=False, length=16)


def _timestamp(name: str, *, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "export_jobs",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("run_pk", sa.String(36), nullable=False),
        sa.Column("series_pk", sa.String(36), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("destination", sa.String(512), nullable=False),
        sa.Column("state", EXPORT_STATE, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("n_objects", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        _timestamp("next_attempt_at", nullable=True),
        _timestamp("sent_at", nullable=True),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.ForeignKeyConstraint(["run_pk"], ["analysis_runs.id"], name=op.f("fk_export_jobs_run_pk_analysis_runs"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["series_pk"], ["series.id"], name=op.f("fk_export_jobs_series_pk_series"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_export_jobs")),
        sa.UniqueConstraint("run_pk", "kind", "destination", name="uq_export_jobs_run_destination"),
    )
    op.create_index(op.f("ix_export_jobs_run_pk"), "export_jobs", ["run_pk"])
    op.create_index(op.f("ix_export_jobs_series_pk"), "export_jobs", ["series_pk"])
    op.create_index("ix_export_jobs_due", "export_jobs", ["state", "next_attempt_at"])


def downgrade() -> None:
    op.drop_table("export_jobs")
