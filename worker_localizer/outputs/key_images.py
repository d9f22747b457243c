"""Key images for PACS that cannot show SEG: per finding, a Secondary Capture (PS3.3 A.8.1) of the CT
slice where the finding is largest, windowed for its organ, with the anomaly heat map, the finding's
outline and burned-in text ("AI result — not for diagnosis", BurnedInAnnotation YES). All key images
form one new series in the source study; each references its CT slice (Source Image Sequence). The
outline of the finding's organ, when organ labels are given, shows which structure it was sited in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import highdicom as hd
import numpy as np
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes as dicom_codes
from pydicom.uid import ExplicitVRLittleEndian

from shared.anatomy import BY_NAME, LUNG_ANY
from shared.dicom.volume import Volume
from shared.report import Finding, ReportV1
from worker_localizer.outputs.annotate import caption_image
from worker_localizer.outputs.provenance import (
    CHARACTER_SET, KEY_IMAGE_SERIES, MANUFACTURER, NOT_FOR_DIAGNOSIS, derived_uid, drop_broken_copied_references,
)
from worker_localizer.outputs.render import WindowName, compose_slice, draw_outline, square_pixels
from worker_localizer.outputs.seg import finding_label

KEY_IMAGE_MIN_SIZE = 512
"""Key images are enlarged to at least this many pixels across so burned-in text stays legible."""
LUNG_WINDOW_ORGANS = frozenset(LUNG_ANY + ("lung_vessels", "bronchi", "trachea"))


@dataclass(frozen=True)
class KeyImage:
    """A finding's key image as displayed: RGB pixels, their size, the slice and the window."""

    pixels: np.ndarray
    """``(H, W, 3)`` ``uint8``, radiological orientation, text burned in."""
    pixel_mm: float
    patient_orientation: tuple[str, str]
    k: int
    window: WindowName


def window_for(finding: Finding) -> WindowName:
    """The window a radiologist reads the finding's organ in."""
    return "lung" if finding.organ in LUNG_WINDOW_ORGANS else "mediastinal"


def key_slice(
    *, volume: Volume, finding: Finding, number: int, anomaly_score: np.ndarray, anomaly_mask: np.ndarray,
) -> int:
    """Slice index of a finding's key image: its key SOPInstanceUID's slice, else the slice of its
    ``slice_range`` where its score sum is largest."""
    uids = volume.meta.sop_instance_uids
    for uid in finding.key_sop_instance_uids:
        if uid in uids:
            return uids.index(uid)
    first, last = finding.slice_range
    region = anomaly_mask[first:last + 1] == number
    # float64 sums: a large finding's scores would overflow a float16 map's own precision
    per_slice = np.where(region, anomaly_score[first:last + 1], 0.0).sum(axis=(1, 2), dtype=np.float64)
    return first + int(np.argmax(per_slice))


def findings_mask(*, report: ReportV1, anomaly_score: np.ndarray) -> np.ndarray:
    """The findings' label map (n = finding n) rebuilt from their voxel boxes and the voxel
    threshold, for callers that do not hold the localizer's mask (later findings win overlaps)."""
    if report.voxel_threshold is None:
        raise ValueError("the report has no voxel threshold to rebuild finding regions from")
    mask = np.zeros(anomaly_score.shape, dtype=np.uint8 if len(report.findings) < 256 else np.uint16)
    for number, finding in enumerate(report.findings, start=1):
        (i0, j0, k0), (i1, j1, k1) = finding.bbox_voxel.min, finding.bbox_voxel.max
        box = (slice(k0, k1 + 1), slice(j0, j1 + 1), slice(i0, i1 + 1))
        mask[box][anomaly_score[box] >= report.voxel_threshold] = number
    return mask


def key_image(
    *, volume: Volume, finding: Finding, number: int, anomaly_score: np.ndarray, anomaly_mask: np.ndarray,
    organ_labels: np.ndarray | None = None,
) -> KeyImage:
    """Render finding ``number``'s key image (1-based, ``anomaly_mask == number`` is its region), with
    the outline of its organ when ``organ_labels`` is given."""
    k = key_slice(volume=volume, finding=finding, number=number, anomaly_score=anomaly_score, anomaly_mask=anomaly_mask)
    window = window_for(finding)
    organ = None
    if organ_labels is not None and finding.organ in BY_NAME:
        label = BY_NAME[finding.organ].label
        organ = np.where(organ_labels[k] == label, label, 0).astype(np.uint8)
    image, plane = compose_slice(volume=volume, k=k, window=window, overlay=anomaly_score[k], organ_labels=organ)
    image, pixel_mm = square_pixels(image, plane, min_size=KEY_IMAGE_MIN_SIZE)
    image = draw_outline(image, anomaly_mask[k] == number, plane)
    bottom = [
        finding_label(number, finding),
        f"{finding.volume_ml:.2f} ml, score max {finding.score_max:.2f}, mean {finding.score_mean:.2f}",
        f"slice {k + 1} of {volume.shape[0]}, {window} window",
    ]
    pixels = caption_image(image, plane=plane, top=[NOT_FOR_DIAGNOSIS], bottom=bottom)
    rows, columns = plane.patient_orientation
    return KeyImage(pixels, pixel_mm, (rows[0], columns[0]), k, window)  # SC takes the main direction only


def key_image_datasets(
    *, volume: Volume, source_datasets: Sequence[Dataset], report: ReportV1, anomaly_score: np.ndarray,
    anomaly_mask: np.ndarray, organ_labels: np.ndarray | None = None,
) -> list[hd.sc.SCImage]:
    """One Secondary Capture per finding, in report order, in a new series of the source study."""
    by_uid = {str(ds.SOPInstanceUID): ds for ds in source_datasets}
    series_uid = derived_uid(volume=volume, report=report, kind="key-image-series")
    images = []
    for number, finding in enumerate(report.findings, start=1):
        key = key_image(volume=volume, finding=finding, number=number, anomaly_score=anomaly_score,
                        anomaly_mask=anomaly_mask, organ_labels=organ_labels)
        uids = volume.meta.sop_instance_uids
        source = by_uid.get(uids[key.k]) if key.k < len(uids) else None
        sc = hd.sc.SCImage.from_ref_dataset(
            ref_dataset=source or source_datasets[0],
            pixel_array=key.pixels,
            photometric_interpretation=hd.PhotometricInterpretationValues.RGB,
            bits_allocated=8,
            coordinate_system=hd.CoordinateSystemNames.PATIENT,
            series_instance_uid=series_uid,
            series_number=KEY_IMAGE_SERIES.number,
            sop_instance_uid=derived_uid(volume=volume, report=report, kind="key-image", index=number),
            instance_number=number,
            manufacturer=MANUFACTURER,
            pixel_spacing=(key.pixel_mm, key.pixel_mm),
            patient_orientation=key.patient_orientation,
            transfer_syntax_uid=ExplicitVRLittleEndian,
            series_description=KEY_IMAGE_SERIES.description,
            specific_character_set=CHARACTER_SET,
        )
        drop_broken_copied_references(sc)
        sc.BurnedInAnnotation = "YES"
        sc.ImageComments = f"{finding_label(number, finding)}; {NOT_FOR_DIAGNOSIS}"
        sc.DerivationDescription = f"CT slice {key.k + 1}, {key.window} window, anomaly heat map and finding outline"
        if source is not None:
            sc.SourceImageSequence = [_source_image_item(source)]
        body_part = (source or source_datasets[0]).get("BodyPartExamined")
        if body_part:
            sc.BodyPartExamined = body_part
        else:
            sc.Laterality = ""  # Type 2C (PS3.3 C.7.3.1): unknown body part, so laterality unknown
        images.append(sc)
    return images


def _source_image_item(source: Dataset) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = source.SOPClassUID
    item.ReferencedSOPInstanceUID = source.SOPInstanceUID
    purpose = hd.sr.CodedConcept.from_code(dicom_codes.DCM.SourceImageForImageProcessingOperation)
    item.PurposeOfReferenceCodeSequence = [purpose]
    return item
