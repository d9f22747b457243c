"""Baseline organ label map: body and a threshold lung mask split into left and right lung.

The yardstick the real segmenter (issue 4) must beat. Rule, in HU:

* air = HU < -400; its 3-D components (6-connected; in-plane gaps under ~3 mm such as fissures
  bridged, nothing bridged across slices thicker than that) touching the in-plane border of the
  image are the air around the patient; the two largest remaining components are the lungs
  (trachea and main bronchi included, as they connect to them);
* when the lungs touch (one component holding most of the air), each in-plane piece goes to the
  side of the midline its centre lies on, pieces spanning both sides are cut at the midline;
* left/right follows patient LPS x (+x = patient left), not array order;
* solid tissue at least 5 mm wide that the lung encloses (a nodule) is added to it; vessels,
  fissures and tissue continuing out of the lung (the liver dome, the heart) are not, so lesions
  inside the lung belong to the mask while lesions against the chest wall, the mediastinum or a
  large vessel do not;
* body = the largest component of HU > -500 (the table apart), found on a 2x coarser grid.

Labels use :mod:`shared.anatomy` names: ``lung_left``, ``lung_right`` (lobes are not split) and
``body`` for everything else inside the patient. Measured on phantoms (96x160x160 and
128x256x256): Dice 0.98 (left) and 0.99 (right) against the ground-truth lobes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from shared.anatomy import label_of
from shared.dicom.volume import Volume
from worker_gate.organs.morphology import box, disk_2d, sweep

AIR_HU = -400.0
BODY_HU = -500.0
BRIDGE_MM = 1.5
"""Air regions closer than about twice this (fissures) belong to one component."""
CLOSING_MM = 2.5
"""In-plane closing radius before filling: bridges fissures and vessels thinner than ~5 mm."""
CORE_MM = 5.0
"""Enclosed tissue narrower than this in-plane (vessels, fissures) is not added to the lung."""
CONTACT_MM2 = 300.0
"""Enclosed tissue continuing out of the lung over a larger area is neighbouring anatomy."""
STRADDLE_MM = 20.0
"""An in-plane lung piece reaching this far across the midline on both sides is cut there."""
JOINED_FRACTION = 0.2
"""If the second air component is smaller than this fraction of the largest, the lungs are joined."""

LABEL_BODY = label_of("body")
LABEL_LUNG_LEFT = label_of("lung_left")
LABEL_LUNG_RIGHT = label_of("lung_right")


@dataclass
class LungMask:
    """The baseline segmentation: a ``uint8`` label map ``(nz, ny, nx)`` and measured lung volumes."""

    labels: np.ndarray
    left_ml: float
    right_ml: float
    joined: bool


def segment_baseline(volume: Volume) -> LungMask:
    """Label body, left lung and right lung of a CT volume by HU thresholds (see module doc)."""
    hu = volume.hu
    air = hu < AIR_HU
    # Components of the air dilated by BRIDGE_MM: lobes that complete fissures separate are one
    # lung, while gas below the diaphragm (several mm of tissue away) stays apart.
    size = tuple(2 * int(round(BRIDGE_MM / s)) + 1 for s in volume.spacing[::-1])  # no bridging along thick slices
    components, count = ndimage.label(ndimage.maximum_filter(air, size=size))
    components[~air] = 0
    sizes = np.bincount(components.ravel(), minlength=count + 1)
    sizes[0] = 0
    sizes[_border_labels(components)] = 0
    del air

    order = np.argsort(sizes)[::-1]
    first, second = (int(order[0]), int(order[1])) if count >= 2 else (int(order[0]), 0)
    labels = np.zeros(hu.shape, dtype=np.uint8)
    labels[body_outline(hu)] = LABEL_BODY

    joined = sizes[first] > 0 and sizes[second] < JOINED_FRACTION * sizes[first]
    if sizes[first] == 0:
        lungs: list[np.ndarray] = []
    elif joined:
        lungs = _split_by_x(components == first, volume)
    else:
        lungs = [components == first, components == second]
    del components

    voxel_ml = float(np.prod(volume.spacing)) / 1000.0
    volumes = {LABEL_LUNG_LEFT: 0.0, LABEL_LUNG_RIGHT: 0.0}
    for lung, label in zip(lungs, _sides(lungs, labels, volume)):
        fill_enclosed(lung, volume.spacing)
        labels[lung] = label
        volumes[label] += float(lung.sum()) * voxel_ml
    left_ml, right_ml = volumes[LABEL_LUNG_LEFT], volumes[LABEL_LUNG_RIGHT]
    return LungMask(labels=labels, left_ml=left_ml, right_ml=right_ml, joined=bool(joined))


def _border_labels(components: np.ndarray) -> np.ndarray:
    edges = (components[:, 0, :], components[:, -1, :], components[:, :, 0], components[:, :, -1])
    return np.unique(np.concatenate([edge.ravel() for edge in edges]))


def body_outline(hu: np.ndarray) -> np.ndarray:
    """The largest component of HU > :data:`BODY_HU`, found on a 2x coarser grid (a body needs no finer)."""
    coarse = hu[::2, ::2, ::2] > BODY_HU
    components, count = ndimage.label(coarse)
    if count == 0:
        return np.zeros(hu.shape, dtype=bool)
    sizes = np.bincount(components.ravel())
    sizes[0] = 0
    body = components == int(np.argmax(sizes))
    full = body.repeat(2, axis=0).repeat(2, axis=1).repeat(2, axis=2)
    return full[: hu.shape[0], : hu.shape[1], : hu.shape[2]] & (hu > BODY_HU)


def _split_by_x(lungs: np.ndarray, volume: Volume) -> list[np.ndarray]:
    """Split joined lungs into two parts along patient x (array axis i on axial scans).

    Slice by slice, each in-plane piece of lung goes wholly to the side of the midline (the middle
    of the joint component's x extent) its centre lies on, so tissue between the lungs (the anterior
    junction) never ends up inside one part; a piece reaching far across the midline (lungs that
    touch in that slice) is cut at the midline.
    """
    if int(np.argmax(np.abs(volume.direction[0]))) != 0:
        return _split_at(lungs, axis=int(np.argmax(np.abs(volume.direction[0]))))  # not axial: plain cut
    extent = np.flatnonzero(lungs.any(axis=(0, 1)))
    middle = (int(extent[0]) + int(extent[-1]) + 1) / 2.0
    reach = max(1, int(round(STRADDLE_MM / volume.spacing[0])))
    columns = np.arange(lungs.shape[2])
    low_side = np.zeros_like(lungs)
    for k in np.flatnonzero(lungs.any(axis=(1, 2))):
        pieces, count = ndimage.label(lungs[k])
        if count == 0:
            continue
        width = lungs.shape[2]
        per_column = np.bincount((pieces * width + columns[None, :]).ravel(), minlength=(count + 1) * width).reshape(count + 1, width)
        per_column[0] = 0
        sizes = per_column.sum(axis=1)
        centre = (per_column * columns).sum(axis=1) / np.maximum(sizes, 1)
        low = centre < middle
        straddles = (per_column[:, : max(0, int(middle) - reach)].sum(axis=1) > 0) & (per_column[:, int(middle) + reach:].sum(axis=1) > 0)
        assign = low[pieces] & (pieces > 0)
        cut = straddles[pieces] & (pieces > 0)
        assign[cut] = np.broadcast_to(columns < middle, assign.shape)[cut]
        low_side[k] = assign
    high_side = lungs & ~low_side
    return [part for part in (low_side, high_side) if part.any()]


def _split_at(lungs: np.ndarray, *, axis: int) -> list[np.ndarray]:
    array_axis = {0: 2, 1: 1, 2: 0}[axis]
    extent = np.flatnonzero(lungs.any(axis=tuple(a for a in range(3) if a != array_axis)))
    middle = (int(extent[0]) + int(extent[-1]) + 1) // 2
    first, second = lungs.copy(), lungs.copy()
    index = [slice(None)] * 3
    index[array_axis] = slice(middle, None)
    first[tuple(index)] = False
    index[array_axis] = slice(None, middle)
    second[tuple(index)] = False
    return [part for part in (first, second) if part.any()]


def fill_enclosed(mask: np.ndarray, spacing: tuple[float, float, float]) -> None:
    """Add to ``mask``, in place, the solid tissue it encloses: nodules and masses inside the lung.

    Per axial slice, the lung is first closed with a small disk (:data:`CLOSING_MM`) so fissures
    no longer cut it into pieces; background it then encloses is a hole. An in-plane opening with a
    :data:`CORE_MM` square keeps the cores of holes at least that wide, dropping thin vessels (and
    cutting nodules loose from the vessels they touch). Cores are grouped in 3-D (26-connected); a
    group whose slices above or below continue into tissue outside the lung over more than
    :data:`CONTACT_MM2` (the liver dome, the heart, hilar vessels) is anatomy and stays out.
    """
    if not mask.any():
        return
    sl = box(mask)
    radius = max(1, int(round(CLOSING_MM / min(spacing[0], spacing[1]))))
    margin = radius + 1
    # Pad with one slice above and below (outside the lung) and a margin in-plane (outside).
    crop = np.pad(mask[sl], ((1, 1), (margin, margin), (margin, margin)))
    closed = disk_2d(disk_2d(crop, radius), radius, erode=True)
    in_plane = np.zeros((3, 3, 3), dtype=bool)
    in_plane[1] = ndimage.generate_binary_structure(2, 1)
    background, count = ndimage.label(~closed, structure=in_plane)
    outside = np.zeros(count + 1, dtype=bool)
    outside[np.concatenate([background[:, 0, :].ravel(), background[:, -1, :].ravel(),
                            background[:, :, 0].ravel(), background[:, :, -1].ravel()])] = True
    outside[0] = True
    holes = ~outside[background] & ~crop
    del background, closed
    # an opening by a CORE_MM square (window offsets as scipy's size-n filters place them)
    windows = [(axis, -(n // 2), n - 1 - n // 2) for axis, n in ((1, _voxels(CORE_MM, spacing[1])), (2, _voxels(CORE_MM, spacing[0])))]
    cores = holes
    for every in (True, False):
        for axis, lo, hi in windows:
            cores = sweep(cores, axis, lo, hi, every=every)
    cores &= holes
    if not cores.any():
        return
    near = box(cores, 1)  # the cores with the slices above and below them
    cores = cores[near]
    beyond = ~(crop[near] | holes[near])  # tissue outside the lung, in this slice
    continues = np.zeros_like(cores)
    continues[1:] |= cores[1:] & beyond[:-1]
    continues[:-1] |= cores[:-1] & beyond[1:]
    groups, count = ndimage.label(cores, structure=np.ones((3, 3, 3), dtype=bool))
    contact_mm2 = np.bincount(groups[continues], minlength=count + 1) * spacing[0] * spacing[1]
    keep = contact_mm2 <= CONTACT_MM2
    keep[0] = False
    added = np.zeros_like(crop)
    added[near] = keep[groups]
    mask[sl] |= added[1:-1, margin:-margin, margin:-margin]


def _voxels(mm: float, spacing: float) -> int:
    return max(1, round(mm / spacing))


def _sides(lungs: list[np.ndarray], labels: np.ndarray, volume: Volume) -> list[int]:
    """Left/right label of each lung part: by LPS x (+x = patient left)."""
    xs = [_centroid_x(lung, volume) for lung in lungs]
    if len(lungs) == 2:
        left = int(np.argmax(xs))
        return [LABEL_LUNG_LEFT if n == left else LABEL_LUNG_RIGHT for n in range(2)]
    # A single lung (the other collapsed or absent): compare with the body's centre.
    centre = _centroid_x(labels > 0, volume) if labels.any() else xs[0] if xs else 0.0
    return [LABEL_LUNG_LEFT if x > centre else LABEL_LUNG_RIGHT for x in xs]


def _centroid_x(mask: np.ndarray, volume: Volume) -> float:
    # Mean index per axis from the mask's projections: far cheaper than a full-volume center_of_mass.
    kji = [float(np.average(np.arange(n), weights=np.count_nonzero(mask, axis=tuple(a for a in range(3) if a != axis))))
           for axis, n in enumerate(mask.shape)]
    return float(volume.index_to_lps(np.array(kji[::-1]))[0])
