"""The built-in organ segmenter: classical image processing that needs no downloaded weights.

It runs on a ~2.5 mm working grid (:mod:`worker_gate.organs.grid`) in this order, each step using
what the earlier ones found: body -> airway (trachea, bronchi) -> spinal canal -> lungs -> the
space between the lungs -> bones -> aorta, heart, mediastinum -> upper abdomen -> lungs completed
with what lies inside them -> chest wall -> lobes. The label map it returns is on the volume's
own grid, with the label ids of :mod:`shared.anatomy`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from shared.anatomy import BY_LABEL, label_of
from shared.dicom.volume import Volume
from worker_gate.organs.abdomen import find_abdomen
from worker_gate.organs.airways import Airway, find_airway
from worker_gate.organs.body import body_mask
from worker_gate.organs.bones import Spine, find_bones, find_spine, spine_behind_lungs
from worker_gate.organs.chestwall import find_chest_wall
from worker_gate.organs.grid import WorkGrid, make_grid
from worker_gate.organs.lobes import split_lobes
from worker_gate.organs.lungs import complete_lungs, find_lungs
from worker_gate.organs.mediastinum import find_mediastinum
from worker_gate.organs.thorax import below_diaphragm, between_lungs, diaphragm_height, under_lung

BELOW_LUNG_MARGIN_MM = 5.0
"""Voxels this far below the lung base of their column are abdomen (the diaphragm lies between)."""

DEEP_BELOW_MM = 15.0
"""Deeper than this under the diaphragm nothing is added to the lungs (a mass on the diaphragm is not that deep)."""

CARINA_BELOW_APEX_MM = 20.0
"""A carina is at least this far below the lung apex (~90 mm in adults); a split higher up is the pharynx."""

APEX_TO_CARINA_MM = 90.0
"""Typical distance from the lung apex down to the carina, when the scan does not show the carina."""

LEFT_BASE_BAND_MM = 40.0
RIGHT_BASE_BAND_MM = 100.0
"""Only lung bottoms this close to the lung's lowest point rest on the diaphragm (higher ones on the
heart); the right dome stands higher above the right lung's posterior recess than the left."""


@dataclass
class OrganSegmentation:
    """An organ label map on the volume's grid, the organs found and what could not be found."""

    labels: np.ndarray
    """``uint8`` ``(nz, ny, nx)``, ids of :data:`shared.anatomy.ORGANS` (0 = outside the body)."""
    found: dict[str, float] = field(default_factory=dict)
    """Organ name -> volume in ml, for every label present."""
    notes: list[str] = field(default_factory=list)


def segment_organs(volume: Volume, *, lobes: bool = True) -> OrganSegmentation:
    """Segment body, lungs, airway, heart, descending aorta, mediastinum, bones, chest wall and liver.

    Pure and deterministic; works on any CT orientation, spacing and coverage, returning what the
    scan shows and a note for what it does not. With ``lobes`` the lungs are split into the five
    lobes by an anatomical prior (fissure planes anchored at the carina, see
    :mod:`worker_gate.organs.lobes`): fissures are not detected, so the split is approximate.
    Without it the lungs are ``lung_left`` / ``lung_right``.
    """
    grid = make_grid(volume)
    notes: list[str] = []
    body = body_mask(grid)
    if not body.any():
        return _result(volume, grid, np.zeros(grid.shape, np.uint8), ["no body found"])
    airway = find_airway(grid, body)
    if airway.seed is None:
        notes.append("trachea not found (no round central air column in the upper slices)")
    spine = find_spine(grid, body)
    midline = _midline_x(grid, body, airway.seed, spine.canal_xy)
    lungs = find_lungs(grid, body, airway.mask, midline)
    if not spine_behind_lungs(grid, spine, lungs.left | lungs.right):
        spine = Spine.missing(grid, spine.dense)
        midline = _midline_x(grid, body, airway.seed, spine.canal_xy)
        lungs = find_lungs(grid, body, airway.mask, midline)
    if not spine.found:
        notes.append("spinal canal not found")
    notes += lungs.notes
    airway = _check_carina(grid, airway, lungs.left | lungs.right)
    carina_z = _carina_level(grid, airway, lungs.left | lungs.right)
    if lobes and airway.carina_z is None and (lungs.left.any() or lungs.right.any()):
        notes.append("carina not in the scan: lobes split from " +
                     ("a carina estimated below the lung apex" if carina_z is not None else "the scan's top"))
    cavity = between_lungs(lungs.left, lungs.right)
    diaphragm = diaphragm_height(lungs.left, lungs.right, left_band=grid.mm(LEFT_BASE_BAND_MM, 0),
                                 right_band=grid.mm(RIGHT_BASE_BAND_MM, 0))
    below = below_diaphragm(diaphragm, grid.shape, grid.mm(BELOW_LUNG_MARGIN_MM, 0))
    under = under_lung(lungs.left | lungs.right)
    bones = find_bones(grid, spine, lungs.left | lungs.right, cavity)
    organs = find_mediastinum(
        grid, body=body, cavity=cavity, lungs=lungs.left | lungs.right, airway=airway.mask,
        bone=bones.mask, solid_bone=bones.solid, spine_region=spine.region, canal_xy=spine.canal_xy, carina_z=carina_z,
        below_diaphragm=below, under_lung=under,
    )
    known = organs.heart | organs.aorta | bones.mask | airway.mask | spine.canal
    abdomen = find_abdomen(grid, body=body, below_diaphragm=below, exclude=known | lungs.left | lungs.right,
                           midline_x=midline)
    # deep under the diaphragm is abdomen, though a slice may show it ringed by lung; a mass on the
    # diaphragm reaches less deep
    deep = below_diaphragm(diaphragm, grid.shape, grid.mm(DEEP_BELOW_MM, 0))
    known |= abdomen.mask | deep
    left, right = complete_lungs(grid, lungs, body=body, cavity=cavity, exclude=known, midline_x=midline)
    wall = find_chest_wall(grid, body=body, cavity=cavity, exclude=known | left | right, under_lung=under)

    labels = np.where(body, label_of("body"), 0).astype(np.uint8)
    layers = [
        ("subcutaneous_fat", wall.fat), ("skeletal_muscle", wall.muscle),
        ("liver", abdomen.liver), ("mediastinum", organs.mediastinum & ~left & ~right),
        ("ribs", bones.ribs), ("sternum", bones.sternum), ("vertebrae", bones.vertebrae),
        ("spinal_cord", spine.canal), ("heart", organs.heart), ("aorta", organs.aorta),
    ]
    for name, mask in layers:
        labels[mask] = label_of(name)
    if lobes:
        for name, mask in split_lobes(grid, left=left, right=right, carina_z=carina_z,
                                      carina_y=_carina_y(airway, lungs.left | lungs.right)).items():
            labels[mask] = label_of(name)
    else:
        labels[left] = label_of("lung_left")
        labels[right] = label_of("lung_right")
    labels[airway.trachea] = label_of("trachea")
    labels[airway.bronchi] = label_of("bronchi")
    if not organs.heart.any():
        notes.append("heart not found (no soft-tissue blob between the lungs)")
    return _result(volume, grid, labels, notes)


def _midline_x(grid: WorkGrid, body: np.ndarray, seed: tuple[int, int, int] | None, canal_xy: np.ndarray) -> float:
    """x (working voxels) of the patient's midline: the spinal canal, else the trachea, else the body's
    centre; in a field of view that cuts the body (a crop), LPS x = 0, since scanners centre patients
    on the table's axis."""
    if np.isfinite(canal_xy).all():
        return float(np.median(canal_xy[:, 0]))
    if seed is not None:
        return float(seed[2])
    if body[:, :, [0, -1]].any() or body[:, [0, -1], :].any():
        return float(np.interp(0.0, grid.lps_x, np.arange(grid.lps_x.size)))
    return float(np.argwhere(body)[:, 2].mean())


def _check_carina(grid: WorkGrid, airway: Airway, lungs: np.ndarray) -> Airway:
    """The airway with its carina dropped when it lies above the lungs' apex (a split of the pharynx)."""
    if airway.carina_z is None or not lungs.any():
        return airway
    apex = int(np.flatnonzero(lungs.any(axis=(1, 2))).max())
    if airway.carina_z <= apex - grid.mm(CARINA_BELOW_APEX_MM, 0):
        return airway
    return Airway(airway.trachea | airway.bronchi, np.zeros_like(airway.bronchi), None, airway.seed)


def _carina_level(grid: WorkGrid, airway: Airway, lungs: np.ndarray) -> int | None:
    """Working slice of the carina; estimated ``APEX_TO_CARINA_MM`` below the lung apex when the
    scan shows the apex but not the carina; ``None`` when it shows neither."""
    if airway.carina_z is not None:
        return airway.carina_z
    levels = np.flatnonzero(lungs.any(axis=(1, 2)))
    if levels.size == 0 or levels.max() >= grid.shape[0] - 2:
        return None  # the lungs reach the top of the scan: the apex is not in it
    return int(levels.max() - round(APEX_TO_CARINA_MM / grid.spacing[0]))


def _carina_y(airway: Airway, lungs: np.ndarray) -> float | None:
    """y (working voxels) of the carina, where the lobes' fissures are anchored (else the lungs' centre)."""
    if airway.carina_z is not None:
        ys = np.nonzero(airway.mask[airway.carina_z])[0]
        if ys.size:
            return float(ys.mean())
    return float(np.argwhere(lungs)[:, 1].mean()) if lungs.any() else None


def _result(volume: Volume, grid: WorkGrid, labels: np.ndarray, notes: list[str]) -> OrganSegmentation:
    """The working-grid labels mapped onto the volume, with the volume of each organ in it."""
    voxel_ml = float(np.prod(volume.spacing)) / 1000.0
    # each working voxel stands for a whole box of volume voxels: count them without the big array
    per_axis = [np.bincount(m, minlength=n) for m, n in zip(grid.index_maps, grid.shape)]
    weight = per_axis[0][:, None, None] * per_axis[1][None, :, None] * per_axis[2][None, None, :]
    counts = np.bincount(labels.ravel(), weights=weight.ravel(), minlength=256)
    found = {BY_LABEL[i].name: round(float(counts[i]) * voxel_ml, 1) for i in sorted(BY_LABEL) if counts[i]}
    return OrganSegmentation(labels=grid.to_volume(labels), found=found, notes=notes)
