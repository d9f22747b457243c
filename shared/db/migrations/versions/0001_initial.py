"""Initial schema: patients, studies, series, instances, analysis runs, reports, API keys, audit events.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Non-native enums: a VARCHAR on every database, so adding a member needs no ALTER TYPE.
ROLE = sa.Enum("ingest", "clinician", "operator", "admin", name="role", native_enum=False, length=16)
RUN_STATE = sa.Enum("queued", "running", "done", "rejected", "failed", name="runstate", native_enum=False, length=16)


def _timestamp(name: str, *, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("key_hash", sa.String(256), nullable=False),
        sa.Column("role", ROLE, nullable=False),
        _timestamp("created_at"),
        _timestamp("last_used_at", nullable=True),
        _timestamp("revoked_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
    )
    op.create_index(op.f("ix_api_keys_prefix"), "api_keys", ["prefix"], unique=True)

    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        _timestamp("at"),
        sa.Column("api_key_id", sa.String(36), nullable=True),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("resource_type", sa.String(32), nullable=False),
        sa.Column("resource_id", sa.String(64), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    op.create_index(op.f("ix_audit_events_api_key_id"), "audit_events", ["api_key_id"])
    op.create_index(op.f("ix_audit_events_at"), "audit_events", ["at"])

    op.create_table(
        "patients",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("patient_id", sa.String(64), nullable=True),
        sa.Column("name", sa.String(256), nullable=True),
        sa.Column("birth_date", sa.String(8), nullable=True),
        sa.Column("sex", sa.String(16), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patients")),
    )
    op.create_index(op.f("ix_patients_patient_id"), "patients", ["patient_id"])

    op.create_table(
        "studies",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("study_instance_uid", sa.String(64), nullable=False),
        sa.Column("patient_pk", sa.String(36), nullable=True),
        sa.Column("study_date", sa.String(8), nullable=True),
        sa.Column("study_description", sa.String(256), nullable=True),
        sa.Column("accession_number", sa.String(64), nullable=True),
        _timestamp("created_at"),
        sa.ForeignKeyConstraint(
            ["patient_pk"], ["patients.id"], name=op.f("fk_studies_patient_pk_patients"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_studies")),
    )
    op.create_index(op.f("ix_studies_patient_pk"), "studies", ["patient_pk"])
    op.create_index(op.f("ix_studies_study_instance_uid"), "studies", ["study_instance_uid"], unique=True)

    op.create_table(
        "series",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("study_pk", sa.String(36), nullable=False),
        sa.Column("series_instance_uid", sa.String(64), nullable=False),
        sa.Column("modality", sa.String(16), nullable=True),
        sa.Column("body_part_examined", sa.String(64), nullable=True),
        sa.Column("series_description", sa.String(256), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("n_instances", sa.Integer(), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("storage_prefix", sa.String(512), nullable=False),
        sa.Column("original_key", sa.String(512), nullable=True),
        sa.Column("original_filename", sa.String(256), nullable=True),
        sa.Column("original_content_type", sa.String(128), nullable=True),
        sa.Column("original_sha256", sa.String(64), nullable=True),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.ForeignKeyConstraint(["study_pk"], ["studies.id"], name=op.f("fk_series_study_pk_studies"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_series")),
    )
    op.create_index(op.f("ix_series_series_instance_uid"), "series", ["series_instance_uid"])
    op.create_index(op.f("ix_series_study_pk"), "series", ["study_pk"])

    op.create_table(
        "analysis_runs",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("series_pk", sa.String(36), nullable=False),
        sa.Column("state", RUN_STATE, nullable=False),
        sa.Column("stage", sa.String(16), nullable=True),
        sa.Column("stages", sa.JSON(), nullable=False),
        sa.Column("model_versions", sa.JSON(), nullable=False),
        sa.Column("reason", sa.String(64), nullable=True),
        sa.Column("reason_detail", sa.Text(), nullable=True),
        sa.Column("requested_by", sa.String(36), nullable=True),
        _timestamp("created_at"),
        _timestamp("started_at", nullable=True),
        _timestamp("finished_at", nullable=True),
        sa.ForeignKeyConstraint(
            ["series_pk"], ["series.id"], name=op.f("fk_analysis_runs_series_pk_series"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_analysis_runs")),
    )
    op.create_index(op.f("ix_analysis_runs_created_at"), "analysis_runs", ["created_at"])
    op.create_index(op.f("ix_analysis_runs_series_pk"), "analysis_runs", ["series_pk"])
    op.create_index(op.f("ix_analysis_runs_state"), "analysis_runs", ["state"])

    op.create_table(
        "instances",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("series_pk", sa.String(36), nullable=False),
        sa.Column("sop_instance_uid", sa.String(64), nullable=False),
        sa.Column("sop_class_uid", sa.String(64), nullable=True),
        sa.Column("storage_key", sa.String(512), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=True),
        _timestamp("received_at"),
        sa.ForeignKeyConstraint(["series_pk"], ["series.id"], name=op.f("fk_instances_series_pk_series"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_instances")),
        sa.UniqueConstraint("series_pk", "sop_instance_uid", name="uq_instances_series_sop"),
    )
    op.create_index(op.f("ix_instances_series_pk"), "instances", ["series_pk"])

    op.create_table(
        "reports",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("run_pk", sa.String(36), nullable=False),
        sa.Column("series_pk", sa.String(36), nullable=False),
        sa.Column("schema_version", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("verdict", sa.String(16), nullable=True),
        sa.Column("body", sa.JSON(), nullable=False),
        _timestamp("created_at"),
        sa.ForeignKeyConstraint(
            ["run_pk"], ["analysis_runs.id"], name=op.f("fk_reports_run_pk_analysis_runs"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["series_pk"], ["series.id"], name=op.f("fk_reports_series_pk_series"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reports")),
        sa.UniqueConstraint("run_pk", name=op.f("uq_reports_run_pk")),
    )
    op.create_index(op.f("ix_reports_created_at"), "reports", ["created_at"])
    op.create_index(op.f("ix_reports_series_pk"), "reports", ["series_pk"])


def downgrade() -> None:
    # Children before parents; dropping a table drops its indexes.
    for table in ("reports", "instances", "analysis_runs", "series", "studies", "patients", "audit_events", "api_keys"):
        op.drop_table(table)
