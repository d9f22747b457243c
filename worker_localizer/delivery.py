"""The localizer's DICOM outputs in object storage, degraded rather than failed.

The verdict and findings are the product; SEG, SR and key images are renderings of them for the
PACS. So an output that cannot be made (source headers missing or unreadable, a source the DICOM
object model refuses) is reported in :attr:`shared.report.ReportV1.outputs` with a stable reason,
and the run still ends ``done``. Storage errors are not caught: they are transient, and the stage's
retry (:class:`shared.queue.stage_task.StageTask`) is the right answer to them.
"""

from __future__ import annotations

import io
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset

from shared.contracts import RunArtifacts
from shared.dicom.volume import Volume
from shared.pipeline.artifacts import get_source_headers
from shared.report import OutputReason, OutputStatus, ReportV1
from shared.storage.base import ObjectNotFound, ObjectStore
from worker_localizer.outputs import write_dicom_outputs

DICOM_MEDIA_TYPE = "application/dicom"
OUTPUT_NAMES = ("seg", "sr", "key_images")
DETAIL_MAX = 300


@dataclass
class SourceHeaders:
    """The headers of the volume's source instances, or why there are none."""

    datasets: list[Dataset] = field(default_factory=list)
    missing: str | None = None


@dataclass
class StoredOutputs:
    """What :func:`store_dicom_outputs` wrote (artifact name -> key) and each output's status."""

    keys: dict[str, str]
    statuses: list[OutputStatus]


def source_headers(
    *, store: ObjectStore, run_id: str, source_prefix: str | None, sop_instance_uids: list[str],
) -> SourceHeaders:
    """The headers of the instances of the volume's slices (``sop_instance_uids``): the gate's copy
    (``instances.json``), or for runs the gate analysed before it kept one, the stored instances'."""
    try:
        return SourceHeaders(get_source_headers(store, RunArtifacts.for_run(run_id).instances))
    except ObjectNotFound:
        pass
    except (ValueError, KeyError, TypeError) as error:  # a damaged artifact
        return SourceHeaders(missing=f"the gate's copy of the source headers is unreadable ({type(error).__name__})")
    if not source_prefix:
        return SourceHeaders(missing="the run names no source instances")
    return _stored_instance_headers(store, source_prefix, sop_instance_uids)


def store_dicom_outputs(
    *, store: ObjectStore, prefix: str, volume: Volume, sources: SourceHeaders, anomaly_score: np.ndarray,
    anomaly_mask: np.ndarray, organ_labels: np.ndarray, report: ReportV1,
) -> StoredOutputs:
    """Write what can be made of SEG, SR and key images under ``prefix`` (cleared first, so a retry
    leaves no stale object) and say for each whether it was produced."""
    store.delete_prefix(prefix)
    if sources.missing is not None:
        return StoredOutputs({}, [_not_produced(name, OutputReason.no_source_headers, sources.missing) for name in OUTPUT_NAMES])
    keys: dict[str, str] = {}
    failures: dict[str, Exception] = {}
    with tempfile.TemporaryDirectory(prefix="ctriage-outputs-") as folder:
        written = write_dicom_outputs(
            volume=volume, source_datasets=sources.datasets, anomaly_score=anomaly_score, anomaly_mask=anomaly_mask,
            organ_labels=organ_labels, report=report, out_dir=Path(folder), failures=failures,
        )
        for paths in written.values():
            for path in paths:
                key = f"{prefix}{path.name}"
                store.put_file(key, str(path), content_type=DICOM_MEDIA_TYPE)
                keys[path.stem] = key
    return StoredOutputs(keys, [_status(name, written[name], failures, has_findings=bool(report.findings)) for name in OUTPUT_NAMES])


def _status(name: str, written: list[Path], failures: dict[str, Exception], *, has_findings: bool) -> OutputStatus:
    if written:
        return OutputStatus(name=name, produced=True)
    if name in failures:
        error = failures[name]
        return _not_produced(name, OutputReason.build_failed, f"{type(error).__name__}: {error}")
    if name == "sr":
        return _not_produced(name, OutputReason.seg_unavailable, "the SR references the SEG's segments, which could not be built")
    return _not_produced(name, OutputReason.no_findings, None)


def _not_produced(name: str, reason: OutputReason, detail: str | None) -> OutputStatus:
    return OutputStatus(name=name, produced=False, reason=reason, detail=detail[:DETAIL_MAX] if detail else None)


def _stored_instance_headers(store: ObjectStore, prefix: str, sop_instance_uids: list[str]) -> SourceHeaders:
    """Headers (no pixel data) of the stored instances named ``sop_instance_uids``."""
    wanted = {uid for uid in sop_instance_uids if uid}  # "" = a slice the reader interpolated
    headers: dict[str, Dataset] = {}
    for info in store.list(prefix):
        with store.open(info.key) as handle:
            # pydicom seeks; an S3 response body cannot, so it is read into memory (one instance).
            source = handle if handle.seekable() else io.BytesIO(handle.read())
            try:
                dataset = pydicom.dcmread(source, stop_before_pixels=True)
            except Exception:  # noqa: BLE001, S112 - pydicom raises many types on a damaged object: it is just not a source
                continue
        uid = str(dataset.get("SOPInstanceUID", ""))
        if uid in wanted:
            headers[uid] = dataset
    if len(headers) < len(wanted):
        # Without every slice's header the SEG and SR could not reference the source frames.
        return SourceHeaders(missing=f"{len(wanted) - len(headers)} of {len(wanted)} source instances are missing or unreadable in storage")
    return SourceHeaders(list(headers.values()))
