"""Clinical outputs of a scan's latest finished ``done`` run, read from object storage."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.problems import ProblemError
from gateway.results.cache import RenderCache
from gateway.results.models import PDF
from shared.contracts import RunArtifacts
from shared.db.models import TERMINAL_STATES, AnalysisRun, Report
from shared.dicom.volume import Volume
from shared.export.stow import multipart_related as encode_multipart_related
from shared.pipeline.artifacts import get_anomaly_map, get_label_map, get_volume
from shared.report import ReportStatus, ReportV1
from shared.storage.base import ObjectNotFound, ObjectStore


def finished_report(*, session: Session, series_pk: str) -> ReportV1:
    """The report of the series' latest finished run when it is ``done``; else a 404 problem."""
    body = session.scalar(
        select(Report.body)
        .join(AnalysisRun, AnalysisRun.id == Report.run_pk)
        .where(Report.series_pk == series_pk, AnalysisRun.state.in_(list(TERMINAL_STATES)))
        .order_by(AnalysisRun.finished_at.desc(), AnalysisRun.created_at.desc())
        .limit(1)
    )
    report = ReportV1.model_validate(body) if body is not None else None
    if report is None or report.status is not ReportStatus.done:
        raise ProblemError(404, "no-report", "This scan has no finished analysis with results.", reason="no_report",
                           title="No report")
    return report


def artifact_key(report: ReportV1, name: str) -> str:
    """The stored key of the report's artifact ``name``; a 404 problem when the run made none."""
    key = report.artifacts.get(name)
    if key is None:
        raise ProblemError(404, "no-output", f"This analysis has no {name.replace('_', ' ')} output.",
                           reason="no_output", title="No such output")
    return key


def key_image_keys(report: ReportV1) -> list[str]:
    """Keys of the report's key images in finding order; a 404 problem when there are none."""
    keys = [key for name, key in sorted(report.artifacts.items()) if name.startswith("key_image_")]
    if not keys:
        raise ProblemError(404, "no-output", "This analysis has no key images (no findings).",
                           reason="no_output", title="No such output")
    return keys


def multipart_related(*, store: ObjectStore, keys: list[str], media_type: str) -> tuple[bytes, str]:
    """A ``multipart/related`` body of the objects at ``keys`` (RFC 2387) and its boundary."""
    return encode_multipart_related([store.get_bytes(key) for key in keys], media_type=media_type)


@dataclass
class Maps:
    """What the slice PNGs and the PDF are drawn from: the gate's volume and the run's anomaly map
    (``float16``, as stored: half the memory, and renders convert one slice at a time)."""

    volume: Volume
    anomaly: np.ndarray

    @property
    def nbytes(self) -> int:
        """Memory the arrays hold."""
        return self.volume.hu.nbytes + self.anomaly.nbytes


def render_maps(*, store: ObjectStore, report: ReportV1, cache: RenderCache) -> Maps:
    """The run's volume and anomaly map, decoded once per run and gateway process (see :mod:`gateway.results.cache`)."""
    volume_key, anomaly_key = artifact_key(report, "volume"), artifact_key(report, "anomaly")

    def load() -> Maps:
        return Maps(volume=get_volume(store, volume_key), anomaly=get_anomaly_map(store, anomaly_key, dtype=np.float16).scores)

    return cache.get_or_load(report.run_id or volume_key, load, lambda maps: maps.nbytes)


def stored_report_pdf(*, store: ObjectStore, report: ReportV1, cache: RenderCache) -> bytes:
    """The run's report PDF: rendered on the first download and kept beside the run's other artifacts."""
    from worker_localizer.outputs.pdf import report_pdf  # pulls in highdicom: loaded when first asked for

    key = RunArtifacts.for_run(report.run_id).report_pdf if report.run_id else None
    if key is not None:
        try:
            return store.get_bytes(key)
        except ObjectNotFound:
            pass
    maps = render_maps(store=store, report=report, cache=cache)
    findings = get_label_map(store, report.artifacts["findings"]).labels if "findings" in report.artifacts else None
    pdf = report_pdf(volume=maps.volume, report=report, anomaly_score=maps.anomaly, anomaly_mask=findings,
                     organ_labels=get_label_map(store, artifact_key(report, "organs")).labels)
    if key is not None:
        store.put_bytes(key, pdf, content_type=PDF)
    return pdf


def check_slice(volume: Volume, k: int) -> None:
    """A 404 problem when the volume has no slice ``k``."""
    if not 0 <= k < volume.shape[0]:
        raise ProblemError(404, "no-slice", f"Slice {k} is outside 0..{volume.shape[0] - 1}.", reason="slice_out_of_range",
                           title="No such slice")
