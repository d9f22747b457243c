"""Lung parenchymal pathologies: nodules, mass, consolidation, ground glass, emphysema, atelectasis.

Each painter chooses a place inside one lobe, builds a shape in a bounding box, restricts it to that
lobe (with its vessels and bronchi) and changes HU there. Densities: solid nodules and masses
soft tissue (20-60 HU), ground glass -700 to -450 HU with vessels still visible, consolidation
-50 to +40 HU hiding the vessels but keeping air bronchograms, emphysema below -950 HU,
atelectasis soft tissue that enhances with contrast.
"""

from __future__ import annotations

import numpy as np

from shared.anatomy import BY_LABEL
from shared.phantoms.body import LUNG_LABELS
from shared.phantoms.geometry import Box
from shared.phantoms.pathologies import (
    L_BRONCHI, L_VESSELS, LOWER_LOBES, UPPER_LOBES, PathologyContext, pathology,
)
from shared.phantoms.paint import label_set
from shared.phantoms.tissues import Tissue as T


def _enhancement(ctx: PathologyContext) -> float:
    """Extra HU of enhancing soft tissue in this phantom's contrast phase."""
    return float(ctx.lut[T.MYOCARDIUM] - 45.0) * 0.6


def pick_lung_center(ctx: PathologyContext, *, radius: float, lobes=LUNG_LABELS, peripheral: bool = False,
                     tries: int = 60) -> tuple[np.ndarray, int] | None:
    """A body point whose ``radius`` ball lies (>= 90 %) in one lobe of ``lobes``, and that lobe."""
    g, rng = ctx.grid, ctx.rng
    stride = max(1, int(round(4.0 / min(g.spacing))))
    sub = ctx.labels[::stride, ::stride, ::stride]
    k, j, i = np.nonzero(np.isin(sub, lobes))
    if len(k) == 0:
        return None
    best = None
    for _ in range(tries):
        n = int(rng.integers(len(k)))
        ijk = np.array([i[n], j[n], k[n]]) * stride
        center = np.asarray(g.origin) + ijk * np.asarray(g.spacing)
        lobe = int(ctx.labels[k[n] * stride, j[n] * stride, i[n] * stride])
        if peripheral and _pleural_depth(ctx, center) > radius + 12.0:
            continue
        box = g.box(center - radius, center + radius)
        if box is None:
            continue
        x, y, z = g.coords(box)
        ball = (x - center[0]) ** 2 + (y - center[1]) ** 2 + (z - center[2]) ** 2 <= radius**2
        inside = np.isin(ctx.labels[box], (lobe, L_VESSELS, L_BRONCHI)) & (ctx.lesion_mask[box] == 0)
        frac = np.count_nonzero(ball & inside) / max(1, np.count_nonzero(ball))
        if frac >= 0.9:
            return center, lobe
        if best is None or frac > best[0]:
            best = (frac, center, lobe)
    return (best[1], best[2]) if best is not None and best[0] > 0.5 else None


def _pleural_depth(ctx: PathologyContext, center: np.ndarray) -> float:
    m = ctx.model
    depth = m.pleural_depth(float(center[2]))
    j = int(np.clip(round((center[1] - m.grid.y[m.rows.start]) / m.grid.spacing[1]), 0, depth.shape[0] - 1))
    i = int(np.clip(round((center[0] - m.grid.x[m.cols.start]) / m.grid.spacing[0]), 0, depth.shape[1] - 1))
    return float(depth[j, i])


def blob(ctx: PathologyContext, center: np.ndarray, radius: float, *, lobulation: float = 0.15,
         margin: float = 1.4) -> tuple[Box | None, np.ndarray | None, np.ndarray | None]:
    """An irregular ball: its box, mask and the normalised radius field ``d / r(direction)``."""
    g, rng = ctx.grid, ctx.rng
    reach = radius * (1 + lobulation) * margin
    box = g.box(center - reach, center + reach)
    if box is None:
        return None, None, None
    x, y, z = g.coords(box)
    dx, dy, dz = x - np.float32(center[0]), y - np.float32(center[1]), z - np.float32(center[2])
    d = np.sqrt(dx * dx + dy * dy + dz * dz) + np.float32(1e-3)
    mod = np.ones_like(d)
    for _ in range(4):
        v = rng.normal(size=3)
        v /= np.linalg.norm(v)
        cos = (dx * v[0] + dy * v[1] + dz * v[2]) / d
        mod += np.float32(lobulation * rng.uniform(0.3, 1.0)) * np.cos(
            np.float32(rng.uniform(2.0, 4.0)) * cos * np.pi + np.float32(rng.uniform(0, 2 * np.pi)))
    rho = d / (np.float32(radius) * mod)
    return box, rho <= 1.0, rho


def _in_lobe(ctx: PathologyContext, box: Box, sel: np.ndarray, lobe: int) -> np.ndarray:
    return sel & label_set([lobe, L_VESSELS, L_BRONCHI])[ctx.labels[box]]


def _texture(ctx: PathologyContext, shape: tuple, sd: float) -> np.ndarray:
    return (ctx.rng.standard_normal(shape) * sd).astype(np.float32)


def _nodule(ctx: PathologyContext, kind: str, *, diameter: float, solid_hu: float | None,
            ground_glass_hu: float | None, core_fraction: float = 0.0, spiculated: bool = False,
            lobes=LUNG_LABELS) -> None:
    r = diameter / 2
    place = pick_lung_center(ctx, radius=r, lobes=lobes)
    if place is None:
        return
    center, lobe = place
    box, sel, rho = blob(ctx, center, r, lobulation=0.12 if kind != "mass" else 0.2)
    if box is None:
        return
    sel = _in_lobe(ctx, box, sel, lobe)
    hu = ctx.hu[box]
    if ground_glass_hu is not None:
        hu[sel] = np.maximum(hu[sel], ground_glass_hu + _texture(ctx, hu[sel].shape, 25.0))
    if solid_hu is not None:
        core = sel & (rho <= (core_fraction if ground_glass_hu is not None else 1.0))
        value = solid_hu + _enhancement(ctx)
        hu[core] = value + _texture(ctx, hu[core].shape, 10.0)
        if kind == "mass" and diameter > 50:  # central necrosis
            necrotic = sel & (rho <= 0.35)
            hu[necrotic] = 15.0 + _texture(ctx, hu[necrotic].shape, 8.0)
    if spiculated:
        _spicules(ctx, center, r, lobe, hu_value=solid_hu + _enhancement(ctx), box=box, sel=sel)
    ctx.add(kind, BY_LABEL[lobe].name, box, sel, diameter,
            density_hu=solid_hu if solid_hu is not None else ground_glass_hu,
            solid_core_fraction=core_fraction)


def _spicules(ctx: PathologyContext, center: np.ndarray, r: float, lobe: int, *, hu_value: float,
              box: Box, sel: np.ndarray) -> None:
    """Thin strands radiating from a mass, added to its mask."""
    from shared.phantoms.geometry import segment_distance

    g, rng = ctx.grid, ctx.rng
    for _ in range(int(rng.integers(5, 10))):
        v = rng.normal(size=3)
        v /= np.linalg.norm(v)
        p0 = center + v * r * 0.8
        p1 = center + v * r * rng.uniform(1.2, 1.4)
        dist, _ = segment_distance(g, box, p0, p1)
        spike = _in_lobe(ctx, box, dist <= 0.9, lobe)
        ctx.hu[box][spike] = hu_value
        sel |= spike


@pathology("solid_nodule", "lesion")
def solid_nodule(ctx: PathologyContext, settings: dict) -> None:
    """Solid nodule, 4-28 mm, soft-tissue density."""
    _nodule(ctx, "solid_nodule", diameter=float(ctx.rng.uniform(4.0, 28.0)),
            solid_hu=float(ctx.rng.uniform(25.0, 55.0)), ground_glass_hu=None)


@pathology("part_solid_nodule", "lesion")
def part_solid_nodule(ctx: PathologyContext, settings: dict) -> None:
    """Ground-glass nodule with a solid core of 30-60 % of its diameter."""
    _nodule(ctx, "part_solid_nodule", diameter=float(ctx.rng.uniform(9.0, 30.0)),
            solid_hu=float(ctx.rng.uniform(20.0, 50.0)), ground_glass_hu=float(ctx.rng.uniform(-650, -480)),
            core_fraction=float(ctx.rng.uniform(0.3, 0.6)))


@pathology("ground_glass_nodule", "lesion")
def ground_glass_nodule(ctx: PathologyContext, settings: dict) -> None:
    """Pure ground-glass nodule, 6-30 mm, vessels visible through it."""
    _nodule(ctx, "ground_glass_nodule", diameter=float(ctx.rng.uniform(6.0, 30.0)), solid_hu=None,
            ground_glass_hu=float(ctx.rng.uniform(-700, -480)))


@pathology("mass", "lesion")
def mass(ctx: PathologyContext, settings: dict) -> None:
    """Lung mass over 3 cm, lobulated and spiculated, necrotic centre when large."""
    _nodule(ctx, "mass", diameter=float(ctx.rng.uniform(32.0, 65.0)), solid_hu=float(ctx.rng.uniform(28.0, 45.0)),
            ground_glass_hu=None, spiculated=True)


@pathology("consolidation", "lesion")
def consolidation(ctx: PathologyContext, settings: dict) -> None:
    """Segmental air-space consolidation against the pleura, with air bronchograms."""
    rng = ctx.rng
    r = float(rng.uniform(22.0, 45.0))
    lobes = LOWER_LOBES if rng.uniform() < 0.6 else LUNG_LABELS
    place = pick_lung_center(ctx, radius=r * 0.5, lobes=lobes, peripheral=True)
    if place is None:
        return
    center, lobe = place
    box, sel, _ = blob(ctx, center, r, lobulation=0.25)
    if box is None:
        return
    sel = _in_lobe(ctx, box, sel, lobe)
    keep_air = ctx.tissue[box] == T.AIR
    dense = sel & ~keep_air
    value = float(rng.uniform(-40.0, 40.0)) + _enhancement(ctx)
    hu = ctx.hu[box]
    hu[dense] = value + _texture(ctx, hu[dense].shape, 15.0)
    ctx.add("consolidation", BY_LABEL[lobe].name, box, sel, 2 * r, density_hu=value)


@pathology("ground_glass_opacity", "lesion")
def ground_glass_opacity(ctx: PathologyContext, settings: dict) -> None:
    """COVID-like ground glass: 2-4 peripheral, mostly basal patches (one lesion per patch)."""
    rng = ctx.rng
    level = float(rng.uniform(-720.0, -500.0))
    for _ in range(int(rng.integers(2, 5))):
        r = float(rng.uniform(14.0, 32.0))
        lobes = LOWER_LOBES if rng.uniform() < 0.7 else LUNG_LABELS
        place = pick_lung_center(ctx, radius=r * 0.5, lobes=lobes, peripheral=True)
        if place is None:
            continue
        center, lobe = place
        box, sel, _ = blob(ctx, center, r, lobulation=0.3)
        if box is None:
            continue
        sel = _in_lobe(ctx, box, sel, lobe)
        hu = ctx.hu[box]
        hu[sel] = np.maximum(hu[sel], level + _texture(ctx, hu[sel].shape, 30.0))
        ctx.add("ground_glass_opacity", BY_LABEL[lobe].name, box, sel, 2 * r, density_hu=level,
                pattern="peripheral patchy")


@pathology("emphysema", "lesion")
def emphysema(ctx: PathologyContext, settings: dict) -> None:
    """Centrilobular holes (3-10 mm) or subpleural bullae (2-6 cm) below -950 HU in an upper lobe."""
    rng = ctx.rng
    bullous = bool(rng.uniform() < 0.5)
    place = pick_lung_center(ctx, radius=25.0 if bullous else 30.0, lobes=UPPER_LOBES,
                             peripheral=bullous)
    if place is None:
        return
    center, lobe = place
    g = ctx.grid
    reach = 45.0
    box = g.box(center - reach, center + reach)
    x, y, z = g.coords(box)
    holes = np.zeros(ctx.labels[box].shape, dtype=bool)
    if bullous:
        count, radii = int(rng.integers(1, 4)), (10.0, 28.0)
    else:
        count, radii = int(rng.integers(40, 90)), (1.5, 5.0)
    biggest = 0.0
    for _ in range(count):
        r = float(rng.uniform(*radii))
        c = center + rng.uniform(-1, 1, size=3) * (reach - r) * (0.4 if bullous else 0.8)
        holes |= (x - c[0]) ** 2 + (y - c[1]) ** 2 + (z - c[2]) ** 2 <= r**2
        biggest = max(biggest, 2 * r)
    lung = ctx.labels[box] == lobe
    if not bullous:  # centrilobular: vessels run between the holes
        lung &= ctx.tissue[box] == T.LUNG
    sel = holes & (lung | (bullous & (ctx.labels[box] == L_VESSELS)))
    sel = _in_lobe(ctx, box, sel, lobe)
    hu = ctx.hu[box]
    hu[sel] = float(rng.uniform(-995.0, -975.0)) + _texture(ctx, hu[sel].shape, 5.0)
    ctx.add("emphysema", BY_LABEL[lobe].name, box, sel, biggest,
            subtype="bullous" if bullous else "centrilobular")


@pathology("atelectasis", "lesion")
def atelectasis(ctx: PathologyContext, settings: dict) -> None:
    """Dependent (compressive) atelectasis: a posterior basal band of collapsed lower lobe."""
    rng = ctx.rng
    m = ctx.model
    lobe = int(rng.choice(LOWER_LOBES))
    thickness = float(rng.uniform(8.0, 25.0))
    value = float(rng.uniform(25.0, 45.0)) + 1.5 * _enhancement(ctx)
    g = ctx.grid
    z_top = float(rng.uniform(20.0, 70.0))  # above the right dome
    ks = np.nonzero(g.z <= z_top)[0]
    sel_all = np.zeros(ctx.labels.shape, dtype=bool)
    for k in ks:
        lab = ctx.labels[k, m.rows, m.cols]
        depth = m.pleural_depth(float(g.z[k]))
        band = (lab == lobe) & (depth < thickness) & (m.Y > 0.0)
        sel_all[k, m.rows, m.cols] = band
    k, j, i = np.nonzero(sel_all)
    if len(k) == 0:
        return
    box = (slice(k.min(), k.max() + 1), slice(j.min(), j.max() + 1), slice(i.min(), i.max() + 1))
    sel = sel_all[box] & label_set([lobe, L_VESSELS])[ctx.labels[box]]
    hu = ctx.hu[box]
    hu[sel] = value + _texture(ctx, hu[sel].shape, 12.0)
    ctx.add("atelectasis", BY_LABEL[lobe].name, box, sel, thickness, density_hu=value, pattern="dependent")
