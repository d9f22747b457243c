"""Spine, sternum and ribs: bone-dense voxels told apart from contrast-filled vessels by where they lie.

Bone is where most original voxels exceed 200 HU (``WorkGrid.bone``). In a contrast scan the heart
and the great vessels are as dense, so density alone cannot tell them from bone; anatomy can. The
spinal canal is found first: a hole of CSF density ringed by bone, posterior and near the midline,
followed through the slices (gaps between vertebral arches are interpolated). Around it lies the
vertebra (the body in front of the canal, the arch and spinous process behind it): the dense
components ringing the canal. Dense voxels inside the thoracic cavity (the per-slice hull of the
lungs) other than the vertebrae are heart and vessels, not bone.
What remains is sternum when it is in front of the cavity near the midline, and ribs otherwise,
when near a lung; farther bones (scapula, clavicle, humerus, skull, pelvis) are left to "body".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from worker_gate.organs.grid import WorkGrid
from worker_gate.organs.morphology import fill_holes_2d, within

BONE_FRACTION = 0.3
"""A working voxel is bone-dense when at least this share of its original voxels is above 200 HU."""

BONE_MEAN_HU = 150.0
"""...or when the working voxel's mean is above this (trabecular bone of a vertebral body)."""

CANAL_AREA_MM2 = (40.0, 450.0)
"""Cross-section of the spinal canal (~10-22 mm wide); a vertebral body's marrow is larger."""

CANAL_HU = (-50.0, 90.0)
"""Median density of the canal's content (CSF, cord, epidural fat); marrow of a body ringed by
dense cortex is denser."""

VERTEBRA_MM = {
    "body_half_width": 22.0, "anterior": 50.0, "arch_half_width": 38.0, "arch_front": 8.0, "posterior": 45.0,
}
"""Extent of a thoracic vertebra around the canal centre, in mm: the body in front of the canal,
the arch (transverse processes) beside and the spinous process behind it."""

CANAL_REACH_MM = 15.0
"""Bone within this distance of the canal centre belongs to the vertebra ringing it."""

CANAL_TO_LUNG_BACK_MM = 40.0

RIB_REACH_MM = 30.0
"""Bone farther than this from both lungs is not rib (scapula, clavicle, humerus...)."""


@dataclass
class Spine:
    """The spinal canal and the box a vertebra occupies around it, on the working grid."""

    canal: np.ndarray
    canal_xy: np.ndarray
    """``(nz, 2)``: x, y of the canal centre in working voxels, interpolated; NaN when not found."""
    region: np.ndarray
    dense: np.ndarray
    """Bone-dense voxels of the body (bone and contrast-filled vessels alike)."""

    @property
    def found(self) -> bool:
        """Whether the spine was located."""
        return bool(np.isfinite(self.canal_xy).all())

    @classmethod
    def missing(cls, grid: WorkGrid, dense: np.ndarray) -> Spine:
        """No spine (not in the field of view, or not recognised)."""
        nothing = np.zeros(grid.shape, dtype=bool)
        return cls(nothing, np.full((grid.shape[0], 2), np.nan), nothing.copy(), dense)


@dataclass
class Bones:
    """Bones on the working grid."""

    vertebrae: np.ndarray
    sternum: np.ndarray
    ribs: np.ndarray
    vertebral_core: np.ndarray
    """The vertebrae without what merely touches them (a contrast-filled aorta may)."""

    @property
    def mask(self) -> np.ndarray:
        """All bone."""
        return self.vertebrae | self.sternum | self.ribs

    @property
    def solid(self) -> np.ndarray:
        """All bone, vertebrae by their core: what a vessel beside the spine cannot be."""
        return self.vertebral_core | self.sternum | self.ribs


def _canal_track(grid: WorkGrid, body: np.ndarray, dense: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Canal mask and ``(nz, 2)`` canal centres (NaN when no canal is seen at all)."""
    nz = grid.shape[0]
    area = np.array(CANAL_AREA_MM2) / (grid.spacing[1] * grid.spacing[2])
    centres = np.full((nz, 2), np.nan)
    canal = np.zeros(grid.shape, dtype=bool)
    # every slice's ring of bone closed and its holes, at once (in-plane structures only)
    plane = np.zeros((3, 3, 3), dtype=bool)
    plane[1] = ndimage.generate_binary_structure(2, 1)
    rings = ndimage.binary_closing(dense, structure=plane)
    all_holes = fill_holes_2d(rings) & ~rings & body
    for z in range(nz):
        if not body[z].any():
            continue
        labels, count = ndimage.label(all_holes[z])
        if count == 0:
            continue
        ys, xs = np.nonzero(body[z])
        cx, half = (xs.min() + xs.max()) / 2.0, (xs.max() - xs.min()) / 2.0
        y_mid = (ys.min() + ys.max()) / 2.0
        best, best_y = 0, -np.inf
        for index, sl in enumerate(ndimage.find_objects(labels), start=1):
            region = labels[sl] == index
            if not area[0] <= region.sum() <= area[1]:
                continue
            ry, rx = np.argwhere(region).mean(axis=0) + (sl[0].start, sl[1].start)
            soft = np.median(grid.hu[z][sl][region])
            # the canal is the hindmost such hole near the midline (the body's marrow lies in front)
            if ry > y_mid and abs(rx - cx) < 0.3 * half and CANAL_HU[0] < soft < CANAL_HU[1] and ry > best_y:
                best, best_y = index, ry
        if best:
            canal[z] = labels == best
            centres[z] = np.argwhere(canal[z]).mean(axis=0)[::-1]
    found = np.isfinite(centres[:, 0])
    if found.sum() < 2:
        return canal, np.full((nz, 2), np.nan)
    # keep the slices that agree with the column's median course, then interpolate the rest
    zs = np.flatnonzero(found)
    for axis in range(2):
        smooth = ndimage.median_filter(centres[zs, axis], size=min(7, len(zs)), mode="nearest")
        bad = np.abs(centres[zs, axis] - smooth) > grid.mm(10.0, 2 - axis)
        canal[zs[bad]] = False
        centres[zs[bad]] = np.nan
    zs = np.flatnonzero(np.isfinite(centres[:, 0]))
    if zs.size < 2:
        return canal, np.full((nz, 2), np.nan)
    track = np.stack([np.interp(np.arange(nz), zs, centres[zs, a]) for a in range(2)], axis=1)
    return canal, track


def _vertebra_region(grid: WorkGrid, track: np.ndarray) -> np.ndarray:
    """Boolean mask of where a vertebra lies around the canal, slice by slice.

    In front of the canal only the vertebral body's width (the descending aorta lies just beside
    it); at and behind the canal the arch with its transverse and spinous processes.
    """
    ny, nx = grid.shape[1:]
    y = np.arange(ny)[None, :, None] * grid.spacing[1]
    x = np.arange(nx)[None, None, :] * grid.spacing[2]
    cx = track[:, 0][:, None, None] * grid.spacing[2]
    cy = track[:, 1][:, None, None] * grid.spacing[1]
    body = (np.abs(x - cx) <= VERTEBRA_MM["body_half_width"]) & (y >= cy - VERTEBRA_MM["anterior"])
    arch = (np.abs(x - cx) <= VERTEBRA_MM["arch_half_width"]) & (y >= cy - VERTEBRA_MM["arch_front"])
    return (body | arch) & (y <= cy + VERTEBRA_MM["posterior"])


def _vertebrae(grid: WorkGrid, dense: np.ndarray, canal_xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The dense 2-D components that ring the canal, slice by slice, and their solid core.

    A contrast-filled aorta may touch the vertebral body and join its component. The core is the
    same taken after a one-voxel erosion (which parts two touching round shapes, but also the thin
    arch, hence not the vertebra itself), grown back inside ``dense``.
    """
    whole, core = np.zeros_like(dense), np.zeros_like(dense)
    if not np.isfinite(canal_xy).all():
        return whole, core
    ny, nx = dense.shape[1:]
    yy, xx = np.ogrid[:ny, :nx]
    reach = (CANAL_REACH_MM / grid.spacing[2]) ** 2
    for z in np.flatnonzero(dense.any(axis=(1, 2))):
        near = (xx - canal_xy[z, 0]) ** 2 + (yy - canal_xy[z, 1]) ** 2 <= reach
        labels, _ = ndimage.label(dense[z])
        whole[z] = np.isin(labels, np.unique(labels[near & (labels > 0)]))
        labels, _ = ndimage.label(ndimage.binary_erosion(dense[z]))
        core[z] = ndimage.binary_dilation(np.isin(labels, np.unique(labels[near & (labels > 0)]))) & dense[z]
    return whole, core


def find_spine(grid: WorkGrid, body: np.ndarray) -> Spine:
    """The spinal canal, its centre per slice and the vertebra box around it."""
    dense = ((grid.bone >= BONE_FRACTION) | (grid.hu >= BONE_MEAN_HU)) & body
    canal, track = _canal_track(grid, body, dense)
    if not np.isfinite(track).all():
        return Spine.missing(grid, dense)
    region = _vertebra_region(grid, track)
    return Spine(canal & region, track, region, dense)


def spine_behind_lungs(grid: WorkGrid, spine: Spine, lungs: np.ndarray) -> bool:
    """Whether the canal lies where a spine can: level with the back of the lungs, which wrap
    around the vertebrae (within ``CANAL_TO_LUNG_BACK_MM`` of their hindmost voxels, median over
    slices). A field of view that cuts the back can offer a hole in contrast-filled heart chambers
    instead, well in front of the lungs' back."""
    levels = np.flatnonzero(lungs.any(axis=(1, 2)))
    if not spine.found or levels.size == 0:
        return spine.found
    back = np.array([np.nonzero(lungs[z].any(axis=1))[0].max() for z in levels])
    gap_mm = (back - spine.canal_xy[levels, 1]) * grid.spacing[1]
    return bool(np.median(gap_mm) <= CANAL_TO_LUNG_BACK_MM)


def find_bones(grid: WorkGrid, spine: Spine, lungs: np.ndarray, cavity: np.ndarray) -> Bones:
    """Vertebrae, sternum and ribs on the working grid; ``cavity`` is the space between the lungs."""
    empty = np.zeros(grid.shape, dtype=bool)
    # contrast-filled heart and vessels: dense voxels inside the cavity, off the spine
    vertebrae, core = _vertebrae(grid, spine.dense & spine.region, spine.canal_xy)
    bone = spine.dense & (~cavity | vertebrae)
    rest = bone & ~vertebrae
    near_lung = within(lungs, RIB_REACH_MM, grid.spacing)
    sternum = empty.copy()
    if cavity.any() and spine.found:
        # in front of the cavity, within 25 mm of the spine's x
        front = np.zeros(grid.shape, dtype=bool)
        for z in np.flatnonzero(cavity.any(axis=(1, 2))):
            ys, xs = np.nonzero(cavity[z])
            near_mid = np.abs(np.arange(grid.shape[2]) - spine.canal_xy[z, 0]) <= grid.mm(25.0, 2)
            top = ys[near_mid[xs]].min() if near_mid[xs].any() else ys.min()
            front[z, : top + grid.mm(5.0, 1), :] = near_mid[None, :]
        sternum = rest & front
    ribs = rest & ~sternum & near_lung
    return Bones(vertebrae, sternum, ribs, core)
