"""Series completeness: when the newest instance arrived, when the series was complete, how many are expected.

Also one series row per (study, SeriesInstanceUID): intakes running at once (several associations,
STOW-RS beside C-STORE) must meet on one row, never split a series in two.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("series") as batch:
        batch.add_column(sa.Column("last_instance_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("expected_instances", sa.Integer(), nullable=True))
        batch.create_index("ix_series_completion", ["completed_at", "last_instance_at"])
        batch.create_unique_constraint("uq_series_study_series", ["study_pk", "series_instance_uid"])


def downgrade() -> None:
    with op.batch_alter_table("series") as batch:
        batch.drop_constraint("uq_series_study_series", type_="unique")
        batch.drop_index("ix_series_completion")
        batch.drop_column("expected_instances")
        batch.drop_column("completed_at")
        batch.drop_column("last_instance_at")
