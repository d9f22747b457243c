"""Comprehensive 3D SR (PS3.3 A.35.13) holding a TID 1500 Measurement Report of the analysis.

Content tree: observer context = the ctriage device (TID 1004) running the anomaly model; procedure
reported "CT of chest"; then the Imaging Measurements container with

* one TID 1501 group "Study verdict": the study score (its unit from the report) and the verdict as a
  qualitative evaluation, Overall Assessment = Normal | Abnormal;
* one TID 1411 volumetric group per finding, in report order: tracking identifier and UID (the same
  as its SEG segment's), finding category/type, finding site (organ, with laterality), algorithm
  identification, the Referenced Segment in the SEG, and measurements volume (ml), anomaly score
  maximum and mean (``{score}``).
"""

from __future__ import annotations

from collections.abc import Sequence

import highdicom as hd
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes as dicom_codes
from pydicom.uid import generate_uid

from shared.dicom.volume import Volume
from shared.report import Finding, ReportV1
from worker_localizer.outputs import codes
from worker_localizer.outputs.provenance import (
    CHARACTER_SET, DEVICE_NAME, MANUFACTURER, SR_SERIES, anomaly_model, derived_uid, drop_broken_copied_references,
    sr_algorithm,
)
from worker_localizer.outputs.seg import finding_label, finding_tracking_uid

STUDY_GROUP_ID = "Study verdict"


def measurement_report_sr(
    *, volume: Volume, source_datasets: Sequence[Dataset], report: ReportV1,
    segmentation: hd.seg.Segmentation | None,
) -> hd.sr.Comprehensive3DSR:
    """The SR of a ``done`` report; ``segmentation`` holds segment ``n`` for finding ``n`` (None without findings)."""
    if report.verdict is None:
        raise ValueError(f"only a finished analysis has a measurement report (status {report.status})")
    if report.findings and segmentation is None:
        raise ValueError("findings need their segmentation to reference")
    groups: list = [_study_group(volume=volume, report=report)]
    groups += [
        _finding_group(volume=volume, report=report, number=n, finding=finding, segmentation=segmentation)
        for n, finding in enumerate(report.findings, start=1)
    ]
    content = hd.sr.MeasurementReport(
        observation_context=_observation_context(report),
        procedure_reported=codes.PROCEDURE_REPORTED,
        imaging_measurements=groups,
    )
    evidence = ([segmentation] if segmentation is not None else []) + list(source_datasets)
    sr = hd.sr.Comprehensive3DSR(
        evidence=evidence,
        content=content[0],
        series_instance_uid=derived_uid(volume=volume, report=report, kind="sr-series"),
        series_number=SR_SERIES.number,
        series_description=SR_SERIES.description,
        sop_instance_uid=derived_uid(volume=volume, report=report, kind="sr"),
        instance_number=1,
        manufacturer=MANUFACTURER,
        is_complete=True,
        is_final=True,
        is_verified=False,  # no person has verified an AI result
        specific_character_set=CHARACTER_SET,
    )
    drop_broken_copied_references(sr)
    return sr


def _observation_context(report: ReportV1) -> hd.sr.ObservationContext:
    model = anomaly_model(report)
    device = hd.sr.DeviceObserverIdentifyingAttributes(
        uid=str(generate_uid(entropy_srcs=[DEVICE_NAME, model.name, model.version])),
        name=DEVICE_NAME, manufacturer_name=MANUFACTURER, model_name=f"{model.name} {model.version}",
    )
    return hd.sr.ObservationContext(
        observer_device_context=hd.sr.ObserverContext(
            observer_type=dicom_codes.DCM.Device, observer_identifying_attributes=device,
        ),
    )


def _study_group(*, volume: Volume, report: ReportV1) -> hd.sr.MeasurementsAndQualitativeEvaluations:
    measurements = []
    if report.score is not None:
        unit = codes.UNITS.get(report.score_unit or "", codes.UNIT_SCORE)
        measurements.append(hd.sr.Measurement(name=codes.STUDY_SCORE, value=report.score, unit=unit))
    return hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(
            uid=derived_uid(volume=volume, report=report, kind="study-verdict"), identifier=STUDY_GROUP_ID,
        ),
        algorithm_id=sr_algorithm(report),
        measurements=measurements,
        qualitative_evaluations=[
            hd.sr.QualitativeEvaluation(name=codes.VERDICT_CONCEPT, value=codes.VERDICT_VALUES[report.verdict.value]),
        ],
    )


def _finding_group(
    *, volume: Volume, report: ReportV1, number: int, finding: Finding, segmentation: hd.seg.Segmentation,
) -> hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations:
    site = codes.organ_concept(finding.organ)
    algorithm = sr_algorithm(report)
    return hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(
            uid=finding_tracking_uid(volume=volume, report=report, number=number),
            identifier=finding_label(number, finding),
        ),
        referenced_segment=_referenced_segment(segmentation, number),
        finding_type=codes.FINDING_TYPE,
        finding_category=codes.FINDING_CATEGORY,
        algorithm_id=algorithm,
        finding_sites=[hd.sr.FindingSite(site.structure, laterality=site.laterality)] if site else None,
        measurements=[
            hd.sr.Measurement(name=codes.VOLUME, value=finding.volume_ml, unit=codes.UNIT_MILLILITRE),
            hd.sr.Measurement(name=codes.ANOMALY_SCORE, value=finding.score_max, unit=codes.UNIT_SCORE,
                              derivation=codes.SCORE_MAXIMUM, algorithm_id=algorithm),
            hd.sr.Measurement(name=codes.ANOMALY_SCORE, value=finding.score_mean, unit=codes.UNIT_SCORE,
                              derivation=codes.SCORE_MEAN, algorithm_id=algorithm),
        ],
    )


def _referenced_segment(segmentation: hd.seg.Segmentation, number: int) -> hd.sr.ReferencedSegment:
    """Segment ``number`` with the CT slices it was derived from (else the source series).

    Not highdicom's ``ReferencedSegment.from_segmentation``: it expects the segment identification
    in every frame, but a one-segment SEG shares it across frames (PS3.3 C.7.6.16).
    """
    shared = segmentation.SharedFunctionalGroupsSequence[0]
    sources: dict[str, str] = {}
    for frame in segmentation.PerFrameFunctionalGroupsSequence:
        identification = frame.get("SegmentIdentificationSequence") or shared.SegmentIdentificationSequence
        if int(identification[0].ReferencedSegmentNumber) != number:
            continue
        for derivation in frame.get("DerivationImageSequence", []):
            for source in derivation.SourceImageSequence:
                sources[str(source.ReferencedSOPInstanceUID)] = str(source.ReferencedSOPClassUID)
    reference = {"sop_class_uid": segmentation.SOPClassUID, "sop_instance_uid": segmentation.SOPInstanceUID,
                 "segment_number": number}
    if sources:
        return hd.sr.ReferencedSegment(**reference, source_images=[
            hd.sr.SourceImageForSegmentation(referenced_sop_class_uid=sop_class, referenced_sop_instance_uid=uid)
            for uid, sop_class in sources.items()
        ])
    series = segmentation.ReferencedSeriesSequence[0].SeriesInstanceUID
    return hd.sr.ReferencedSegment(**reference, source_series=hd.sr.SourceSeriesForSegmentation(series))
