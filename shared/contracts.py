"""What each pipeline stage receives and returns.

Messages carry object-storage keys and small metadata, never arrays: the volume, the organ label map
and the anomaly map live in object storage under ``runs/{run_id}/`` (see :class:`RunArtifacts`).
The Celery chain passes a :class:`ChainState` from task to task; each stage adds its result.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field

from shared.report import Finding, GateCheck, ModelInfo, OutputStatus, Verdict


class Stage(StrEnum):
    """The pipeline stages, in chain order; each is also its Celery queue's name."""

    gate = "gate"
    screen = "screen"
    localize = "localize"


STAGES: tuple[Stage, ...] = (Stage.gate, Stage.screen, Stage.localize)


class RunArtifacts(BaseModel):
    """Object-storage keys of one run's artifacts; every writer of a run uses exactly these keys."""

    volume: str
    organs: str
    anomaly: str
    report: str
    findings: str = ""
    """Label map of the findings: voxel value ``n`` = ``report.findings[n - 1]``."""
    dicom_prefix: str = ""
    """Folder of the DICOM outputs: ``seg.dcm``, ``sr.dcm``, ``key_image_NNN.dcm``."""
    instances: str = ""
    """Headers of the analysed series' instances, as the gate parsed them (the localizer's source
    references; see :func:`shared.pipeline.artifacts.put_source_headers`). Absent for older runs."""
    report_pdf: str = ""
    """The report as PDF, rendered on first download."""

    @classmethod
    def for_run(cls, run_id: str) -> RunArtifacts:
        """The keys under ``runs/{run_id}/``."""
        prefix = f"runs/{run_id}"
        return cls(
            volume=f"{prefix}/volume.npz",
            organs=f"{prefix}/organs.npz",
            anomaly=f"{prefix}/anomaly.npz",
            report=f"{prefix}/report.json",
            findings=f"{prefix}/findings.npz",
            dicom_prefix=f"{prefix}/dicom/",
            instances=f"{prefix}/instances.json",
            report_pdf=f"{prefix}/report.pdf",
        )


class VolumeSummary(BaseModel):
    """Identity and geometry of the volume the gate accepted (no PHI)."""

    study_instance_uid: str
    series_instance_uid: str
    shape: tuple[int, int, int] = Field(description="Array shape (nz, ny, nx).")
    spacing: tuple[float, float, float] = Field(description="Voxel size (di, dj, dk) in mm.")


class GateRequest(BaseModel):
    """Gate input: where the series' DICOM instances are."""

    run_id: str
    source_prefix: str = Field(description="Object-storage prefix holding the series' instances.")


class GateResult(BaseModel):
    """Gate output: accepted (with the volume and organ label map stored) or rejected with a reason."""

    run_id: str
    accepted: bool
    reason: str | None = None
    reason_detail: str | None = None
    checks: list[GateCheck] = Field(default_factory=list)
    method: str
    model: ModelInfo
    volume_key: str | None = None
    organs_key: str | None = None
    volume: VolumeSummary | None = None


class ScreenRequest(BaseModel):
    """Screener input: the gate's volume and organ label map."""

    run_id: str
    volume_key: str
    organs_key: str


class ScreenResult(BaseModel):
    """Screener output: a calibrated anomaly map in [0, 1] on the volume grid, and its thresholds."""

    run_id: str
    anomaly_key: str
    model: ModelInfo
    voxel_threshold: float = Field(description="Calibrated voxel score above which tissue is anomalous.")
    study_threshold: float = Field(description="Calibrated study score above which the verdict is pathology.")
    score_unit: str = Field(description="Unit of the study score, e.g. 'ml' for a score-weighted volume.")


class LocalizeRequest(BaseModel):
    """Localizer input: the anomaly map, the organ label map and the volume (for geometry and UIDs)."""

    run_id: str
    volume_key: str
    organs_key: str
    anomaly_key: str
    voxel_threshold: float
    study_threshold: float
    score_unit: str
    source_prefix: str | None = Field(None, description="The series' instances (source headers of the DICOM outputs).")
    models: list[ModelInfo] = Field(default_factory=list, description="Models of the earlier stages (named in the outputs).")


class LocalizeResult(BaseModel):
    """Localizer output: findings per organ and the study verdict."""

    run_id: str
    verdict: Verdict
    score: float
    threshold: float
    score_unit: str
    voxel_threshold: float
    findings: list[Finding]
    model: ModelInfo
    artifacts: dict[str, str] = Field(default_factory=dict, description="Findings mask and DICOM outputs: name -> key.")
    outputs: list[OutputStatus] = Field(default_factory=list, description="Each DICOM output: produced, or why not.")


class ChainState(BaseModel):
    """The message passed along the Celery chain: the request and every result so far."""

    run_id: str
    series_id: str | None = None
    gate_request: GateRequest
    gate: GateResult | None = None
    screen: ScreenResult | None = None
    localize: LocalizeResult | None = None
    timings: dict[str, float] = Field(default_factory=dict, description="Stage name -> seconds.")
