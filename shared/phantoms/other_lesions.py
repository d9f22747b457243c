"""Pleural, cardiac, mediastinal and bone pathologies.

Pleural effusion (dependent, posterior, with a meniscus along the chest wall, 0-35 HU) and
pneumothorax (air along the anterior, non-dependent chest wall and the apex, the lung edge and its
visceral pleura displaced inwards) take their space from the lung before the vessel trees grow, so
no vessel crosses them. Cardiomegaly enlarges the heart (cardiothoracic ratio > 0.5); pericardial
effusion is a 6-20 mm fluid rim inside the pericardium; enlarged lymph nodes (short axis > 10 mm)
sit at the usual mediastinal stations; bone lesions are lytic (soft tissue in the marrow, cortex
breached) or sclerotic (700-1100 HU), in a vertebral body or a rib.
"""

from __future__ import annotations

import numpy as np

from shared.phantoms.anatomy import AnatomyParams
from shared.phantoms.body import LUNG_LABELS
from shared.phantoms.paint import label_set
from shared.phantoms.pathologies import (
    L_BRONCHI, L_HEART, L_MEDIASTINUM, L_PLEURA, L_RIBS, L_VERTEBRAE, L_VESSELS, RIGHT_LOBES,
    PathologyContext, pathology,
)
from shared.phantoms.tissues import Tissue as T

LEFT_LOBES = tuple(lab for lab in LUNG_LABELS if lab not in RIGHT_LOBES)


def _side(ctx: PathologyContext, settings: dict) -> tuple[str, tuple[int, ...]]:
    side = settings.get("side") or str(ctx.rng.choice(["left", "right"]))
    return side, (RIGHT_LOBES if side == "right" else LEFT_LOBES)


def _space(ctx: PathologyContext, kind: str, settings: dict, region) -> None:
    """Turn the lung voxels chosen by ``region(k, lab, side_lung)`` into pleural space."""
    m, g = ctx.model, ctx.grid
    side, lobes = _side(ctx, settings)
    lung_of_side = label_set([*lobes, L_VESSELS, L_BRONCHI])
    tissue_id = T.FLUID if kind == "pleural_effusion" else T.AIR
    sel_all = np.zeros(ctx.labels.shape, dtype=bool)
    widest = 0.0
    for k in range(g.shape[0]):
        lab = ctx.labels[k, m.rows, m.cols]
        lung = lung_of_side[lab] & (lab != L_BRONCHI)
        if not lung.any():
            continue
        space, pleura = region(float(g.z[k]), lab, lung)
        if space is None or not space.any():
            continue
        lab[space] = L_PLEURA
        ctx.tissue[k, m.rows, m.cols][space] = tissue_id
        if pleura is not None:
            ctx.tissue[k, m.rows, m.cols][pleura & lung & ~space] = T.SOFT_TISSUE
        sel_all[k, m.rows, m.cols] = space
        depth = m.pleural_depth(float(g.z[k]))
        widest = max(widest, float(depth[space].max()))
    k, j, i = np.nonzero(sel_all)
    if len(k) == 0:
        return
    box = (slice(k.min(), k.max() + 1), slice(j.min(), j.max() + 1), slice(i.min(), i.max() + 1))
    ctx.add(kind, "pleural_cavity", box, sel_all[box], widest, side=side)


def _prepare_side(anatomy: AnatomyParams, rng: np.random.Generator) -> dict:
    return {"side": str(rng.choice(["left", "right"])), "size": float(rng.uniform(0.0, 1.0))}


@pathology("pleural_effusion", "space", prepare=_prepare_side)
def pleural_effusion(ctx: PathologyContext, settings: dict) -> None:
    """Dependent fluid: below a horizontal level in the posterior hemithorax, with a meniscus."""
    m = ctx.model
    depth_mm = 15.0 + 55.0 * settings["size"]
    top = m.p.lung_height * (0.35 + 0.35 * settings["size"])

    def region(z: float, lab: np.ndarray, lung: np.ndarray):
        if z > top:
            return None, None
        back = float(m.Y[lung].max())
        level = back - depth_mm * min(1.0, (top - z) / (0.5 * top) + 0.25)
        pd = m.pleural_depth(z)
        meniscus = 6.0 * np.exp(-np.clip(level - m.Y, 0, None) / 35.0)
        return lung & ((m.Y > level) | (pd < meniscus)), None

    _space(ctx, "pleural_effusion", settings, region)


@pathology("pneumothorax", "space", prepare=_prepare_side)
def pneumothorax(ctx: PathologyContext, settings: dict) -> None:
    """Air along the anterior chest wall and the apex; the lung edge with its pleura pushed in."""
    m = ctx.model
    rim = 8.0 + 30.0 * settings["size"]

    def region(z: float, lab: np.ndarray, lung: np.ndarray):
        front = float(m.Y[lung].min())
        pd = m.pleural_depth(z)
        share = np.clip((0.15 * m.p.body_anterior - m.Y) / max(1.0, 0.15 * m.p.body_anterior - front), 0, 1)
        apex = np.clip((z - 0.8 * m.height) / (0.2 * m.height), 0, 1)
        thickness = rim * np.maximum(share ** 0.7, 0.5 * apex)
        space = lung & (pd < thickness)
        pleura = (pd >= thickness) & (pd < thickness + 1.2) & (thickness > 1.0)
        return space, pleura

    _space(ctx, "pneumothorax", settings, region)


def _prepare_cardiomegaly(anatomy: AnatomyParams, rng: np.random.Generator) -> dict:
    anatomy.cardiomegaly = True
    return {}


@pathology("cardiomegaly", "anatomy", prepare=_prepare_cardiomegaly)
def cardiomegaly(ctx: PathologyContext, settings: dict) -> None:
    """The heart drawn 30 % larger; size = transverse diameter, with the cardiothoracic ratio."""
    heart = ctx.labels == L_HEART
    k, j, i = np.nonzero(heart)
    if len(k) == 0:
        return
    box = (slice(k.min(), k.max() + 1), slice(j.min(), j.max() + 1), slice(i.min(), i.max() + 1))
    sel = heart[box] & (ctx.tissue[box] != T.FLUID)
    widths = sel.any(axis=1).sum(axis=1) * ctx.grid.spacing[0]
    kk = int(np.argmax(widths)) + box[0].start
    thorax = np.nonzero(((ctx.labels[kk] > 0) & (ctx.labels[kk] <= L_PLEURA)).any(axis=0))[0]
    ratio = float(widths.max() / max(1.0, (thorax.max() - thorax.min()) * ctx.grid.spacing[0])) if len(thorax) else 0.0
    ctx.add("cardiomegaly", "heart", box, sel, float(widths.max()), cardiothoracic_ratio=round(ratio, 3))


def _prepare_pericardial(anatomy: AnatomyParams, rng: np.random.Generator) -> dict:
    anatomy.pericardial_effusion_mm = float(rng.uniform(6.0, 20.0))
    return {"thickness_mm": anatomy.pericardial_effusion_mm}


@pathology("pericardial_effusion", "anatomy", prepare=_prepare_pericardial)
def pericardial_effusion(ctx: PathologyContext, settings: dict) -> None:
    """Fluid between the epicardial fat and the pericardium (drawn with the heart)."""
    fluid = (ctx.labels == L_HEART) & (ctx.tissue == T.FLUID)
    k, j, i = np.nonzero(fluid)
    if len(k) == 0:
        return
    box = (slice(k.min(), k.max() + 1), slice(j.min(), j.max() + 1), slice(i.min(), i.max() + 1))
    ctx.add("pericardial_effusion", "heart", box, fluid[box], settings["thickness_mm"])


@pathology("lymphadenopathy", "lesion")
def lymphadenopathy(ctx: PathologyContext, settings: dict) -> None:
    """An enlarged mediastinal lymph node (short axis 11-25 mm) at a common station."""
    rng, m, g = ctx.rng, ctx.model, ctx.grid
    p = m.p
    s, xm, zc = p.scale, p.mediastinum_x, p.carina_z
    y_tr = p.spine_y - m.vb_radii[1] - 16.0 * s - p.trachea_radius
    stations = {
        "subcarinal": [xm, y_tr + 14 * s, zc - 24 * s],
        "right_paratracheal": [xm - p.trachea_radius - 12 * s, y_tr - 6 * s, zc + 18 * s],
        "aortopulmonary": [xm + 24 * s, y_tr - 14 * s, zc + 4 * s],
        "right_hilar": [xm - 40 * s, y_tr - 2 * s, zc - 30 * s],
        "left_hilar": [xm + 42 * s, y_tr + 4 * s, zc - 30 * s],
    }
    order = list(stations)
    rng.shuffle(order)
    short = float(rng.uniform(11.0, 25.0))
    radii = np.array([short / 2, short / 2 * 1.15, short / 2 * 1.4])
    allowed = label_set([L_MEDIASTINUM, *LUNG_LABELS])
    value = float(rng.uniform(30.0, 45.0)) + float(ctx.lut[T.MYOCARDIUM] - 45.0) * 0.5
    for name in order:
        c = np.asarray(stations[name], dtype=np.float64)
        box = g.box(c - radii.max(), c + radii.max())
        if box is None:
            continue
        x, y, z = g.coords(box)
        ell = ((x - c[0]) / radii[0]) ** 2 + ((y - c[1]) / radii[1]) ** 2 + ((z - c[2]) / radii[2]) ** 2 <= 1
        sel = ell & allowed[ctx.labels[box]]
        if np.count_nonzero(sel) < 0.6 * np.count_nonzero(ell):
            continue
        ctx.labels[box][sel] = L_MEDIASTINUM
        hu = ctx.hu[box]
        hu[sel] = value + (rng.standard_normal(hu[sel].shape) * 8).astype(np.float32)
        ctx.add("lymphadenopathy", "mediastinum", box, sel, 2 * radii.max(), station=name,
                short_axis_mm=round(short, 1))
        return


@pathology("bone_lesion", "lesion")
def bone_lesion(ctx: PathologyContext, settings: dict) -> None:
    """Lytic or sclerotic lesion in a thoracic vertebral body or a rib."""
    rng, m, g = ctx.rng, ctx.model, ctx.grid
    lytic = bool(rng.uniform() < 0.6)
    in_spine = bool(rng.uniform() < 0.75)
    organ_label = L_VERTEBRAE if in_spine else L_RIBS
    r = float(rng.uniform(5.0, 12.0) if in_spine else rng.uniform(4.0, 7.0))
    stride = 2
    sub = ctx.labels[::stride, ::stride, ::stride] == organ_label
    if in_spine:  # vertebral bodies only, not the posterior elements
        ys = m.p.spine_y
        rows = np.abs(g.y[::stride] - ys) < 0.6 * m.vb_radii[1]
        sub &= rows[None, :, None]
    k, j, i = np.nonzero(sub)
    if len(k) == 0:
        return
    n = int(rng.integers(len(k)))
    c = np.asarray(g.origin) + np.array([i[n], j[n], k[n]]) * stride * np.asarray(g.spacing)
    box = g.box(c - r, c + r)
    x, y, z = g.coords(box)
    ball = (x - c[0]) ** 2 + (y - c[1]) ** 2 + (z - c[2]) ** 2 <= r**2
    sel = ball & (ctx.labels[box] == organ_label)
    hu = ctx.hu[box]
    value = float(rng.uniform(20.0, 60.0)) if lytic else float(rng.uniform(700.0, 1100.0))
    hu[sel] = value + (rng.standard_normal(hu[sel].shape) * 10).astype(np.float32)
    ctx.add("bone_lesion", "vertebrae" if in_spine else "ribs", box, sel, 2 * r,
            subtype="lytic" if lytic else "sclerotic", density_hu=value)
