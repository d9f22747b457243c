"""Lung parenchyma density: the gravity gradient, smooth regional variation and fine texture.

Measured on the real supine chest CT of ``../shared/data/ct`` with the lung mask of
``bench/phantom_hu.py`` (lung median by height, and the IQR left after / removed by an 8 mm smoothing):

* dependent (posterior) lung is denser: 0.27-0.40 HU per mm from front to back, 40-70 HU in all;
* regional variation a centimetre or two across: IQR 36-40 HU of the 8 mm-smoothed image;
* fine texture (sub-resolution vessels, interlobular septa, noise): IQR 48-55 HU with soft kernels,
  skewed towards dense values (95th centile 170-190 HU above the median, 5th 40-100 HU below).

The regional field is 3-D (a coarse random volume, smoothed, linearly interpolated), so it is the
same tissue from one thin slice to the next; the fine texture comes from a few 2-D fields read
through random windows at knots every :data:`FINE_KNOT_MM` along ``z``, blended in between.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from shared.phantoms.body import BodyModel

REGIONAL_SD = 32.0
"""SD (HU) of the regional variation."""
REGIONAL_MM = 9.0
"""Correlation length (Gaussian sigma, mm) of the regional variation."""
COARSE_MM = 6.0
"""Knot spacing of the coarse volume the regional field is drawn on."""
FINE_SD = 16.0
"""SD (HU) of the symmetric part of the fine texture."""
FINE_MM = 1.8
"""Correlation length (Gaussian sigma, mm) of the fine texture."""
STROKES_PER_CM2 = 0.6
"""Small vessels below the vessel tree's resolution: short bright strokes, per cm2 of a slice,
pointing away from the hilum of their side as peripheral vessels do."""
STROKE_MM = (3.0, 14.0)
"""Range of stroke lengths."""
STROKE_HU = (140.0, 400.0)
"""Range of stroke peak densities above the parenchyma (before the acquisition blur)."""
STROKE_WIDTH_MM = 0.45
"""Gaussian sigma of a stroke's profile (at least 0.6 pixel)."""
FINE_KNOT_MM = 2.5
"""The fine texture changes over this distance along ``z``: a slice blends the fields of the two
knots around it, so thin slices show the same small vessels and lobules one after another."""
FINE_FIELDS = 4
WINDOW_PAD = 48


class LungTexture:
    """Additive lung HU of every slice over the body crop ``(rows, cols)`` of a :class:`BodyModel`."""

    def __init__(self, model: BodyModel, rng: np.random.Generator) -> None:
        g, p = model.grid, model.p
        ny, nx = model.X.shape
        # gravity: denser towards the back, more so in expiration (less air per unit tissue)
        slope = 0.45 - 0.15 * p.inspiration
        self.gravity = (np.float32(slope) * model.Y[:, :1]).astype(np.float32)
        # regional field on coarse knots spanning the crop and the slices (one knot beyond each end)
        dx, dy = g.spacing[0], g.spacing[1]
        extent = (len(g.z) * g.spacing[2], ny * dy, nx * dx)
        knots = tuple(int(np.ceil(e / COARSE_MM)) + 3 for e in extent)
        field = ndi.gaussian_filter(rng.standard_normal(knots).astype(np.float32), REGIONAL_MM / COARSE_MM,
                                    mode="wrap")
        self.coarse = field * np.float32(REGIONAL_SD / max(float(field.std()), 1e-6))
        self.coarse_knot = (g.z - g.z[0]) / COARSE_MM + 1.0
        self.wy = _interpolation_matrix(np.arange(ny) * dy / COARSE_MM + 1.0, knots[1])
        self.wx = _interpolation_matrix(np.arange(nx) * dx / COARSE_MM + 1.0, knots[2]).T.copy()
        # fine texture: a smooth symmetric part plus strokes of small vessels, read through windows
        shape = (FINE_FIELDS, ny + WINDOW_PAD, nx + WINDOW_PAD)
        sigma = max(0.7, FINE_MM / dx)
        smooth = ndi.gaussian_filter(rng.standard_normal(shape).astype(np.float32), (0, sigma, sigma), mode="wrap")
        smooth *= np.float32(FINE_SD / max(float(smooth.std()), 1e-6))
        # hila in field pixels (row, column): beside the midline, a little in front of the spine
        s = p.scale
        row = (p.spine_y - 40.0 * s - model.Y[0, 0]) / dy + WINDOW_PAD / 2
        hila = [(row, (p.mediastinum_x + side * 45.0 * s - model.X[0, 0]) / dx + WINDOW_PAD / 2)
                for side in (-1.0, 1.0)]
        for n in range(FINE_FIELDS):
            smooth[n] += _strokes(shape[1:], dx, hila, rng)
        self.fine = smooth
        self.fine_knot = (g.z - g.z[0]) / FINE_KNOT_MM
        self.windows = rng.integers(0, WINDOW_PAD + 1, size=(int(self.fine_knot[-1]) + 2, 2))

    def offsets(self, k: int) -> np.ndarray:
        """HU to add to lung voxels of slice ``k`` over the crop, ``(rows, cols)`` float32."""
        at = float(self.coarse_knot[k])
        i0 = int(at)
        f = np.float32(at - i0)
        plane = (1 - f) * self.coarse[i0] + f * self.coarse[i0 + 1]
        out = self.wy @ plane @ self.wx
        ny, nx = out.shape
        at = float(self.fine_knot[k])
        n = int(at)
        f = at - n
        norm = np.hypot(1 - f, f)  # keeps the blend's SD that of one field
        for knot, w in ((n, (1 - f) / norm), (n + 1, f / norm)):
            if w > 1e-3:
                sy, sx = self.windows[knot]
                out += np.float32(w) * self.fine[knot % FINE_FIELDS, sy:sy + ny, sx:sx + nx]
        out += self.gravity
        return out


def _strokes(shape: tuple[int, int], pixel_mm: float, hila: list[tuple[float, float]],
             rng: np.random.Generator) -> np.ndarray:
    """Short line segments of :data:`STROKE_HU` peak on a ``shape`` field, each pointing away from
    the nearer of ``hila`` (row, column). Most pixels stay 0, so the lung median keeps its value."""
    count = int(STROKES_PER_CM2 * shape[0] * shape[1] * pixel_mm**2 / 100.0)
    length = rng.uniform(*STROKE_MM, size=count) / pixel_mm
    peak = rng.uniform(*STROKE_HU, size=count)
    start = rng.uniform(0.0, 1.0, size=(count, 2)) * shape
    (r0, c0), (r1, c1) = hila
    left = start[:, 1] > (c0 + c1) / 2
    angle = np.arctan2(start[:, 0] - np.where(left, r1, r0), start[:, 1] - np.where(left, c1, c0))
    angle += rng.normal(0.0, 0.35, size=count)
    step = 0.5
    n = np.maximum(2, np.ceil(length / step).astype(int))
    which = np.repeat(np.arange(count), n)
    t = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
    y = (start[which, 0] + t * step * np.sin(angle[which])).astype(int) % shape[0]
    x = (start[which, 1] + t * step * np.cos(angle[which])).astype(int) % shape[1]
    sigma = max(0.6, STROKE_WIDTH_MM / pixel_mm)
    field = np.zeros(shape, dtype=np.float32)
    np.add.at(field, (y, x), (peak[which] * step * np.sqrt(2 * np.pi) * sigma).astype(np.float32))
    return ndi.gaussian_filter(field, sigma, mode="wrap")


def _interpolation_matrix(positions: np.ndarray, knots: int) -> np.ndarray:
    """``(len(positions), knots)`` weights of linear interpolation at fractional knot ``positions``."""
    w = np.zeros((len(positions), knots), dtype=np.float32)
    i0 = np.clip(np.floor(positions).astype(int), 0, knots - 2)
    f = (positions - i0).astype(np.float32)
    rows = np.arange(len(positions))
    w[rows, i0] = 1 - f
    w[rows, i0 + 1] = f
    return w
