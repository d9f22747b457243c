"""Who made the DICOM outputs: device and algorithm identification, series numbers, derived UIDs."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata

import highdicom as hd
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.uid import generate_uid

from shared.dicom.volume import Volume
from shared.report import ModelInfo, ReportV1

MANUFACTURER = "ctriage"
DEVICE_NAME = "ctriage"
NOT_FOR_DIAGNOSIS = "AI result \u2014 not for diagnosis"
"""The note burned into every image and written into every description the outputs carry."""
CHARACTER_SET = "ISO_IR 192"
"""UTF-8 for every output (PS3.3 C.12.1.1.2): holds any source's patient names (decoded by pydicom
from whatever set the source declared) and the note's dash; ASCII sources are a subset of it."""


@dataclass(frozen=True)
class OutputSeries:
    """Series number and description of one kind of output (a new series in the source study)."""

    number: int
    description: str


SEG_SERIES = OutputSeries(9001, "ctriage anomaly segmentation (AI, not for diagnosis)")
SR_SERIES = OutputSeries(9002, "ctriage measurement report (AI, not for diagnosis)")
KEY_IMAGE_SERIES = OutputSeries(9003, "ctriage key images (AI, not for diagnosis)")


_COPIED_REFERENCES = ("ReferencedStudySequence", "ReferencedPatientSequence")
"""Type 3 SOP Instance references of the Patient and General Study modules, copied from the source."""


def drop_broken_copied_references(dataset: Dataset) -> None:
    """Remove copied patient/study references whose items lack a Type 1 UID (de-identified sources
    keep the instance UID and drop the class UID), so a faulty source does not make our output invalid."""
    for keyword in _COPIED_REFERENCES:
        items = dataset.get(keyword) or []
        if any(not item.get("ReferencedSOPClassUID") or not item.get("ReferencedSOPInstanceUID") for item in items):
            delattr(dataset, keyword)


def software_version() -> str:
    """Installed ctriage version (``0+unknown`` from a bare source tree)."""
    try:
        return metadata.version("ctriage")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def anomaly_model(report: ReportV1) -> ModelInfo:
    """The model that produced the anomaly map: the screener's, else the first listed, else ctriage itself."""
    screen = [model for model in report.models if model.stage == "screen"]
    if screen or report.models:
        return (screen or report.models)[0]
    return ModelInfo(stage="screen", name=DEVICE_NAME, version=software_version())


def segment_algorithm(report: ReportV1) -> hd.AlgorithmIdentificationSequence:
    """SEG Segmentation Algorithm Identification (PS3.3 C.8.20.2): the anomaly model, family AI."""
    model = anomaly_model(report)
    parameters = {"voxel_threshold": str(report.voxel_threshold)} if report.voxel_threshold is not None else None
    return hd.AlgorithmIdentificationSequence(
        name=model.name, family=codes.cid7162.ArtificialIntelligence, version=model.version,
        source=MANUFACTURER, parameters=parameters,
    )


def sr_algorithm(report: ReportV1) -> hd.sr.AlgorithmIdentification:
    """TID 4019 Algorithm Identification of the measurements: the anomaly model."""
    model = anomaly_model(report)
    return hd.sr.AlgorithmIdentification(name=model.name, version=model.version, manufacturer=MANUFACTURER)


def derived_uid(*, volume: Volume, report: ReportV1, kind: str, index: int = 0) -> str:
    """A UID fixed by the source series, the run (its id, else its creation time) and the object kind,
    so writing one report's outputs twice gives the same UIDs."""
    run = report.run_id or report.created_at.isoformat()
    return str(generate_uid(entropy_srcs=[volume.meta.series_instance_uid, run, kind, str(index)]))
