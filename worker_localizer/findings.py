"""Baseline localizer: threshold the calibrated anomaly map, split it into connected components and
name the organ each lies in from the organ label map.

A finding is a 26-connected component of ``score >= voxel_threshold`` of at least
:data:`MIN_FINDING_MM3`. The study score is the score-weighted volume of all findings,
``sum(score_sum) * voxel volume`` in ml, so it does not depend on the voxel size; the verdict is
``pathology`` when it exceeds the screener's calibrated study threshold (the reference service's rule
"sum of scores inside the mask > 1800", made spacing-independent).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from shared.anatomy import BY_NAME
from shared.report import Finding, MillimetreBox, VoxelBox

MIN_FINDING_MM3 = 30.0
"""Smaller components are noise at the baseline's resolution (a 4 mm sphere is 34 mm^3)."""
CONNECTIVITY = np.ones((3, 3, 3), dtype=bool)
"""Voxels sharing a face, an edge or a corner belong to one finding (26-connectivity)."""
OUTSIDE_ORGANS = "outside_organs"
MAX_FINDINGS = 255
"""Findings reported (highest score_sum first), so their label mask fits ``uint8``; a map with more
components than this is noise, and the study score already exceeds any threshold."""


def extract_findings(
    *, scores: np.ndarray, labels: np.ndarray, names: dict[int, str], affine: np.ndarray,
    sop_instance_uids: list[str], voxel_threshold: float, min_volume_mm3: float = MIN_FINDING_MM3,
) -> list[Finding]:
    """Findings of an anomaly map ``(nz, ny, nx)`` with organ ``labels`` on the same grid, by score_sum."""
    findings, _ = locate_findings(
        scores=scores, labels=labels, names=names, affine=affine, sop_instance_uids=sop_instance_uids,
        voxel_threshold=voxel_threshold, min_volume_mm3=min_volume_mm3,
    )
    return findings


def locate_findings(
    *, scores: np.ndarray, labels: np.ndarray, names: dict[int, str], affine: np.ndarray,
    sop_instance_uids: list[str], voxel_threshold: float, min_volume_mm3: float = MIN_FINDING_MM3,
) -> tuple[list[Finding], np.ndarray]:
    """:func:`extract_findings` and their ``uint8`` label mask ``(nz, ny, nx)``: ``n`` = voxel of finding ``n``
    in report order (by score_sum, highest first; ties by position, so the order is deterministic)."""
    # At least float32: a float16 map must not round the threshold (0.7 is 0.7002 in float16).
    above = scores >= np.asarray(voxel_threshold, dtype=np.result_type(scores.dtype, np.float32))
    mask = np.zeros(scores.shape, dtype=np.uint8)
    crop = _bounding_box(above)
    if crop is None:
        return [], mask
    # Labelling is the stage's costliest step; the anomalous voxels' box is a fraction of the volume.
    components, _ = ndimage.label(above[crop], structure=CONNECTIVITY)
    del above
    voxel_mm3 = float(abs(np.linalg.det(affine[:3, :3])))
    located = []
    for number, local in enumerate(ndimage.find_objects(components), start=1):
        if local is None:
            continue
        region = components[local] == number
        box = tuple(slice(part.start + outer.start, part.stop + outer.start) for part, outer in zip(local, crop))
        if region.sum() * voxel_mm3 < min_volume_mm3:
            continue
        located.append((_finding(region, box, scores, labels, names, affine, sop_instance_uids, voxel_mm3), box, region))
    # Stable sort: components are numbered in raster order, so equal sums keep a fixed order.
    located.sort(key=lambda item: item[0].score_sum, reverse=True)
    del located[MAX_FINDINGS:]
    for number, (_, box, region) in enumerate(located, start=1):
        mask[box][region] = number
    return [finding for finding, _, _ in located], mask


def _bounding_box(mask: np.ndarray) -> tuple[slice, slice, slice] | None:
    """The smallest box holding every ``True`` voxel of ``mask``, or None when there is none."""
    extents = []
    for axis in range(3):
        present = np.flatnonzero(mask.any(axis=tuple(other for other in range(3) if other != axis)))
        if present.size == 0:
            return None
        extents.append(slice(int(present[0]), int(present[-1]) + 1))
    return tuple(extents)  # type: ignore[return-value]


def study_score(findings: list[Finding], *, affine: np.ndarray) -> float:
    """Score-weighted volume of all findings in ml."""
    voxel_ml = float(abs(np.linalg.det(affine[:3, :3]))) / 1000.0
    return float(sum(finding.score_sum for finding in findings) * voxel_ml)


def _finding(
    region: np.ndarray, box: tuple[slice, slice, slice], scores: np.ndarray, labels: np.ndarray,
    names: dict[int, str], affine: np.ndarray, sop_instance_uids: list[str], voxel_mm3: float,
) -> Finding:
    offset = np.array([box[0].start, box[1].start, box[2].start])
    kji = np.argwhere(region) + offset  # (n, 3) in (k, j, i)
    ijk = kji[:, ::-1].astype(np.float64)
    values = scores[box][region].astype(np.float64)
    organ_counts = np.bincount(labels[box][region], minlength=256)
    organs = {
        names.get(label, OUTSIDE_ORGANS) if label else OUTSIDE_ORGANS: round(count / len(values), 4)
        for label, count in enumerate(organ_counts.tolist()) if count
    }
    organ = max(organs, key=organs.__getitem__)
    low, high = ijk.min(axis=0), ijk.max(axis=0)
    corners = np.array([[x, y, z] for x in (low[0], high[0]) for y in (low[1], high[1]) for z in (low[2], high[2])])
    corners_mm = _to_lps(affine, corners)
    per_slice = np.bincount(kji[:, 0], weights=values)
    key_slice = int(np.argmax(per_slice))
    return Finding(
        organ=organ,
        organ_display=BY_NAME[organ].display if organ in BY_NAME else "outside the segmented organs",
        organs=dict(sorted(organs.items(), key=lambda item: -item[1])),
        volume_ml=round(len(values) * voxel_mm3 / 1000.0, 4),
        score_max=round(float(values.max()), 4),
        score_mean=round(float(values.mean()), 4),
        score_sum=round(float(values.sum()), 3),
        bbox_voxel=VoxelBox(min=tuple(int(v) for v in low), max=tuple(int(v) for v in high)),
        bbox_mm=MillimetreBox(min=_rounded(corners_mm.min(axis=0)), max=_rounded(corners_mm.max(axis=0))),
        centroid_mm=_rounded(_to_lps(affine, ijk.mean(axis=0, keepdims=True))[0]),
        slice_range=(int(kji[:, 0].min()), int(kji[:, 0].max())),
        key_sop_instance_uids=[sop_instance_uids[key_slice]] if key_slice < len(sop_instance_uids) else [],
    )


def _to_lps(affine: np.ndarray, ijk: np.ndarray) -> np.ndarray:
    return ijk @ affine[:3, :3].T + affine[:3, 3]


def _rounded(xyz: np.ndarray) -> tuple[float, float, float]:
    return tuple(round(float(v), 2) for v in xyz)  # type: ignore[return-value]
