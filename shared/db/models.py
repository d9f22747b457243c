"""SQLAlchemy 2 models. Portable across PostgreSQL (psycopg 3) and SQLite; schema changes go through
Alembic (``shared/db/migrations``), never ``create_all`` in production.

The API's "scan" is a :class:`Series`. An :class:`AnalysisRun` is one analyze request; a run that ends
``done`` owns a :class:`Report`. The latest finished run's report is the series' report.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime, timezone

from sqlalchemy import JSON, BigInteger, DateTime, Enum, ForeignKey, Index, Integer, MetaData, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    """Timezone-aware now, for defaults."""
    return datetime.now(timezone.utc)


def new_id() -> str:
    """A random UUID4 string; ids are opaque strings in the API."""
    return str(uuid.uuid4())


class Base(DeclarativeBase):
    """Declarative base; the naming convention keeps Alembic constraint names stable."""

    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )
    type_annotation_map = {dict: JSON, datetime: DateTime(timezone=True)}


class RunState(str, enum.Enum):
    """Lifecycle of an analysis run; ``done``, ``rejected`` and ``failed`` are terminal."""

    queued = "queued"
    running = "running"
    done = "done"
    rejected = "rejected"
    failed = "failed"


TERMINAL_STATES = frozenset({RunState.done, RunState.rejected, RunState.failed})


class Role(str, enum.Enum):
    """API key roles; each grants what the one before it grants, plus more (see gateway.auth)."""

    ingest = "ingest"
    clinician = "clinician"
    operator = "operator"
    admin = "admin"


class Patient(Base):
    """A patient as the PACS identifies them (PatientID, name and birth date are PHI: never logged)."""

    __tablename__ = "patients"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    patient_id: Mapped[str | None] = mapped_column(String(64), index=True)  # DICOM PatientID (0010,0020)
    name: Mapped[str | None] = mapped_column(String(256))
    birth_date: Mapped[str | None] = mapped_column(String(8))  # DICOM DA, YYYYMMDD
    sex: Mapped[str | None] = mapped_column(String(16))
    notes: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    studies: Mapped[list[Study]] = relationship(back_populates="patient")


class Study(Base):
    """A DICOM study (StudyInstanceUID)."""

    __tablename__ = "studies"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    study_instance_uid: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    patient_pk: Mapped[str | None] = mapped_column(ForeignKey("patients.id", ondelete="SET NULL"), index=True)
    study_date: Mapped[str | None] = mapped_column(String(8))
    study_description: Mapped[str | None] = mapped_column(String(256))
    accession_number: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    patient: Mapped[Patient | None] = relationship(back_populates="studies")
    series: Mapped[list[Series]] = relationship(back_populates="study")


class Series(Base):
    """A received series: the API's "scan". Its instances live in object storage under ``storage_prefix``."""

    __tablename__ = "series"
    # One row per SeriesInstanceUID of a study: concurrent intakes of one series must meet on it.
    __table_args__ = (
        UniqueConstraint("study_pk", "series_instance_uid", name="uq_series_study_series"),
        # The completeness scanner's question: series still open (completed_at NULL) that received instances.
        Index("ix_series_completion", "completed_at", "last_instance_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    study_pk: Mapped[str] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    series_instance_uid: Mapped[str] = mapped_column(String(64), index=True)
    modality: Mapped[str | None] = mapped_column(String(16))
    body_part_examined: Mapped[str | None] = mapped_column(String(64))
    series_description: Mapped[str | None] = mapped_column(String(256))  # from DICOM
    description: Mapped[str | None] = mapped_column(Text)  # the user's note (PUT /api/scans/{id})
    source: Mapped[str] = mapped_column(String(16), default="upload")  # upload | cstore | stowrs | predict
    n_instances: Mapped[int] = mapped_column(Integer, default=0)
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    storage_prefix: Mapped[str] = mapped_column(String(512))
    original_key: Mapped[str | None] = mapped_column(String(512))  # the uploaded file/zip as received
    original_filename: Mapped[str | None] = mapped_column(String(256))
    original_content_type: Mapped[str | None] = mapped_column(String(128))
    original_sha256: Mapped[str | None] = mapped_column(String(64))
    # Completeness of series arriving instance by instance (C-STORE, STOW-RS; see shared.completeness).
    last_instance_at: Mapped[datetime | None] = mapped_column()  # when the newest new instance was stored
    completed_at: Mapped[datetime | None] = mapped_column()  # None while instances may still come
    expected_instances: Mapped[int | None] = mapped_column(Integer)  # complete at once when reached
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    study: Mapped[Study] = relationship(back_populates="series")
    instances: Mapped[list[Instance]] = relationship(back_populates="series", cascade="all, delete-orphan")
    runs: Mapped[list[AnalysisRun]] = relationship(back_populates="series", cascade="all, delete-orphan")


class Instance(Base):
    """One stored DICOM instance (SOPInstanceUID), stored once however often it is received."""

    __tablename__ = "instances"
    __table_args__ = (UniqueConstraint("series_pk", "sop_instance_uid", name="uq_instances_series_sop"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    series_pk: Mapped[str] = mapped_column(ForeignKey("series.id", ondelete="CASCADE"), index=True)
    sop_instance_uid: Mapped[str] = mapped_column(String(64))
    sop_class_uid: Mapped[str | None] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(512))
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    sha256: Mapped[str | None] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)

    series: Mapped[Series] = relationship(back_populates="instances")


class AnalysisRun(Base):
    """One analyze request of a series: its state per stage, timings, model versions and outcome."""

    __tablename__ = "analysis_runs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    series_pk: Mapped[str] = mapped_column(ForeignKey("series.id", ondelete="CASCADE"), index=True)
    state: Mapped[RunState] = mapped_column(Enum(RunState, native_enum=False, length=16), default=RunState.queued, index=True)
    stage: Mapped[str | None] = mapped_column(String(16))  # the stage running or last run
    stages: Mapped[dict] = mapped_column(default=dict)  # {"gate": {"state", "started_at", "seconds", ...}}
    model_versions: Mapped[dict] = mapped_column(default=dict)
    reason: Mapped[str | None] = mapped_column(String(64))  # stable code when rejected/failed
    reason_detail: Mapped[str | None] = mapped_column(Text)
    requested_by: Mapped[str | None] = mapped_column(String(36))  # ApiKey.id
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()

    series: Mapped[Series] = relationship(back_populates="runs")
    report: Mapped[Report | None] = relationship(back_populates="run", uselist=False, cascade="all, delete-orphan")


class Report(Base):
    """The report of a finished run; ``schema_version`` versions ``body``'s JSON schema."""

    __tablename__ = "reports"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    run_pk: Mapped[str] = mapped_column(ForeignKey("analysis_runs.id", ondelete="CASCADE"), unique=True)
    series_pk: Mapped[str] = mapped_column(ForeignKey("series.id", ondelete="CASCADE"), index=True)
    schema_version: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))  # done | rejected | failed
    verdict: Mapped[str | None] = mapped_column(String(16))  # normal | pathology
    body: Mapped[dict] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)

    run: Mapped[AnalysisRun] = relationship(back_populates="report")


class ApiKey(Base):
    """An API key; only a salted hash is stored, ``prefix`` identifies it in lists and audits."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(128))
    prefix: Mapped[str] = mapped_column(String(16), unique=True, index=True)
    key_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[Role] = mapped_column(Enum(Role, native_enum=False, length=16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()


class AuditEvent(Base):
    """Who did what to which resource (ids only, never PHI)."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    api_key_id: Mapped[str | None] = mapped_column(String(36), index=True)
    action: Mapped[str] = mapped_column(String(64))
    resource_type: Mapped[str] = mapped_column(String(32))
    resource_id: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict] = mapped_column(default=dict)


class ExportState(str, enum.Enum):
    """Where an export job stands: ``sent`` and ``dead_letter`` are final until a re-send."""

    pending = "pending"  # waiting for its first or next try (``next_attempt_at``)
    sending = "sending"  # a worker is trying now
    sent = "sent"
    dead_letter = "dead_letter"  # every try failed; ``last_error`` says why


class ExportJob(Base):
    """Results back to PACS: a finished run's SEG, SR and key images going to one destination."""

    __tablename__ = "export_jobs"
    __table_args__ = (
        UniqueConstraint("run_pk", "kind", "destination", name="uq_export_jobs_run_destination"),
        # The export worker's question: pending jobs whose next try is due.
        Index("ix_export_jobs_due", "state", "next_attempt_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    run_pk: Mapped[str] = mapped_column(ForeignKey("analysis_runs.id", ondelete="CASCADE"), index=True)
    series_pk: Mapped[str] = mapped_column(ForeignKey("series.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # cstore | stow
    destination: Mapped[str] = mapped_column(String(512))  # AE@host:port, or the STOW-RS URL
    state: Mapped[ExportState] = mapped_column(Enum(ExportState, native_enum=False, length=16), default=ExportState.pending)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    n_objects: Mapped[int | None] = mapped_column(Integer)  # objects delivered by the successful try
    last_error: Mapped[str | None] = mapped_column(Text)  # of the latest failed try; never PHI
    next_attempt_at: Mapped[datetime | None] = mapped_column()
    sent_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
