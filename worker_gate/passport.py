"""Passport check: DICOM tags and geometry of the assembled volume, before any image analysis.

Each check is a :class:`GateCheck` with the value seen; the first failing one (in the order below)
gives the refusal's :class:`Reason`.

* Modality (0008,0060) must be ``CT`` (PS3.3 C.7.3.1.1.1) -> ``not_ct``.
* BodyPartExamined (0018,0015; defined terms in PS3.16 Annex L, plus the free text scanners write):
  a chest term or synonym (CHEST, THORAX, LUNG, CHEST_ABDOMEN, CHESTABDOMEN, CHEST_TO_PELVIS, TORSO...)
  passes; a value naming only another part (HEAD, BRAIN, KNEE...) -> ``not_chest``. When it is
  empty, "chest"/"thorax"/"lung"/"thx" in StudyDescription, SeriesDescription or ProtocolName is
  noted as support; descriptions never refuse. Empty or unknown values pass: real PACS data often
  lack the tag, and the anatomy check decides.
* In-plane PixelSpacing at most ``max_pixel_mm`` (1.5 mm by default, ``CTRIAGE_GATE_MAX_PIXEL_MM``)
  -> ``coarse_resolution``: coarser pixels blur nodules below what the screener can see.
* Gantry tilt at most :data:`MAX_TILT_DEGREES` -> ``gantry_tilt``. The reader keeps a tilted series
  exact with a sheared affine; the organ segmenter works on orthogonal grids, so a tilt is refused
  rather than resampled (chest protocols do not tilt the gantry; head protocols do).
* Slice spacing: the reader already refuses holes it cannot bridge and resamples uneven spacing to a
  uniform grid (its warning is shown in the check's detail).
* Coverage, enough to contain both adult lungs: at least :data:`MIN_COVERAGE_MM` along the
  patient's head-feet axis and a field of view at least :data:`MIN_LATERAL_FOV_MM` wide from right
  to left -> ``insufficient_coverage`` (short slabs, small-field crops around a lesion); then at
  least :data:`MIN_SLICES` slices -> ``too_few_slices`` (a long scan in a handful of thick slices).
"""

from __future__ import annotations

import re

import numpy as np

from shared.dicom.errors import Reason
from shared.dicom.volume import Volume
from shared.report import GateCheck

MIN_SLICES = 16
MIN_COVERAGE_MM = 100.0
"""Head-feet extent: adult lungs measure ~200-250 mm; less than 100 mm is a slab, not a chest."""
MIN_LATERAL_FOV_MM = 250.0
"""Right-left field of view: both adult lungs together span ~250-300 mm."""
MAX_PIXEL_MM = 1.5
MAX_TILT_DEGREES = 1.0
"""Over a 300 mm scan, 1 degree shifts the last slice ~5 mm against the first: within a work voxel."""

_CHEST_WORDS = frozenset({
    "CHEST", "THORAX", "THORACIC", "THORAKS", "LUNG", "LUNGS", "THX", "TORSO", "TRUNK", "CAP", "TAP",
    "WHOLEBODY", "MEDIASTINUM", "HEART", "CARDIAC", "STERNUM", "RIB", "RIBS", "TSPINE", "BREAST",
})
_CHEST_PARTS = frozenset({
    "CHESTABDOMEN", "CHESTABDPELVIS", "CHESTABDOMENPELVIS", "CHESTTOPELVIS",
    "THORAXABDOMEN", "THORAXABDOMENPELVIS", "NECKCHEST", "NECKCHESTABDOMEN", "NECKCHESTABDOMENPELVIS",
    "HEADNECKCHEST", "THORACICSPINE", "WHOLEBODY", "CHESTWALL", "LUNGS", "PULMONARY",
})
"""Compound terms (normalised: letters only, upper case) that include the chest."""
_NON_CHEST_WORDS = frozenset({
    "HEAD", "BRAIN", "SKULL", "FACE", "IAC", "ORBIT", "SINUS", "NECK", "HEADNECK", "CSPINE", "LSPINE",
    "SSPINE", "ABDOMEN", "ABD", "ABDOMENPELVIS", "PELVIS", "HIP", "KNEE", "ANKLE", "FOOT", "LEG", "UPRLIMB",
    "LOWLIMB", "ARM", "ELBOW", "FOREARM", "WRIST", "HAND", "SHOULDER", "EXTREMITY", "FEMUR", "TIBIA",
    "KIDNEY", "LIVER", "PROSTATE", "BLADDER", "PANCREAS", "SPLEEN", "COLON",
})
_DESCRIPTION_CHEST = re.compile(r"chest|thora|lung|\bthx\b", re.IGNORECASE)


def passport_checks(volume: Volume, *, max_pixel_mm: float = MAX_PIXEL_MM) -> tuple[list[GateCheck], Reason | None]:
    """Tag and geometry checks of a volume; returns the checks and the first refusal's reason (or None)."""
    meta = volume.meta
    modality = (meta.modality or "").strip().upper()
    nz = volume.shape[0]
    pixel = max(volume.spacing[0], volume.spacing[1])
    tilt = gantry_tilt_degrees(volume)
    head_feet, lateral = extent_mm(volume, axis=2), extent_mm(volume, axis=0)
    uneven = [w for w in volume.warnings if w.startswith(("uneven slice spacing", "missing slices"))]
    checks = [
        (Reason.NOT_CT, GateCheck(name="modality", passed=modality == "CT", value=modality or None, expected="CT")),
        (Reason.NOT_CHEST, body_part_check(volume)),
        (Reason.COARSE_RESOLUTION, GateCheck(
            name="pixel_spacing_mm", passed=pixel <= max_pixel_mm + 1e-6, value=round(pixel, 3),
            expected=f"<= {max_pixel_mm:g}",
        )),
        (Reason.GANTRY_TILT, GateCheck(
            name="gantry_tilt_deg", passed=tilt <= MAX_TILT_DEGREES, value=round(tilt, 2),
            expected=f"<= {MAX_TILT_DEGREES:g} (tilted series are refused, not resampled)",
        )),
        (Reason.INCONSISTENT_GEOMETRY, GateCheck(
            name="slice_spacing_mm", passed=True, value=round(volume.spacing[2], 3),
            expected="uniform (uneven series are resampled by the reader)", detail="; ".join(uneven) or None,
        )),
        (Reason.INSUFFICIENT_COVERAGE, GateCheck(
            name="z_coverage_mm", passed=head_feet >= MIN_COVERAGE_MM, value=round(head_feet, 1),
            expected=f">= {MIN_COVERAGE_MM:g}",
        )),
        (Reason.INSUFFICIENT_COVERAGE, GateCheck(
            name="lateral_fov_mm", passed=lateral >= MIN_LATERAL_FOV_MM, value=round(lateral, 1),
            expected=f">= {MIN_LATERAL_FOV_MM:g}", detail=None if lateral >= MIN_LATERAL_FOV_MM else "a crop: both lungs do not fit",
        )),
        (Reason.TOO_FEW_SLICES, GateCheck(name="slice_count", passed=nz >= MIN_SLICES, value=nz, expected=f">= {MIN_SLICES}")),
    ]
    refusal = next((reason for reason, check in checks if not check.passed), None)
    return [check for _, check in checks], refusal


def body_part_check(volume: Volume) -> GateCheck:
    """BodyPartExamined judged as the module doc says; the descriptions support an empty tag."""
    raw = (volume.meta.body_part_examined or "").strip().upper()
    expected = "chest or not stated"
    if not raw:
        meta = volume.meta
        named = [keyword for keyword, text in (("StudyDescription", meta.study_description),
                 ("SeriesDescription", meta.series_description), ("ProtocolName", meta.protocol_name))
                 if text and _DESCRIPTION_CHEST.search(text)]
        detail = (f"not stated; {', '.join(named)} name(s) the chest" if named
                  else "not stated; the anatomy check decides")
        return GateCheck(name="body_part_examined", passed=True, value=None, expected=expected, detail=detail)
    words = set(re.findall(r"[A-Z]+", raw))
    joined = "".join(sorted(words, key=raw.find))
    if words & _CHEST_WORDS or joined in _CHEST_PARTS:
        return GateCheck(name="body_part_examined", passed=True, value=raw, expected=expected)
    if words & _NON_CHEST_WORDS or joined in _NON_CHEST_WORDS:
        return GateCheck(name="body_part_examined", passed=False, value=raw, expected=expected,
                         detail="names a part other than the chest")
    return GateCheck(name="body_part_examined", passed=True, value=raw, expected=expected,
                     detail="not a known body part term; the anatomy check decides")


def gantry_tilt_degrees(volume: Volume) -> float:
    """Angle between the slice step (the affine's k column) and the normal of the slice plane."""
    columns = volume.affine[:3, :3]
    normal = np.cross(columns[:, 0], columns[:, 1])
    step = columns[:, 2]
    cosine = abs(float(normal @ step)) / (np.linalg.norm(normal) * np.linalg.norm(step))
    return float(np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0))))


def extent_mm(volume: Volume, *, axis: int) -> float:
    """Extent (mm) of the volume along patient LPS ``axis`` (0 = right-left, 2 = feet-head)."""
    edges = volume.affine[axis, :3] * np.asarray(volume.shape[::-1], dtype=float)  # per array axis i, j, k
    return float(np.abs(edges).sum())
