"""DICOM Segmentation (PS3.3 A.51) of the findings: one BINARY segment per finding.

One segment per finding rather than a single "anomaly" segment: PACS viewers list segments by label,
colour and toggle them one by one, so "Finding 2: left lung, upper lobe" can be found and hidden on
its own, and each SR measurement group references exactly its segment (TID 1411 Referenced Segment).
Segment ``n`` is ``report.findings[n - 1]``, the voxels where ``anomaly_mask == n``. Frames are
written only where a segment is present (highdicom's ``omit_empty_frames``). Organ masks are not
included: the SR names each finding's organ, and a 29-segment anatomy SEG would bury the findings.
"""

from __future__ import annotations

from collections.abc import Sequence

import highdicom as hd
import numpy as np
from pydicom.dataset import Dataset

from shared.dicom.volume import Volume
from shared.report import Finding, ReportV1
from worker_localizer.outputs import codes
from worker_localizer.outputs.provenance import (
    CHARACTER_SET, DEVICE_NAME, MANUFACTURER, NOT_FOR_DIAGNOSIS, SEG_SERIES, anomaly_model, derived_uid,
    drop_broken_copied_references, segment_algorithm, software_version,
)

SEGMENT_RGB = ((230, 25, 75), (245, 130, 48), (255, 225, 25), (240, 50, 230), (70, 240, 240), (60, 180, 75))
"""Display colours of segments 1, 2, ... (cycled), recommended to viewers as CIELab."""
SEGMENT_LABEL_MAX = 64  # VR LO


def finding_label(number: int, finding: Finding) -> str:
    """Segment label and tracking identifier text of finding ``number`` (1-based)."""
    return f"Finding {number}: {finding.organ_display}"[:SEGMENT_LABEL_MAX]


def finding_tracking_uid(*, volume: Volume, report: ReportV1, number: int) -> str:
    """Tracking UID shared by a finding's SEG segment and its SR measurement group."""
    return derived_uid(volume=volume, report=report, kind="finding", index=number)


def anomaly_segmentation(
    *, volume: Volume, source_datasets: Sequence[Dataset], anomaly_mask: np.ndarray, report: ReportV1,
) -> hd.seg.Segmentation:
    """The SEG of ``anomaly_mask`` ``(nz, ny, nx)`` (0 = none, n = finding n), referencing the source series."""
    if not report.findings:
        raise ValueError("a segmentation needs at least one finding")
    mask = _checked_mask(anomaly_mask, volume, len(report.findings))
    sources, geometry = _frame_sources(volume, source_datasets)
    model = anomaly_model(report)
    segmentation = hd.seg.Segmentation(
        source_images=sources,
        pixel_array=mask,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=[
            _segment_description(volume=volume, report=report, number=n, finding=finding)
            for n, finding in enumerate(report.findings, start=1)
        ],
        series_instance_uid=derived_uid(volume=volume, report=report, kind="seg-series"),
        series_number=SEG_SERIES.number,
        series_description=SEG_SERIES.description,
        sop_instance_uid=derived_uid(volume=volume, report=report, kind="seg"),
        instance_number=1,
        manufacturer=MANUFACTURER,
        manufacturer_model_name=f"{DEVICE_NAME} {model.name}"[:64],
        software_versions=software_version(),
        device_serial_number=model.checksum[:16] if model.checksum else "0",  # the weights' identity
        content_label="ANOMALY",
        content_description=f"Anomaly score >= {report.voxel_threshold}; {NOT_FOR_DIAGNOSIS}"[:64],
        specific_character_set=CHARACTER_SET,
        **geometry,
    )
    drop_broken_copied_references(segmentation)
    return segmentation


def _segment_description(
    *, volume: Volume, report: ReportV1, number: int, finding: Finding,
) -> hd.seg.SegmentDescription:
    site = codes.organ_concept(finding.organ)
    description = hd.seg.SegmentDescription(
        segment_number=number,
        segment_label=finding_label(number, finding),
        segmented_property_category=codes.FINDING_CATEGORY,
        segmented_property_type=codes.FINDING_TYPE,
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=segment_algorithm(report),
        tracking_uid=finding_tracking_uid(volume=volume, report=report, number=number),
        tracking_id=finding_label(number, finding),
        anatomic_regions=[site.structure] if site else None,
        display_color=hd.color.CIELabColor.from_rgb(*SEGMENT_RGB[(number - 1) % len(SEGMENT_RGB)]),
    )
    if site and site.laterality:
        # Post-coordinated laterality, as TotalSegmentator codes lobes (PS3.3 Table 10-23 modifier)
        region = description.AnatomicRegionSequence[0]
        region.AnatomicRegionModifierSequence = [hd.sr.CodedConcept.from_code(site.laterality)]
    return description


def _checked_mask(anomaly_mask: np.ndarray, volume: Volume, n_findings: int) -> np.ndarray:
    """The mask as the smallest unsigned label map, after checking it matches the findings one to one."""
    mask = np.asarray(anomaly_mask)
    if mask.shape != volume.shape:
        raise ValueError(f"anomaly_mask shape {mask.shape} differs from the volume's {volume.shape}")
    if mask.dtype.kind not in "iu":
        raise ValueError(f"anomaly_mask must hold integer labels, not {mask.dtype}")
    present = np.unique(mask[mask != 0])  # findings are small: only their voxels are sorted
    if present.size and (present[0] < 0 or present[-1] > n_findings):
        raise ValueError(f"anomaly_mask labels {present.tolist()} are not all findings 1..{n_findings}")
    missing = sorted(set(range(1, n_findings + 1)) - set(present.tolist()))
    if missing:
        raise ValueError(f"findings {missing} have no voxel in anomaly_mask")
    return mask.astype(np.uint8 if n_findings < 256 else np.uint16)


def _frame_sources(volume: Volume, datasets: Sequence[Dataset]) -> tuple[list[Dataset], dict[str, object]]:
    """Source images in volume slice order when every slice is one single-frame source (frames then
    reference their CT slice); otherwise all sources and the frame geometry from the volume's affine
    (slices interpolated by the reader, multi-frame sources)."""
    by_uid = {str(ds.SOPInstanceUID): ds for ds in datasets}
    uids = volume.meta.sop_instance_uids
    single_frames = [by_uid.get(uid) for uid in uids]
    one_frame_each = all(ds is not None and int(ds.get("NumberOfFrames", 1)) == 1 for ds in single_frames)
    if len(uids) == volume.shape[0] and one_frame_each:
        return single_frames, {}  # type: ignore[return-value]
    affine = volume.affine
    direction = volume.direction
    di, dj, dk = volume.spacing
    thickness = volume.meta.slice_thickness or dk
    geometry = {
        "plane_orientation": hd.PlaneOrientationSequence(
            coordinate_system="PATIENT", image_orientation=[*direction[:, 0], *direction[:, 1]],
        ),
        "pixel_measures": hd.PixelMeasuresSequence(
            pixel_spacing=(dj, di), slice_thickness=thickness, spacing_between_slices=dk,
        ),
        "plane_positions": [
            hd.PlanePositionSequence(coordinate_system="PATIENT", image_position=affine[:3, 3] + k * affine[:3, 2])
            for k in range(volume.shape[0])
        ],
    }
    return list(datasets), geometry
