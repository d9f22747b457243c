"""Heart, great vessels, esophagus and central airways, painted as ellipsoids and tubes.

Positions are set relative to the carina, the spine and the heart centre of :class:`AnatomyParams`;
the paths are Catmull-Rom splines through control points. Returns the hilar points where the lobar
vessel and airway trees (vessels.py) start.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from shared.anatomy import label_of
from shared.phantoms.body import LUNG_LABELS, BodyModel
from shared.phantoms.geometry import Grid, rotation_towards, smooth_polyline
from shared.phantoms.paint import label_set, paint_mask, paint_tube
from shared.phantoms.tissues import Tissue as T

L_HEART, L_AORTA, L_PA = label_of("heart"), label_of("aorta"), label_of("pulmonary_artery")
L_SVC, L_ESOPHAGUS, L_TRACHEA = label_of("superior_vena_cava"), label_of("esophagus"), label_of("trachea")
L_BRONCHI, L_VESSELS, L_MEDIASTINUM = label_of("bronchi"), label_of("lung_vessels"), label_of("mediastinum")
L_BODY, L_MUSCLE, L_LIVER = label_of("body"), label_of("skeletal_muscle"), label_of("liver")
L_FAT = label_of("subcutaneous_fat")

SOFT = label_set([*LUNG_LABELS, L_MEDIASTINUM, L_VESSELS, L_BRONCHI])
"""Labels a mediastinal structure may push aside: lung and mediastinal fat."""
VESSEL_ROUTE = label_set([*LUNG_LABELS, L_MEDIASTINUM, L_VESSELS, L_BRONCHI, L_BODY, L_MUSCLE,
                          L_LIVER, L_FAT])


@dataclass
class Chamber:
    """One heart chamber: an ellipsoid cavity inside a wall."""

    center: np.ndarray
    radii: np.ndarray
    rotation: np.ndarray
    wall: float
    blood: T


@dataclass
class Hilum:
    """Where each lobe's bronchus, artery and vein enter it (body mm), keyed by lobe label."""

    bronchus: dict[int, np.ndarray] = field(default_factory=dict)
    artery: dict[int, np.ndarray] = field(default_factory=dict)
    vein: dict[int, np.ndarray] = field(default_factory=dict)
    bronchus_radius: dict[int, float] = field(default_factory=dict)


def draw_mediastinum(m: BodyModel, labels: np.ndarray, tissue: np.ndarray) -> Hilum:
    """Paint heart, great vessels, esophagus and central airways; return the hilar tree roots."""
    g, p = m.grid, m.p
    s = p.scale
    xm, zc = p.mediastinum_x, p.carina_z
    top, bottom = p.scan_top + 20.0, p.scan_bottom - 20.0
    y_vb_front = p.spine_y - m.vb_radii[1]
    y_es = y_vb_front - 9.0 * s
    r_tr = p.trachea_radius
    y_tr = y_es - 7.0 * s - r_tr
    ra, rd = p.ascending_aorta_radius, p.descending_aorta_radius
    chambers = _chambers(m)
    _, lv, rv, la, ra_ch = chambers

    x_desc = xm + m.vb_radii[0] * 0.8 + rd * 0.55
    y_desc = y_vb_front + m.vb_radii[1] * 0.3 - rd * 0.5
    aorta = smooth_polyline(np.array([
        lv.center + rotation_unit(lv, -1.0) * lv.radii[0] * 0.9 + [0, 0, 8 * s],
        [xm - 10 * s, y_tr - 38 * s, zc - 5 * s],
        [xm - 6 * s, y_tr - 30 * s, zc + 22 * s],
        [xm + 8 * s, y_tr - 20 * s, zc + 34 * s],
        [xm + r_tr + 0.9 * ra + 4 * s, y_tr + 4 * s, zc + 24 * s],
        [x_desc, y_desc, zc - 10 * s],
        [x_desc - 2 * s, y_desc, 0.0],
        [xm + 2 * s, y_desc - 4 * s, bottom],
    ]), 3.0)
    n = len(aorta)
    arch_end = int(0.55 * n)
    aorta_r = np.concatenate([np.linspace(ra, ra * 0.85, arch_end), np.linspace(rd, rd * 0.9, n - arch_end)])
    arch_top = aorta[np.argmax(aorta[:, 2])]
    branches = [
        (arch_top + [-8 * s, -4 * s, 0], [xm - 14 * s, y_tr - 22 * s, top], 6.0 * s),
        (arch_top + [2 * s, 0, 0], [xm + 8 * s, y_tr - 16 * s, top], 4.0 * s),
        (arch_top + [10 * s, 6 * s, -3 * s], [xm + 22 * s, y_tr - 2 * s, top], 5.0 * s),
    ]
    bif = np.array([xm + 10 * s, y_tr - 24 * s, zc - 14 * s])
    trunk = smooth_polyline(np.array([
        rv.center + [12 * s, -14 * s, 22 * s], [xm + 22 * s, y_tr - 40 * s, zc - 30 * s], bif,
    ]), 3.0)
    rpa = smooth_polyline(np.array([bif, [xm - 14 * s, y_tr - 14 * s, zc - 18 * s],
                                    [xm - 42 * s, y_tr - 8 * s, zc - 26 * s]]), 3.0)
    lpa = smooth_polyline(np.array([bif, [xm + 32 * s, y_tr - 12 * s, zc - 6 * s],
                                    [xm + 46 * s, y_tr + 6 * s, zc - 20 * s]]), 3.0)
    svc = smooth_polyline(np.array([[xm - 32 * s, y_tr - 24 * s, top], [xm - 30 * s, y_tr - 26 * s, zc],
                                    ra_ch.center + [4 * s, 0, ra_ch.radii[2] * 0.6]]), 3.0)
    bcv = smooth_polyline(np.array([[xm + 40 * s, y_tr - 30 * s, top], [xm + 25 * s, y_tr - 34 * s, zc + 48 * s],
                                    [xm - 28 * s, y_tr - 26 * s, zc + 30 * s]]), 3.0)
    ivc = smooth_polyline(np.array([ra_ch.center + [6 * s, 8 * s, -ra_ch.radii[2] * 0.6],
                                    [xm - 22 * s, y_vb_front - 18 * s, -20.0],
                                    [xm - 24 * s, y_vb_front - 14 * s, bottom]]), 3.0)
    gej = m.stomach_center + np.array([-25.0, -12.0, 30.0]) * s
    esophagus = smooth_polyline(np.array([[xm + 2 * s, y_es, top], [xm + 5 * s, y_es, zc],
                                          [xm + 10 * s, y_es - 6 * s, 20.0], gej]), 3.0)
    carina = np.array([xm - 2 * s, y_tr + 2 * s, zc])
    trachea = np.array([[xm - 2 * s, y_tr, top], [xm - 3 * s, y_tr, zc + 40 * s], carina])

    # Airway tree down to the lobar bronchi: (start, end, radius, lobe the end feeds or None).
    r_main = 0.72 * r_tr
    rmb_end = carina + np.array([-24, 5, -20]) * s
    lmb_end = carina + np.array([34, 9, -34]) * s
    bi_end = rmb_end + np.array([-8, 8, -26]) * s
    L = {name: label_of(name) for name in ("lung_upper_lobe_left", "lung_lower_lobe_left",
                                            "lung_upper_lobe_right", "lung_middle_lobe_right",
                                            "lung_lower_lobe_right")}
    airways = [
        (carina, rmb_end, r_main, None),
        (carina, lmb_end, r_main * 0.9, None),
        (rmb_end, bi_end, r_main * 0.8, None),
        (rmb_end, rmb_end + np.array([-18, -2, 10]) * s, r_main * 0.65, L["lung_upper_lobe_right"]),
        (bi_end, bi_end + np.array([-10, -22, -14]) * s, r_main * 0.55, L["lung_middle_lobe_right"]),
        (bi_end, bi_end + np.array([-8, 12, -20]) * s, r_main * 0.7, L["lung_lower_lobe_right"]),
        (lmb_end, lmb_end + np.array([14, -12, 10]) * s, r_main * 0.65, L["lung_upper_lobe_left"]),
        (lmb_end, lmb_end + np.array([12, 14, -20]) * s, r_main * 0.7, L["lung_lower_lobe_left"]),
    ]
    hilum = Hilum()
    lateral = {lab: (-1.0 if lab in (L["lung_upper_lobe_right"], L["lung_middle_lobe_right"],
                                      L["lung_lower_lobe_right"]) else 1.0) for lab in L.values()}
    right_pa_end, left_pa_end = rpa[-1], lpa[-1]
    la_c = la.center
    for start, end, radius, lobe in airways:
        if lobe is None:
            continue
        hilum.bronchus[lobe] = end
        hilum.bronchus_radius[lobe] = radius
        side = lateral[lobe]
        hilum.artery[lobe] = end + np.array([side * 6, -9, 4]) * s
        hilum.vein[lobe] = end + np.array([side * 2, -4, -16]) * s
    artery_links = [(right_pa_end if lateral[lobe] < 0 else left_pa_end, a, 6.0 * s)
                    for lobe, a in hilum.artery.items()]
    vein_links = [(la_c + np.array([np.sign(v[0] - la_c[0]) * la.radii[0] * 0.8, 0, 0]), v, 5.5 * s)
                  for v in hilum.vein.values()]

    # 1. mediastinal fat around the great vessels and airways
    envelope = [(aorta, aorta_r + 5.0), (trunk, p.pulmonary_trunk_radius + 4.0), (svc, 13.0 * s),
                (esophagus, 12.0 * s), (trachea, r_tr + 4.0), (bcv, 9.0 * s)]
    envelope += [(np.array([a, b]), r + 3.0) for a, b, r in branches]
    for path, radius in envelope:
        paint_tube(g, labels, tissue, path, radius, label=L_MEDIASTINUM, tissue_id=T.FAT,
                   replace=label_set([*LUNG_LABELS, L_MEDIASTINUM]))
    # 2. heart
    _draw_heart(m, chambers, labels, tissue)
    # 3. vessels
    blood = {T.BLOOD_LEFT: T.BLOOD_LEFT, T.BLOOD_RIGHT: T.BLOOD_RIGHT}
    paint_tube(g, labels, tissue, aorta, aorta_r, label=L_AORTA, tissue_id=blood[T.BLOOD_LEFT],
               replace=VESSEL_ROUTE)
    for a, b, r in branches:
        paint_tube(g, labels, tissue, np.array([a, b]), r, label=L_MEDIASTINUM,
                   tissue_id=T.BLOOD_LEFT, replace=VESSEL_ROUTE)
    r_pt = p.pulmonary_trunk_radius
    paint_tube(g, labels, tissue, trunk, r_pt, label=L_PA, tissue_id=T.BLOOD_RIGHT, replace=VESSEL_ROUTE)
    for path in (rpa, lpa):
        paint_tube(g, labels, tissue, path, np.linspace(0.75 * r_pt, 0.6 * r_pt, len(path)),
                   label=L_PA, tissue_id=T.BLOOD_RIGHT, replace=VESSEL_ROUTE)
    paint_tube(g, labels, tissue, svc, 9.0 * s, label=L_SVC, tissue_id=T.BLOOD_RIGHT, replace=VESSEL_ROUTE)
    paint_tube(g, labels, tissue, bcv, 5.5 * s, label=L_MEDIASTINUM, tissue_id=T.BLOOD_RIGHT,
               replace=VESSEL_ROUTE)
    paint_tube(g, labels, tissue, ivc, 11.0 * s, label=L_BODY, tissue_id=T.BLOOD_RIGHT, replace=VESSEL_ROUTE)
    for a, b, r in artery_links:
        paint_tube(g, labels, tissue, np.array([a, b]), r, label=L_VESSELS, tissue_id=T.BLOOD_RIGHT,
                   replace=SOFT)
    for a, b, r in vein_links:
        paint_tube(g, labels, tissue, np.array([a, b]), r, label=L_VESSELS, tissue_id=T.BLOOD_LEFT,
                   replace=SOFT)
    _fill_between(m, labels, tissue)
    # 4. esophagus (collapsed, a little air in the lumen)
    paint_tube(g, labels, tissue, esophagus, 7.5 * s, label=L_ESOPHAGUS, tissue_id=T.SOFT_TISSUE,
               replace=VESSEL_ROUTE)
    paint_tube(g, labels, tissue, esophagus[: len(esophagus) * 2 // 3], 1.5, label=None,
               tissue_id=T.AIR, replace=label_set([L_ESOPHAGUS]))
    # 5. airways: walls first, then lumens, so branches open into their parents
    airway_replace = label_set([*LUNG_LABELS, L_MEDIASTINUM, L_VESSELS, L_BRONCHI, L_TRACHEA, L_BODY,
                                L_PA, L_MUSCLE])
    paint_tube(g, labels, tissue, trachea, r_tr + 1.8, label=L_TRACHEA, tissue_id=T.AIRWAY_WALL,
               replace=airway_replace)
    for a, b, r, _ in airways:
        paint_tube(g, labels, tissue, np.array([a, b]), r + 1.5, label=L_BRONCHI,
                   tissue_id=T.AIRWAY_WALL, replace=airway_replace)
    paint_tube(g, labels, tissue, trachea, r_tr, label=L_TRACHEA, tissue_id=T.AIR,
               replace=label_set([L_TRACHEA, L_BRONCHI]))
    for a, b, r, _ in airways:
        paint_tube(g, labels, tissue, np.array([a, b]), r, label=L_BRONCHI, tissue_id=T.AIR,
                   replace=label_set([L_TRACHEA, L_BRONCHI]))
    return hilum


def _fill_between(m: BodyModel, labels: np.ndarray, tissue: np.ndarray) -> None:
    """Mediastinal fat between the structures: each row of a slice is filled from its leftmost
    to its rightmost mediastinal voxel, so the mediastinum is one piece, as in a real chest."""
    seeds = label_set([L_MEDIASTINUM, L_TRACHEA, L_HEART, L_AORTA, L_PA, L_ESOPHAGUS, L_SVC])
    lobes = label_set(LUNG_LABELS)
    columns = np.arange(m.cols.stop - m.cols.start)
    for k in range(labels.shape[0]):
        lab = labels[k, m.rows, m.cols]
        seed = seeds[lab]
        has = seed.any(axis=1)
        if not has.any():
            continue
        first = seed.argmax(axis=1)
        last = seed.shape[1] - 1 - seed[:, ::-1].argmax(axis=1)
        fill = has[:, None] & (columns >= first[:, None]) & (columns <= last[:, None]) & lobes[lab]
        lab[fill] = L_MEDIASTINUM
        tissue[k, m.rows, m.cols][fill] = T.FAT


def rotation_unit(ch: Chamber, sign: float) -> np.ndarray:
    """Unit vector along a chamber's long axis (towards the apex for ``sign=+1``)."""
    return sign * ch.rotation[0]


def _chambers(m: BodyModel) -> list[Chamber]:
    """Whole-heart myocardial bulk, LV, RV, LA, RA (cardiomegaly enlarges them all)."""
    p = m.p
    h = p.heart_scale * (1.3 if p.cardiomegaly else 1.0)
    c = np.asarray(p.heart_center, dtype=np.float64)
    yaw = np.deg2rad(p.heart_yaw_deg)
    axis = np.array([np.cos(yaw), -np.sin(yaw), -0.45])
    rot = rotation_towards(axis, roll=0.3)
    upright = np.eye(3)
    return [
        Chamber(c + np.array([0, -4, 0]) * h, np.array([52, 40, 36]) * h, rot, 1e3, T.MYOCARDIUM),
        Chamber(c + np.array([14, 8, -4]) * h, np.array([46, 23, 24]) * h, rot, 10.0 * h ** 0.5,
                T.BLOOD_LEFT),
        Chamber(c + np.array([-8, -20, -4]) * h, np.array([42, 17, 30]) * h, rot, 4.0, T.BLOOD_RIGHT),
        Chamber(c + np.array([-4, 38, 26]) * h, np.array([32, 17, 20]) * h, upright, 2.5, T.BLOOD_LEFT),
        Chamber(c + np.array([-46, 2, 14]) * h, np.array([24, 26, 30]) * h, upright, 2.5, T.BLOOD_RIGHT),
    ]


def heart_chambers(m: BodyModel) -> list[Chamber]:
    """The chambers :func:`draw_mediastinum` draws (for pathologies that need the heart's place)."""
    return _chambers(m)


def _draw_heart(m: BodyModel, chambers: list[Chamber], labels: np.ndarray, tissue: np.ndarray) -> None:
    g, p = m.grid, m.p
    fat, sac = 4.0, 1.5
    eff = p.pericardial_effusion_mm
    reach = fat + eff + sac
    boxes, dists = [], []
    for ch in chambers:
        lo = ch.center - ch.radii.max() - reach - 1
        hi = ch.center + ch.radii.max() + reach + 1
        box = g.box(lo, hi)
        boxes.append(box)
        dists.append(None if box is None else _radial_distance(g, box, ch))
    above_or_heart = label_set([*LUNG_LABELS, L_MEDIASTINUM, L_VESSELS, L_BRONCHI, L_BODY, L_HEART])
    layers = [(reach, L_HEART, T.SOFT_TISSUE), (fat + eff, L_HEART, T.FLUID), (fat, L_MEDIASTINUM, T.FAT),
              (0.0, L_HEART, T.MYOCARDIUM)]
    for offset, lab, tis in layers:
        if tis == T.FLUID and eff <= 0:
            continue
        replace = above_or_heart if offset > 0 else label_set([L_HEART, L_MEDIASTINUM])
        for box, d in zip(boxes, dists):
            if box is None:
                continue
            sel = (d <= offset) & m.above_diaphragm(box)
            paint_mask(labels, tissue, box, sel, label=lab, tissue_id=tis, replace=replace)
    heart = label_set([L_HEART])
    order = [2, 4, 3]  # RV, RA, LA cavities, then the LV wall and cavity on top (septum intact)
    for i in order:
        if boxes[i] is not None:
            paint_mask(labels, tissue, boxes[i], dists[i] <= -chambers[i].wall, label=L_HEART,
                       tissue_id=chambers[i].blood, replace=heart)
    if boxes[1] is not None:
        d = dists[1]
        paint_mask(labels, tissue, boxes[1], d <= 0, label=L_HEART, tissue_id=T.MYOCARDIUM, replace=heart)
        paint_mask(labels, tissue, boxes[1], d <= -chambers[1].wall, label=L_HEART,
                   tissue_id=T.BLOOD_LEFT, replace=heart)


def _radial_distance(g: Grid, box: tuple, ch: Chamber) -> np.ndarray:
    """Signed distance (mm, along the ray from the centre) to a chamber's outer surface."""
    x, y, z = g.coords(box)
    dx, dy, dz = x - np.float32(ch.center[0]), y - np.float32(ch.center[1]), z - np.float32(ch.center[2])
    q = None
    rho2 = None
    for axis in range(3):
        r = ch.rotation[axis]
        u = dx * np.float32(r[0]) + dy * np.float32(r[1]) + dz * np.float32(r[2])
        term = (u / np.float32(ch.radii[axis])) ** 2
        q = term if q is None else q + term
        rho2 = u * u if rho2 is None else rho2 + u * u
    rho = np.sqrt(rho2)
    return rho - rho / np.sqrt(np.maximum(q, 1e-6))
