"""Baseline passport check: DICOM tags and geometry of the assembled volume.

* Modality (0008,0060) must be ``CT`` (PS3.3 C.7.3.1.1.1).
* BodyPartExamined (0018,0015, defined terms in PS3.16 Annex L): refused only when it explicitly
  names a part that is not the chest; empty or unknown values pass (real PACS data often lack it).
* At least :data:`MIN_SLICES` slices covering :data:`MIN_COVERAGE_MM` along the slice axis, enough to
  contain both lungs of an adult.
"""

from __future__ import annotations

from shared.dicom.errors import Reason
from shared.dicom.volume import Volume
from shared.report import GateCheck

MIN_SLICES = 16
MIN_COVERAGE_MM = 100.0

CHEST_PARTS = frozenset({
    "CHEST", "THORAX", "LUNG", "LUNGS", "CHESTABDOMEN", "CHEST_ABDOMEN", "CHESTABDPELVIS",
    "CHEST_ABDOMEN_PELVIS", "CAP", "TORSO", "TRUNK", "WHOLEBODY", "WHOLE_BODY", "BREAST", "HEART",
    "MEDIASTINUM", "RIB", "STERNUM", "TSPINE", "THORACIC_SPINE",
})
NON_CHEST_PARTS = frozenset({
    "HEAD", "BRAIN", "SKULL", "FACE", "IAC", "ORBIT", "SINUS", "NECK", "HEADNECK", "HEAD_NECK", "CSPINE",
    "LSPINE", "SSPINE", "ABDOMEN", "ABDOMENPELVIS", "ABDOMEN_PELVIS", "PELVIS", "HIP", "KNEE", "ANKLE",
    "FOOT", "LEG", "UPRLIMB", "UPPER_LIMB", "LOWLIMB", "LOWER_LIMB", "ARM", "ELBOW", "FOREARM", "WRIST",
    "HAND", "SHOULDER", "EXTREMITY", "FEMUR", "TIBIA", "KIDNEY", "LIVER", "PROSTATE", "BLADDER",
})


def passport_checks(volume: Volume) -> tuple[list[GateCheck], Reason | None]:
    """Tag and geometry checks of a volume; returns the checks and the first refusal's reason (or None)."""
    meta = volume.meta
    modality = (meta.modality or "").strip().upper()
    body_part = (meta.body_part_examined or "").strip().upper().replace(" ", "_")
    nz = volume.shape[0]
    coverage = float(nz * volume.spacing[2])
    checks = [
        (Reason.NOT_CT, GateCheck(name="modality", passed=modality == "CT", value=modality or None, expected="CT")),
        (Reason.NOT_CHEST, GateCheck(
            name="body_part_examined", passed=body_part not in NON_CHEST_PARTS, value=body_part or None,
            expected="chest or not stated",
            detail=_body_part_note(body_part),
        )),
        (Reason.TOO_FEW_SLICES, GateCheck(name="slice_count", passed=nz >= MIN_SLICES, value=nz, expected=f">= {MIN_SLICES}")),
        (Reason.INSUFFICIENT_COVERAGE, GateCheck(
            name="z_coverage_mm", passed=coverage >= MIN_COVERAGE_MM, value=round(coverage, 1),
            expected=f">= {MIN_COVERAGE_MM:g}",
        )),
    ]
    refusal = next((reason for reason, check in checks if not check.passed), None)
    return [check for _, check in checks], refusal


def _body_part_note(body_part: str) -> str | None:
    if not body_part:
        return "not stated; the anatomy check decides"
    if body_part in NON_CHEST_PARTS:
        return "names a part other than the chest"
    if body_part not in CHEST_PARTS:
        return "not a known chest term; not refused, the anatomy check decides"
    return None
