"""Left and right lung: the large air-filled regions inside the body, with what lies within them.

Lung parenchyma is the body's air (below ``LUNG_HU``) minus the airway; its 3-D components that
are large and lung-like in density (bowel gas is purer air, see ``GAS_AIR_FRACTION``) are the
lungs. When the two lungs touch (the anterior junction line is thinner than a working voxel) the
joined component is eroded until it falls apart into two, and every voxel goes to the nearer part;
failing that, the midline splits it. The patient's left lung is the one at larger LPS x.

Nodules, masses, vessels and consolidation inside the lung are soft tissue, so the air mask has
holes and bites there. The localizer needs them inside the lung: :func:`complete_lungs` closes
each lung (``CLOSE_MM``) together with the chest wall beside it, keeps what lies within the lung's
own outline, and fills the holes of axial and coronal slices. Consolidation that fills a whole
lobe out to the chest wall leaves no air to start from: that part of the lung is missed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from worker_gate.organs.grid import WorkGrid
from worker_gate.organs.morphology import box, close, fill_holes_2d, within
from worker_gate.organs.thorax import slice_hulls

LUNG_HU = -400.0
"""Working-grid density below which a voxel counts as aerated lung."""

MIN_LUNG_ML = 15.0
"""Smallest air component taken for (part of) a lung."""

GAS_AIR_FRACTION = 0.45
"""Bowel and stomach gas is mostly pure air: more than this share of its original voxels is below
-900 HU, while in aerated lung the vessels and the parenchyma (~-850 HU) keep the share lower."""

BIG_LUNG_ML = 300.0
GAS_MEAN_HU = -960.0
"""An emphysematous lung has much pure air too; a component this large counts as lung unless its
mean density is that of pure gas."""

CLOSE_MM = 25.0
"""Radius of the closing that pulls juxtapleural nodules and mass edges into the lung."""

MIDLINE_MM = 35.0
"""Chest wall closer than this to the midline (sternum, spine) does not help close the lungs."""

ATTACH_MM = 15.0
"""Lung fragments closer than this to a lung belong to it."""


@dataclass
class Lungs:
    """Both lungs' aerated parts on the working grid, and what went wrong."""

    left: np.ndarray
    right: np.ndarray
    notes: list[str] = field(default_factory=list)


def _split(component: np.ndarray, midline_x: float) -> tuple[np.ndarray, np.ndarray]:
    """Two parts of a component holding both lungs: by erosion if it parts, else at the midline."""
    sl = box(component, 1)
    whole, component = component, component[sl]
    eroded = component
    for _ in range(8):
        eroded = ndimage.binary_erosion(eroded)
        labels, count = ndimage.label(eroded)
        if count < 2:
            continue
        sizes = np.bincount(labels.ravel())[1:]
        order = np.argsort(sizes)[::-1]
        if sizes[order[1]] >= 0.1 * sizes[order[0]]:
            seeds = np.where(np.isin(labels, order[:2] + 1), labels, 0)
            nearest = ndimage.distance_transform_edt(seeds == 0, return_distances=False, return_indices=True)
            owner = seeds[tuple(nearest)]
            first, second = np.zeros_like(whole), np.zeros_like(whole)
            first[sl] = component & (owner == order[0] + 1)
            second[sl] = component & (owner == order[1] + 1)
            return first, second
    xs = np.arange(whole.shape[2])[None, None, :]
    return whole & (xs < midline_x), whole & (xs >= midline_x)


def find_lungs(grid: WorkGrid, body: np.ndarray, airway: np.ndarray, midline_x: float) -> Lungs:
    """Left and right lung on the working grid; empty masks (with a note) when none is found."""
    notes: list[str] = []
    air = body & (grid.hu < LUNG_HU) & ~ndimage.binary_dilation(airway)
    labels, count = ndimage.label(air)
    empty = np.zeros(grid.shape, dtype=bool)
    if count == 0:
        return Lungs(empty, empty.copy(), ["no air-filled region inside the body"])
    sizes = np.bincount(labels.ravel())[1:] * grid.voxel_ml
    ids = np.flatnonzero(sizes >= MIN_LUNG_ML) + 1
    means = np.asarray(ndimage.mean(grid.hu, labels, ids)) if ids.size else np.zeros(0)
    pure = np.asarray(ndimage.mean(grid.air, labels, ids)) if ids.size else np.zeros(0)
    big = sizes[ids - 1] >= BIG_LUNG_ML
    lungish = ids[(pure <= GAS_AIR_FRACTION) | (big & (means >= GAS_MEAN_HU))]
    if lungish.size == 0:
        return Lungs(empty, empty.copy(), ["no lung-like air region inside the body"])
    lungish = lungish[np.argsort(sizes[lungish - 1])[::-1]]
    first = labels == lungish[0]
    second = labels == lungish[1] if lungish.size > 1 else empty
    centre = lambda m: float(np.argwhere(m)[:, 2].mean())  # noqa: E731 - x centroid
    if lungish.size == 1 or sizes[lungish[1] - 1] < 0.1 * sizes[lungish[0] - 1]:
        xs = np.argwhere(first)[:, 2]
        off = grid.mm(20.0, 2)
        spans_midline = (xs < midline_x - off).mean() > 0.2 and (xs > midline_x + off).mean() > 0.2
        if spans_midline:
            first, second = _split(first, midline_x)
        else:
            second = empty
    if second.any():
        left, right = (first, second) if centre(first) > centre(second) else (second, first)
    elif centre(first) > midline_x:
        left, right = first, empty
        notes.append("right lung not found")
    else:
        left, right = empty, first
        notes.append("left lung not found")
    # fragments (lung cut off by a mass or by the coarse grid) join the nearer lung when close
    rest = np.isin(labels, lungish) & ~left & ~right
    if rest.any() and (left.any() or right.any()):
        frag_labels, n_frag = ndimage.label(rest)
        inside = frag_labels > 0
        nearest = []
        for lung in (left, right):
            d = np.full(n_frag + 1, np.inf)
            if lung.any():
                distance = ndimage.distance_transform_edt(~lung, sampling=grid.spacing)
                np.minimum.at(d, frag_labels[inside], distance[inside])
            nearest.append(d)
        for index in range(1, n_frag + 1):
            frag = frag_labels == index
            dl, dr = nearest[0][index], nearest[1][index]
            if min(dl, dr) <= ATTACH_MM:
                if dl <= dr:
                    left |= frag
                else:
                    right |= frag
    return Lungs(left, right & ~left, notes)


def complete_lungs(
    grid: WorkGrid, lungs: Lungs, *, body: np.ndarray, cavity: np.ndarray, exclude: np.ndarray, midline_x: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Left and right lung with the nodules, masses and vessels they hold.

    A mass on the pleura is a bite out of the lung whose mouth is the chest wall; a closing of the
    lung alone leaves the mass's base (a ball fits there from the chest wall's side). So the lung
    is closed together with the costal chest wall next to it (outside ``cavity``, the hull of the
    lungs, and away from the midline, where the sternum and spine would close the mediastinum in)
    and only what lies within the lung's own per-slice convex hull is kept (not a corner beside the
    sternum). ``exclude`` are the organs found around the lungs
    (heart, aorta, bones, liver...): the closing must not swallow the aorta in its groove, nor the
    fill an abdominal organ that a slice shows as an island ringed by the lung base.
    """
    done = []
    x = np.arange(grid.shape[2])[None, None, :]
    costal = cavity.any(axis=(1, 2))[:, None, None] & (np.abs(x - midline_x) * grid.spacing[2] >= MIDLINE_MM)
    for lung, other in ((lungs.left, lungs.right), (lungs.right, lungs.left)):
        if not lung.any():
            done.append(lung)
            continue
        wall = within(lung, CLOSE_MM + grid.spacing.max(), grid.spacing) & ~cavity & costal
        closed = close(lung | wall, CLOSE_MM, grid.spacing, coarsen=2) & slice_hulls(lung)
        grown = (closed & body & ~exclude & ~other) | lung
        done.append(fill_holes_2d(grown, (0, 1)) & ~exclude | lung)
    left, right = done
    return left & ~right, right
