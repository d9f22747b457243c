"""Queries of export jobs for the API; their state changes live in :mod:`shared.export.service`."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shared.db.models import ExportJob, ExportState


def list_scan_exports(*, session: Session, series_pk: str, run_id: str | None = None) -> Sequence[ExportJob]:
    """The scan's export jobs (optionally of one run), newest first."""
    query = select(ExportJob).where(ExportJob.series_pk == series_pk)
    if run_id is not None:
        query = query.where(ExportJob.run_pk == run_id)
    return session.scalars(query.order_by(ExportJob.created_at.desc(), ExportJob.destination)).all()


def list_exports(*, session: Session, state: ExportState | None, limit: int, offset: int) -> tuple[Sequence[ExportJob], int]:
    """A page of every export job (optionally in one state), newest first, and how many match."""
    where = [ExportJob.state == state] if state is not None else []
    total = session.scalar(select(func.count()).select_from(ExportJob).where(*where)) or 0
    rows = session.scalars(
        select(ExportJob).where(*where).order_by(ExportJob.created_at.desc(), ExportJob.id).limit(limit).offset(offset)
    ).all()
    return rows, total


def get_scan_export(*, session: Session, series_pk: str, export_id: str) -> ExportJob | None:
    """The export job ``export_id`` when it belongs to the scan."""
    job = session.get(ExportJob, export_id)
    return job if job is not None and job.series_pk == series_pk else None
