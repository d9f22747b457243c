"""The report a finished analysis run publishes: a versioned pydantic schema (served by the API,
written as ``runs/{run_id}/report.json`` and printed by ``ctriage analyze``).

Clients rely on the top level (``status``, ``verdict``, ``reason``, ``findings``) and on the public
finding fields (``organ``, ``organs``, ``volume_ml``, ``score_max``, ``score_mean``, ``score_sum``,
``bbox_voxel``, ``bbox_mm``, ``centroid_mm``, ``key_sop_instance_uids``): add fields, never rename.
A change that removes or changes the meaning of a field is a new ``SCHEMA_VERSION``.

Coordinates: voxel indices are DICOM's ``(i, j, k)`` = (column, row, slice) and millimetres are
patient LPS (see :mod:`shared.dicom.volume`).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = "1.0"


class ReportStatus(StrEnum):
    """How the run ended."""

    done = "done"
    rejected = "rejected"
    failed = "failed"


class Verdict(StrEnum):
    """The study-level answer of a ``done`` run."""

    normal = "normal"
    pathology = "pathology"


class FailureReason(StrEnum):
    """Stable reason codes of a ``failed`` run (rejections use :class:`shared.dicom.errors.Reason`)."""

    internal_error = "internal_error"
    """A stage raised an unexpected error."""
    time_limit = "time_limit"
    """A stage ran past its hard or soft time limit."""
    worker_lost = "worker_lost"
    """The worker process running a stage died (e.g. out of memory) more often than retries allow."""
    storage_unavailable = "storage_unavailable"
    """Object storage kept failing after every retry."""
    database_unavailable = "database_unavailable"
    """The database kept failing after every retry."""
    broker_unavailable = "broker_unavailable"
    """The message broker could not take the work."""
    missing_artifact = "missing_artifact"
    """An object a stage needs is not in storage (deleted, or written by a run that never finished)."""


class OutputReason(StrEnum):
    """Stable reason codes of a clinical output a ``done`` run did not produce (:class:`OutputStatus`)."""

    no_findings = "no_findings"
    """Nothing to show: a study without findings has no SEG and no key images (its SR has the verdict)."""
    no_source_headers = "no_source_headers"
    """The source instances' headers, which every DICOM output references, could not be read
    (instances missing or unreadable in storage)."""
    build_failed = "build_failed"
    """Building the object failed, e.g. on a source header the DICOM object model refuses."""
    seg_unavailable = "seg_unavailable"
    """The SR references each finding's SEG segment, and the SEG could not be built."""


class OutputStatus(BaseModel):
    """Whether one clinical output of a ``done`` run was produced, and if not, why."""

    name: str = Field(description="'seg', 'sr' or 'key_images' (served at /api/scans/{id}/seg, /sr, /key-images).")
    produced: bool
    reason: OutputReason | None = Field(None, description="Stable code when not produced.")
    detail: str | None = Field(None, description="What went wrong, for people.")


class VoxelBox(BaseModel):
    """Inclusive bounding box in voxel indices ``[i, j, k]``."""

    min: tuple[int, int, int]
    max: tuple[int, int, int]


class MillimetreBox(BaseModel):
    """Axis-aligned bounding box in patient coordinates ``[x, y, z]`` (mm, LPS)."""

    min: tuple[float, float, float]
    max: tuple[float, float, float]


class Finding(BaseModel):
    """One connected region of the thresholded anomaly map."""

    organ: str = Field(description="Organ holding most of the finding (shared.anatomy name), or 'outside_organs'.")
    organ_display: str = Field(description="Human name of `organ`, e.g. 'right lung'.")
    organs: dict[str, float] = Field(description="Organ name -> fraction of the finding's voxels inside it.")
    volume_ml: float
    score_max: float = Field(description="Highest calibrated voxel score in [0, 1].")
    score_mean: float
    score_sum: float = Field(description="Sum of voxel scores inside the finding (voxel units).")
    bbox_voxel: VoxelBox
    bbox_mm: MillimetreBox
    centroid_mm: tuple[float, float, float]
    slice_range: tuple[int, int] = Field(description="First and last slice index k the finding touches.")
    key_sop_instance_uids: list[str] = Field(
        description="SOPInstanceUID of the slice where the finding's score sum is largest (empty without DICOM source)."
    )


class GateCheck(BaseModel):
    """One check of the gate with the value it measured."""

    name: str
    passed: bool
    value: Any = None
    expected: str | None = None
    detail: str | None = None


class GateSummary(BaseModel):
    """What the gate decided and why."""

    accepted: bool
    method: str = Field(description="Which gate implementation decided, e.g. 'baseline'.")
    checks: list[GateCheck] = Field(default_factory=list)


class ModelInfo(BaseModel):
    """Identity of the model (or rule set) a stage used."""

    stage: str
    name: str
    version: str
    checksum: str | None = Field(None, description="SHA-256 of the weights or parameter file.")


class ReportV1(BaseModel):
    """Version 1 of the analysis report."""

    model_config = ConfigDict(title="Report")

    schema_version: Literal["1.0"] = SCHEMA_VERSION
    status: ReportStatus
    verdict: Verdict | None = Field(None, description="Set when status is done.")
    reason: str | None = Field(None, description="Stable code when status is rejected or failed.")
    reason_detail: str | None = None
    findings: list[Finding] = Field(default_factory=list, description="Sorted by score_sum, highest first.")
    score: float | None = Field(None, description="Study score the verdict compares with `threshold`.")
    threshold: float | None = Field(None, description="Verdict threshold: score > threshold means pathology.")
    score_unit: str | None = Field(None, description="Unit of `score` and `threshold`.")
    voxel_threshold: float | None = Field(None, description="Anomaly-map threshold that delimits findings.")
    run_id: str | None = None
    series_id: str | None = None
    study_instance_uid: str | None = None
    series_instance_uid: str | None = None
    gate: GateSummary | None = None
    models: list[ModelInfo] = Field(default_factory=list)
    timings: dict[str, float] = Field(default_factory=dict, description="Stage name -> seconds.")
    artifacts: dict[str, str] = Field(default_factory=dict, description="Artifact name -> object-storage key.")
    outputs: list[OutputStatus] = Field(
        default_factory=list,
        description="DICOM outputs of a done run (SEG, SR, key images): produced, or why not. The verdict and "
                    "findings stand when one could not be produced. Empty for runs made before this field.",
    )
    created_at: datetime
