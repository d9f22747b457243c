"""Scans (DICOM series): list, read, annotate, delete, and stream their bytes back."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session, joinedload

from shared.db.models import AnalysisRun, Instance, Series, Study
from shared.storage.base import ObjectStore


def to_api(series: Series) -> dict:
    """The scan as the API shows it (``series.study`` must be loaded)."""
    return {
        "id": series.id,
        "patient_id": series.study.patient_pk,
        "study_instance_uid": series.study.study_instance_uid,
        "series_instance_uid": series.series_instance_uid,
        "modality": series.modality,
        "body_part_examined": series.body_part_examined,
        "series_description": series.series_description,
        "description": series.description,
        "source": series.source,
        "n_instances": series.n_instances,
        "size_bytes": series.size_bytes,
        "original_filename": series.original_filename,
        "original_sha256": series.original_sha256,
        "created_at": series.created_at,
        "updated_at": series.updated_at,
    }


def list_scans(
    *,
    session: Session,
    limit: int,
    offset: int,
    patient_id: str | None = None,
    study_uid: str | None = None,
    source: str | None = None,
) -> tuple[list[Series], int]:
    """A page of scans, newest first, and the total matching the filters."""
    query = select(Series).join(Study, Series.study_pk == Study.id)
    if patient_id is not None:
        query = query.where(Study.patient_pk == patient_id)
    if study_uid is not None:
        query = query.where(Study.study_instance_uid == study_uid)
    if source is not None:
        query = query.where(Series.source == source)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(
        query.options(joinedload(Series.study)).order_by(Series.created_at.desc(), Series.id).limit(limit).offset(offset)
    ).all()
    return list(rows), total


def get_scan(*, session: Session, scan_id: str) -> Series | None:
    """The scan with this id, its study loaded."""
    return session.scalar(select(Series).where(Series.id == scan_id).options(joinedload(Series.study)))


def update_description(*, session: Session, series: Series, description: str | None) -> Series:
    """Set the scan's free-text note (not committed)."""
    series.description = description
    session.flush()
    return series


def delete_scan(*, session: Session, store: ObjectStore, series: Series) -> int:
    """Delete the scan's objects (instances, original upload, run artifacts), then its rows; returns objects removed.

    Objects go first: if storage fails, the row is still there and the delete can be retried, rather
    than leaving objects no row points to.
    """
    run_ids = session.scalars(select(AnalysisRun.id).where(AnalysisRun.series_pk == series.id)).all()
    removed = store.delete_prefix(series.storage_prefix)
    if series.original_key and not series.original_key.startswith(series.storage_prefix):
        store.delete(series.original_key)
        removed += 1
    for run_id in run_ids:
        removed += store.delete_prefix(f"runs/{run_id}/")
    study = series.study
    session.delete(series)
    session.flush()
    if session.scalar(select(func.count()).select_from(Series).where(Series.study_pk == study.id)) == 0:
        session.delete(study)
    return removed


@dataclass(frozen=True)
class Download:
    """What GET /api/scans/{id}/file sends."""

    chunks: Iterator[bytes]
    media_type: str
    filename: str
    size: int | None


def download(*, session: Session, store: ObjectStore, series: Series) -> Download:
    """The original upload when it was one file, else a zip of the stored instances (both streamed)."""
    if series.original_key:
        info = store.stat(series.original_key)
        return Download(
            chunks=store.iter_chunks(series.original_key),
            media_type=series.original_content_type or "application/octet-stream",
            filename=series.original_filename or "scan.dcm",
            size=info.size,
        )
    members = session.execute(
        select(Instance.sop_instance_uid, Instance.storage_key)
        .where(Instance.series_pk == series.id)
        .order_by(Instance.id)
    ).all()
    return Download(
        chunks=iter_zip(store=store, members=[(f"{sop}.dcm", key) for sop, key in members]),
        media_type="application/zip",
        filename=f"{series.series_instance_uid}.zip",
        size=None,
    )


class _Sink:
    """A write-only, unseekable file: ZipFile then writes data descriptors and never seeks back."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []

    def write(self, data: bytes) -> int:
        self._chunks.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def drain(self) -> Iterator[bytes]:
        chunks, self._chunks = self._chunks, []
        if chunks:
            yield b"".join(chunks)


def iter_zip(*, store: ObjectStore, members: list[tuple[str, str]]) -> Iterator[bytes]:
    """A stored (uncompressed: DICOM pixel data barely compresses) zip of ``(name, key)`` objects, streamed."""
    sink = _Sink()
    with zipfile.ZipFile(sink, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:  # type: ignore[arg-type]
        for name, key in members:
            with archive.open(name, mode="w") as member:
                for chunk in store.iter_chunks(key):
                    member.write(chunk)
                    yield from sink.drain()
            yield from sink.drain()
    yield from sink.drain()
