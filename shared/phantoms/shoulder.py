"""Shoulder girdle: scapulae on the posterolateral chest wall, clavicles over the thoracic inlet.

Both lie outside the rib cage and show on every chest CT. A scapula is a thin plate between the
infraspinatus behind and the subscapularis and serratus in front, from its superior border near the
lung apex down to its inferior angle at about the 7th rib; it narrows towards that angle, its
lateral border is thick, and its spine crosses the upper part. The muscles around it widen the
posterolateral chest wall. A clavicle runs from the upper corner of the manubrium laterally, a
little upwards and backwards, under the skin.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from shared.anatomy import label_of
from shared.phantoms.bone import bone_tissue
from shared.phantoms.geometry import capsule_box, smooth_polyline
from shared.phantoms.paint import label_set

if TYPE_CHECKING:
    from shared.phantoms.anatomy import AnatomyParams
    from shared.phantoms.body import BodyModel

L_SCAPULA = {-1: label_of("scapula_right"), 1: label_of("scapula_left")}
L_CLAVICLE = {-1: label_of("clavicula_right"), 1: label_of("clavicula_left")}
L_SOFT = label_set([label_of("subcutaneous_fat"), label_of("skeletal_muscle"), label_of("body")])

PHI_MEDIAL = 0.55
"""Medial border: angle (rad) from the posterior midline, seen from the outline's centre."""
PHI_LATERAL = 1.45
"""Lateral border at the top of the blade (the inferior angle is a point)."""
BULGE_PHI = (0.45, 1.8)
"""Angles over which the scapular muscles bulge the outline."""
BULGE_MM = 14.0
"""Greatest outward push of the skin by those muscles."""


@dataclass
class ScapulaLayout:
    """Where the scapulae lie in a phantom's body crop."""

    bulge: np.ndarray
    """Extra muscle (mm) over the blades, at full height (see :meth:`weight`)."""
    rows: slice
    """Crop rows that can hold a scapula."""
    z_inferior: float
    z_superior: float
    scale: float

    def weight(self, z: float) -> float:
        """Share of :attr:`bulge` present at height ``z``: none below the inferior angle."""
        return float(np.interp(z, [self.z_inferior - 15.0, self.z_inferior + 25.0], [0.0, 1.0]))


def scapula_layout(p: AnatomyParams, Y: np.ndarray, phi: np.ndarray) -> ScapulaLayout:
    """Precompute the scapular bulge and rows on a crop with body ``Y`` (mm) and angles ``phi``."""
    s = p.scale
    lo, hi = BULGE_PHI
    inside = (phi > lo) & (phi < hi)
    bulge = np.where(inside, np.sin(np.pi * (phi - lo) / (hi - lo)) ** 2, 0.0) * BULGE_MM * s
    rows = np.nonzero(((phi > PHI_MEDIAL - 0.1) & (phi < hi)).any(axis=1))[0]
    row_slice = slice(int(rows[0]), int(rows[-1]) + 1) if len(rows) else slice(0, 0)
    return ScapulaLayout(bulge=bulge.astype(np.float32), rows=row_slice,
                         z_inferior=p.lung_height - 150.0 * s, z_superior=p.lung_height + 8.0, scale=s)


def draw_scapulae(m: BodyModel, z: float, d: np.ndarray, t_fat: np.ndarray, t_muscle: np.ndarray,
                  lab: np.ndarray, tis: np.ndarray) -> None:
    """Paint both scapulae into one slice's crop (``d``: depth below the skin; layer depths)."""
    layout = m.scapula
    v = (z - layout.z_inferior) / (layout.z_superior - layout.z_inferior)
    if not 0.0 < v < 1.0:
        return
    s = layout.scale
    rs = layout.rows
    phi, r, dd = m.phi[rs], m.r[rs], d[rs]
    lateral = PHI_MEDIAL + (PHI_LATERAL - PHI_MEDIAL) * np.sqrt(v)
    width = lateral - PHI_MEDIAL
    fat, muscle = t_fat[rs], t_muscle[rs]
    # the blade leaves the ribs laterally: more subscapularis in front, less infraspinatus behind
    centre = fat + np.interp(phi, [PHI_MEDIAL, lateral], [0.5, 0.28]) * (muscle - fat)
    half = np.where(phi > lateral - 0.2 * width, 4.0 * s, np.where(phi < PHI_MEDIAL + 0.05, 2.5 * s, 1.5 * s))
    across = np.minimum((phi - PHI_MEDIAL) * r, (lateral - phi) * r)
    in_plane = np.minimum(half - np.abs(dd - centre), across)
    if 0.68 < v < 0.84:  # the spine: a ridge from the blade towards the skin, moving laterally upwards
        ridge = PHI_MEDIAL + (0.2 + 3.5 * (v - 0.68)) * width
        spine = np.minimum(np.minimum(0.06 - np.abs(phi - ridge), 0.06) * r,
                           np.minimum(dd - fat - 2.0, centre + half - dd))
        in_plane = np.maximum(in_plane, spine)
    sel = (in_plane > 0) & L_SOFT[lab[rs]]
    if not sel.any():
        return
    side = np.where(m.right[rs], -1, 1)
    bone = bone_tissue(m.grid, in_plane[sel], np.inf)
    sub_lab, sub_tis = lab[rs], tis[rs]
    sub_lab[sel] = np.where(side[sel] < 0, L_SCAPULA[-1], L_SCAPULA[1])
    sub_tis[sel] = bone


def draw_clavicles(m: BodyModel, labels: np.ndarray, tissue: np.ndarray) -> None:
    """Paint both clavicles (``labels``/``tissue`` ``(nz, ny, nx)``) as tubes under the skin."""
    p = m.p
    s = p.scale
    notch = m.sternum_range[1]
    for side in (-1, 1):
        points = []
        for share, rise, back in ((0.0, 3.0, 0.0), (0.45, 12.0, 2.0), (0.8, 22.0, 14.0)):
            z = notch + rise * s
            a, b, _ = m.semi_axes(z)
            x = p.mediastinum_x * 0.3 + side * (28.0 * s + share * (0.85 * a - 28.0 * s))
            skin_y = -b * np.sqrt(max(1.0 - (x / a) ** 2, 0.05))
            depth = p.skin_mm + 0.6 * p.fat_mm + 9.0 * s + back * s
            points.append([x, skin_y + depth, z])
        path = smooth_polyline(np.array(points), 3.0)
        radii = np.linspace(7.0, 5.0, len(path)) * s
        _paint_bone_tube(m, labels, tissue, path, radii, L_CLAVICLE[side])


def _paint_bone_tube(m: BodyModel, labels: np.ndarray, tissue: np.ndarray, path: np.ndarray,
                     radii: np.ndarray, label: int) -> None:
    """A bone tube along ``path`` ``(n, 3)``: each voxel takes the deepest position any segment
    gives it, so overlapping segments leave no internal surfaces."""
    g = m.grid
    lo = path.min(axis=0) - radii.max()
    hi = path.max(axis=0) + radii.max()
    box = g.box(lo, hi)
    if box is None:
        return
    shape = tuple(sl.stop - sl.start for sl in box)
    best = np.full(shape, -np.inf, dtype=np.float32)
    in_plane = np.zeros(shape, dtype=np.float32)
    along_z = np.zeros(shape, dtype=np.float32)
    half_px, half_z = g.spacing[0] / 2, g.spacing[2] / 2
    for i in range(len(path) - 1):
        p0, p1, r = path[i], path[i + 1], float(max(radii[i], radii[i + 1]))
        seg = capsule_box(g, p0, p1, r)
        if seg is None:
            continue
        x, y, z = g.coords(seg)
        d = (p1 - p0).astype(np.float32)
        t = ((x - p0[0]) * d[0] + (y - p0[1]) * d[1] + (z - p0[2]) * d[2]) / np.float32(max(d @ d, 1e-9))
        t = np.clip(t, 0.0, 1.0)
        ox, oy, oz = x - (p0[0] + t * d[0]), y - (p0[1] + t * d[1]), np.abs(z - (p0[2] + t * d[2]))
        h = np.sqrt(ox * ox + oy * oy)
        ip = np.sqrt(np.maximum(r * r - oz * oz, 0.0)) - h
        az = np.sqrt(np.maximum(r * r - h * h, 0.0)) - oz
        score = np.where((ip > 0) & (az > 0), np.minimum(ip / half_px, az / half_z), -np.inf)
        local = tuple(slice(a.start - b.start, a.stop - b.start) for a, b in zip(seg, box))
        better = score > best[local]
        best[local] = np.where(better, score, best[local])
        in_plane[local] = np.where(better, ip, in_plane[local])
        along_z[local] = np.where(better, az, along_z[local])
    lab = labels[box]
    sel = np.isfinite(best) & L_SOFT[lab]
    lab[sel] = label
    tissue[box][sel] = bone_tissue(g, in_plane[sel], along_z[sel])
