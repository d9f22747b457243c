"""Body wall, skeleton, lungs with lobes, diaphragm and upper abdomen, drawn slice by slice.

Every slice is computed from 2-D maps prepared once (polar angle, diaphragm height, fissure heights,
spine masks) and a few scalars that vary with ``z`` (outline semi-axes, rib phase), so the whole
volume costs a few dozen cache-sized array operations per slice. Depth below the skin is measured
along the ray from the outline's centre, which is close to the normal distance for a near-elliptic
thorax. The rib cage sets that outline; posterolateral muscle lies outside it and the back rests
flat on the couch (:meth:`BodyModel.skin_depth`). Bone voxels take partial-volume edge, cortex and
trabecular classes from their depth below the bone surface (:mod:`shared.phantoms.bone`); the
scapulae and clavicles are drawn by :mod:`shared.phantoms.shoulder`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from shared.anatomy import label_of
from shared.phantoms.anatomy import AnatomyParams
from shared.phantoms.bone import bone_tissue
from shared.phantoms.geometry import Grid
from shared.phantoms.shoulder import ScapulaLayout, draw_clavicles, draw_scapulae, scapula_layout
from shared.phantoms.tissues import Tissue as T

L_SKIN, L_FAT, L_MUSCLE = label_of("skin"), label_of("subcutaneous_fat"), label_of("skeletal_muscle")
L_RIBS, L_CARTILAGE, L_STERNUM = label_of("ribs"), label_of("costal_cartilages"), label_of("sternum")
L_VERTEBRAE, L_CORD, L_BODY = label_of("vertebrae"), label_of("spinal_cord"), label_of("body")
L_MEDIASTINUM, L_LIVER = label_of("mediastinum"), label_of("liver")
L_STOMACH, L_SPLEEN = label_of("stomach"), label_of("spleen")
L_LUL, L_LLL = label_of("lung_upper_lobe_left"), label_of("lung_lower_lobe_left")
L_RUL, L_RML, L_RLL = (label_of("lung_upper_lobe_right"), label_of("lung_middle_lobe_right"),
                       label_of("lung_lower_lobe_right"))
LUNG_LABELS = (L_LUL, L_LLL, L_RUL, L_RML, L_RLL)

RIB_COUNT = 12
DIAPHRAGM_MM = 4.5
PLEURA_MM = 1.0
LATISSIMUS_MM = 8.0
"""Posterolateral muscle (latissimus dorsi) outside the rib-cage outline, at its thickest; where it
would pass below the couch the back lies flat on it instead."""


@dataclass
class BodyModel:
    """Derived layout of one phantom's body and the 2-D maps its slices are drawn from."""

    grid: Grid
    p: AnatomyParams
    rows: slice
    cols: slice
    X: np.ndarray
    Y: np.ndarray
    r: np.ndarray
    c2: np.ndarray
    s2a: np.ndarray
    s2p: np.ndarray
    outline: np.ndarray
    skin_extra: np.ndarray
    """Soft tissue (mm) outside the rib-cage outline (:data:`LATISSIMUS_MM`)."""
    table_gap: np.ndarray
    """Height (mm) of each pixel above the couch's top."""
    fat_t: np.ndarray
    muscle_t: np.ndarray
    pectoral: np.ndarray
    rib_drop: np.ndarray
    phi: np.ndarray
    diaphragm_z: np.ndarray
    apex_q: np.ndarray
    right: np.ndarray
    fissure_left: np.ndarray
    fissure_right: np.ndarray
    fissure_horizontal: np.ndarray
    spine_block: np.ndarray
    vertebral_body_q: np.ndarray
    posterior_elements: np.ndarray
    spine_depth: np.ndarray
    """In-plane depth (mm) below the surface of the vertebral body and posterior elements."""
    canal: np.ndarray
    liver_edge: np.ndarray
    stomach_q: np.ndarray
    spleen_q: np.ndarray
    scapula: ScapulaLayout

    # ---- scalars of the layout -------------------------------------------------------------
    @property
    def height(self) -> float:
        """Right dome to apex (mm)."""
        return self.p.lung_height

    @property
    def canal_y(self) -> float:
        """``y`` of the spinal canal's centre."""
        return self.p.spine_y + self.vb_radii[1] + 1.5 + self.canal_radius

    @property
    def vb_radii(self) -> tuple[float, float]:
        """Vertebral body semi-axes (x, y)."""
        return 19.0 * self.p.scale, 15.0 * self.p.scale

    @property
    def canal_radius(self) -> float:
        """Spinal canal radius."""
        return 8.0 * self.p.scale

    @property
    def sternum_range(self) -> tuple[float, float]:
        """Body ``z`` of the xiphoid tip and the jugular notch."""
        return -25.0 * self.p.scale, self.height - 45.0 * self.p.scale

    @property
    def stomach_center(self) -> np.ndarray:
        """Centre of the stomach ellipsoid."""
        s = self.p.scale
        return np.array([62.0 * s, -5.0 * s, -self.p.dome_left_drop - 55.0 * s])

    @property
    def stomach_radii(self) -> np.ndarray:
        """Semi-axes of the stomach ellipsoid."""
        return np.array([45.0, 48.0, 52.0]) * self.p.scale

    def semi_axes(self, z: float) -> tuple[float, float, float]:
        """Body outline semi-axes (lateral, anterior, posterior) at height ``z``."""
        h = self.height
        zs = [-200.0, 0.0, 0.55 * h, 0.85 * h, h + 60.0]
        fa = np.interp(z, zs, [0.98, 1.0, 1.0, 1.05, 1.1])
        fb = np.interp(z, zs, [1.03, 1.0, 1.0, 0.88, 0.78])
        fp = np.interp(z, zs, [1.0, 1.0, 1.0, 0.96, 0.92])
        return (self.p.body_half_width * fa, self.p.body_anterior * fb, self.p.body_posterior * fp)

    def mediastinal_half_width(self, z: float) -> float:
        """Half width of the midline band kept free of lung at height ``z`` (wider above the arch)."""
        arch = self.p.carina_z + 25.0
        return float(np.interp(z, [arch, arch + 25.0], [3.0, 20.0]) * self.p.scale)

    def layer_depths(self, z: float) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
        """Depths of the fat, muscle, rib and cavity boundaries at ``z`` (skin scalar, others maps)."""
        t_skin = self.p.skin_mm
        pec = np.interp(z, [0.15 * self.height, 0.45 * self.height], [0.0, 1.0])
        t_fat = t_skin + self.fat_t
        t_muscle = t_fat + self.muscle_t + pec * self.pectoral + self._scapular_bulge(z)
        t_cavity = t_muscle + self.p.rib_mm
        return t_skin, t_fat, t_muscle, t_cavity

    def depth(self, z: float) -> np.ndarray:
        """Depth (mm) below the skin of the rib-cage outline of each pixel of the crop at height
        ``z``, negative outside; the skin itself lies :meth:`skin_depth` deep."""
        a, ba, bp = self.semi_axes(z)
        inv = self.c2 * np.float32(1 / a**2) + self.s2a * np.float32(1 / ba**2)
        inv += self.s2p * np.float32(1 / bp**2)
        return self.outline / np.sqrt(inv) - self.r + self._scapular_bulge(z)

    def skin_depth(self, depth: np.ndarray) -> np.ndarray:
        """Depth below the actual skin, from :meth:`depth`: posterolateral muscle added, back flat
        on the couch."""
        return np.minimum(depth + self.skin_extra, self.table_gap)

    def _scapular_bulge(self, z: float) -> np.ndarray | float:
        """How far the muscles around the scapulae push the skin out at ``z`` (mm; a map or 0)."""
        w = self.scapula.weight(z)
        return self.scapula.bulge * np.float32(w) if w > 0 else 0.0

    def above_diaphragm(self, box: tuple) -> np.ndarray:
        """True where a voxel of ``box`` lies above the diaphragm (anywhere outside the body crop)."""
        kk, jj, ii = box
        dz = np.full((jj.stop - jj.start, ii.stop - ii.start), -1e4, dtype=np.float32)
        j0, j1 = max(jj.start, self.rows.start), min(jj.stop, self.rows.stop)
        i0, i1 = max(ii.start, self.cols.start), min(ii.stop, self.cols.stop)
        if j1 > j0 and i1 > i0:
            dz[j0 - jj.start:j1 - jj.start, i0 - ii.start:i1 - ii.start] = self.diaphragm_z[
                j0 - self.rows.start:j1 - self.rows.start, i0 - self.cols.start:i1 - self.cols.start]
        return self.grid.z[kk][:, None, None] > dz[None]

    def pleural_depth(self, z: float) -> np.ndarray:
        """Depth (mm) inside the inner chest wall (the parietal pleura) at height ``z``."""
        return self.depth(z) - self.layer_depths(z)[3]


def build_body_model(grid: Grid, p: AnatomyParams) -> BodyModel:
    """Prepare the 2-D maps of a phantom's body on ``grid``."""
    s = p.scale
    margin = 6.0
    xr = p.body_half_width * 1.12 + margin
    yr0 = -p.body_anterior * 1.05 - margin
    yr1 = p.body_posterior * 1.02 + margin
    cols = _index_range(grid.x, -xr, xr)
    rows = _index_range(grid.y, yr0, yr1)
    X = grid.x[cols][None, :].astype(np.float32)
    Y = grid.y[rows][:, None].astype(np.float32)
    X, Y = np.broadcast_arrays(X, Y)
    X, Y = X.copy(), Y.copy()
    r = np.hypot(X, Y) + np.float32(1e-3)
    c2, s2 = (X / r) ** 2, (Y / r) ** 2
    s2a, s2p = np.where(Y < 0, s2, 0).astype(np.float32), np.where(Y >= 0, s2, 0).astype(np.float32)
    psi = np.arctan2(Y, X)  # 0 = patient left, +pi/2 = posterior
    a2, ph2, a3, ph3 = p.outline_harmonics
    back_corners = np.where(Y > 0, 0.07 * np.sin(2 * psi) ** 2, 0.0)
    outline = (1 + a2 * np.cos(2 * psi + ph2) + a3 * np.cos(3 * psi + ph3) + back_corners)
    from_front = psi + np.pi / 2  # 0 = anterior midline
    fat_t = p.fat_mm * (1.0 + 0.25 * np.cos(2 * psi))
    muscle_t = p.muscle_mm * (1.0 + np.where(Y > 0, 0.6 * np.sin(2 * psi) ** 2, 0.0))
    pectoral = np.where(Y < 0, p.pectoral_mm * np.sin(2 * from_front) ** 2, 0.0)
    phi = np.arccos(np.clip(Y / r, -1, 1))  # 0 = posterior midline, pi = anterior
    rib_drop = p.rib_drop * (1 - np.cos(phi)) / 2

    a_mid = p.body_half_width
    cavity_half = a_mid - p.skin_mm - p.fat_mm - p.muscle_mm - p.rib_mm
    xm = p.mediastinum_x
    right = X < xm
    # Diaphragm: two paraboloid domes; their upper envelope leaves the lower central tendon.
    xr_d, xl_d, yd = xm - 0.45 * cavity_half, xm + 0.45 * cavity_half, -12.0 * s
    ad, bd = 0.55 * cavity_half, 95.0 * s
    k = p.recess_depth / 1.2
    z_r = -k * (((X - xr_d) / ad) ** 2 + ((Y - yd) / bd) ** 2)
    z_l = -p.dome_left_drop - k * (((X - xl_d) / ad) ** 2 + ((Y - yd) / bd) ** 2)
    diaphragm_z = np.maximum(z_r, z_l).astype(np.float32)
    # Apices: rounded domes over each hemithorax, slightly posterior.
    ax_, ay_, ya = 0.5 * cavity_half, 72.0 * s, 8.0 * s
    q_r = ((X - (xm - 0.5 * cavity_half)) / ax_) ** 2 + ((Y - ya) / ay_) ** 2
    q_l = ((X - (xm + 0.5 * cavity_half)) / ax_) ** 2 + ((Y - ya) / ay_) ** 2
    apex_q = np.where(right, q_r, q_l).astype(np.float32)
    # Fissures: oblique planes rising posteriorly, the horizontal one nearly flat.
    g = p.fissure_slope
    # lateral parts of the oblique fissures lie more anterior than the medial parts
    lateral = np.abs(X - xm)
    fissure_left = (p.fissure_left_z + g * Y + 0.0015 * Y**2 + 0.35 * lateral).astype(np.float32)
    fissure_right = (p.fissure_right_z + g * Y + 0.0015 * Y**2 + 0.35 * lateral).astype(np.float32)
    fissure_horizontal = (p.horizontal_fissure_z + 0.12 * Y).astype(np.float32)

    vbx, vby = 19.0 * s, 15.0 * s
    ys = p.spine_y
    vb_q = ((X / vbx) ** 2 + ((Y - ys) / vby) ** 2).astype(np.float32)
    rc = 8.0 * s
    yc = ys + vby + 1.5 + rc
    rcan = np.hypot(X, Y - yc)
    canal = rcan < rc
    arch = (rcan >= rc) & (rcan < rc + 5.0 * s) & (Y > ys)
    spinous = (np.abs(X) < 3.5 * s) & (Y >= yc) & (Y < yc + rc + 26.0 * s)
    # transverse processes point laterally and backwards
    transverse = (np.abs(Y - yc - 0.35 * np.abs(X) + 2.0 * s) < 4.0 * s) & (np.abs(X) < 34.0 * s)
    posterior_elements = (arch | spinous | transverse) & ~canal
    posterior_elements = np.where(transverse & ~arch & ~spinous, 2, posterior_elements.astype(np.uint8))
    paraspinal = (((np.abs(X) - 30.0 * s) / (24.0 * s)) ** 2 + ((Y - yc - 18.0 * s) / (18.0 * s)) ** 2) < 1
    vb_margin = ((X / (vbx + 5)) ** 2 + ((Y - ys) / (vby + 5)) ** 2) < 1
    pixel = float(grid.spacing[0])
    spine_depth = np.where(vb_q <= 1, (1 - np.sqrt(vb_q)) * vby,
                           ndi.distance_transform_edt(posterior_elements > 0) * pixel).astype(np.float32)
    spine_block = vb_margin | ((np.abs(X) < vbx + 5) & (Y > ys)) | paraspinal | (posterior_elements > 0) | canal

    liver_edge = (35.0 * s - 0.55 * Y).astype(np.float32)
    sc, sr = None, None
    model = BodyModel(
        grid=grid, p=p, rows=rows, cols=cols, X=X, Y=Y, r=r.astype(np.float32),
        c2=c2.astype(np.float32), s2a=s2a, s2p=s2p, outline=outline.astype(np.float32),
        skin_extra=np.where(Y > 0, LATISSIMUS_MM * s * np.sin(2 * psi) ** 2, 0.0).astype(np.float32),
        table_gap=(table_top(p, X) - Y).astype(np.float32),
        fat_t=fat_t.astype(np.float32), muscle_t=muscle_t.astype(np.float32),
        pectoral=pectoral.astype(np.float32), rib_drop=rib_drop.astype(np.float32),
        phi=phi.astype(np.float32), diaphragm_z=diaphragm_z, apex_q=apex_q, right=right,
        fissure_left=fissure_left, fissure_right=fissure_right,
        fissure_horizontal=fissure_horizontal, spine_block=spine_block, vertebral_body_q=vb_q,
        posterior_elements=posterior_elements, spine_depth=spine_depth, canal=canal, liver_edge=liver_edge,
        stomach_q=np.zeros(1), spleen_q=np.zeros(1), scapula=scapula_layout(p, Y, phi),
    )
    sc, sr = model.stomach_center, model.stomach_radii
    model.stomach_q = (((X - sc[0]) / sr[0]) ** 2 + ((Y - sc[1]) / sr[1]) ** 2).astype(np.float32)
    model.spleen_q = (((X - 88.0 * s) / (28.0 * s)) ** 2 + ((Y - 50.0 * s) / (45.0 * s)) ** 2).astype(np.float32)
    return model


def _index_range(coords: np.ndarray, lo: float, hi: float) -> slice:
    """Index slice of the sorted 1-D ``coords`` within ``[lo, hi]``."""
    a = int(np.searchsorted(coords, lo))
    b = int(np.searchsorted(coords, hi, side="right"))
    return slice(a, max(a, b))


def draw_body(model: BodyModel, labels: np.ndarray, tissue: np.ndarray) -> None:
    """Paint the body into ``labels``/``tissue`` (``(nz, ny, nx)`` uint8, zero-initialised)."""
    for k, z in enumerate(model.grid.z):
        lab = labels[k, model.rows, model.cols]
        tis = tissue[k, model.rows, model.cols]
        _draw_slice(model, float(z), lab, tis)
    draw_clavicles(model, labels, tissue)


def _draw_slice(m: BodyModel, z: float, lab: np.ndarray, tis: np.ndarray) -> None:
    p = m.p
    d = m.depth(z)
    skin = m.skin_depth(d)
    t_skin, t_fat, t_muscle, t_cavity = m.layer_depths(z)
    inside = skin >= 0
    lab[inside], tis[inside] = L_SKIN, T.SKIN
    sel = skin >= t_skin
    lab[sel], tis[sel] = L_FAT, T.FAT
    sel = skin >= t_fat
    lab[sel], tis[sel] = L_MUSCLE, T.MUSCLE
    cavity = (d >= t_cavity) & ~m.spine_block
    block = m.spine_block & (skin >= t_fat)
    lab[block], tis[block] = L_MUSCLE, T.MUSCLE

    draw_scapulae(m, z, d, t_fat, t_muscle, lab, tis)
    _draw_ribs(m, z, d, t_muscle, t_cavity, lab, tis)
    _draw_sternum(m, z, d, t_muscle, lab, tis)
    _draw_spine(m, z, lab, tis)

    above = z > m.diaphragm_z
    chest = cavity & above
    lung = chest & (d >= t_cavity + PLEURA_MM) & (z <= m.height)
    top = 0.78 * m.height
    if z > top:
        lung &= m.apex_q <= 1.0 - ((z - top) / (m.height - top)) ** 2
    band = np.abs(m.X - p.mediastinum_x) < m.mediastinal_half_width(z)
    lung &= ~band
    rest = chest & ~lung
    lab[rest], tis[rest] = np.where(band[rest], L_MEDIASTINUM, L_BODY), T.FAT
    neck = rest & ~band & (d < t_cavity + 12.0)
    tis[neck] = T.MUSCLE
    _draw_lobes(m, z, lung, lab, tis)
    _draw_abdomen(m, z, cavity & ~above, lab, tis)


def _draw_ribs(m: BodyModel, z: float, d: np.ndarray, t_in: np.ndarray, t_out: np.ndarray,
               lab: np.ndarray, tis: np.ndarray) -> None:
    p = m.p
    lo = _sternum_halfwidth(m, z)
    band = (d >= t_in + 1.0) & (d < t_out - 0.5) & ~m.spine_block
    band &= ~((m.Y < 0) & (np.abs(m.X) < lo + 3.0))
    if not band.any():
        return
    u = z + m.rib_drop[band]
    top = m.height - 12.0 * p.scale + p.rib_phase * 4.0
    idx = (top - u) / p.rib_pitch
    k = np.floor(idx)
    height = 10.0 * p.scale
    frac_mm = (idx - k) * p.rib_pitch
    phi = m.phi[band]
    reach = np.where(k >= 9, 0.55 * np.pi, np.pi)
    is_rib = (k >= 0) & (k < RIB_COUNT) & (frac_mm < height) & (phi < reach)
    if not is_rib.any():
        return
    db = d[band]
    in_plane = np.minimum(db - t_in[band] - 1.0, t_out[band] - 0.5 - db)
    along_z = np.minimum(frac_mm, height - frac_mm)
    cartilage = phi > 0.78 * np.pi
    bone_l = np.where(cartilage, L_CARTILAGE, L_RIBS)
    bone_t = np.where(cartilage, T.CARTILAGE, bone_tissue(m.grid, in_plane, along_z))
    bl, bt = lab[band], tis[band]
    bl[is_rib], bt[is_rib] = bone_l[is_rib], bone_t[is_rib]
    lab[band], tis[band] = bl, bt


def _sternum_halfwidth(m: BodyModel, z: float) -> float:
    bottom, top = m.sternum_range
    if z < bottom or z > top:
        return 0.0
    return float(np.interp(z, [bottom, bottom + 30, top - 50, top], [6, 14, 15, 25]) * m.p.scale)


def _draw_sternum(m: BodyModel, z: float, d: np.ndarray, t_in: np.ndarray,
                  lab: np.ndarray, tis: np.ndarray) -> None:
    half = _sternum_halfwidth(m, z)
    if half <= 0:
        return
    thick = 12.0 * m.p.scale
    x = np.abs(m.X - m.p.mediastinum_x * 0.3)
    sel = (m.Y < 0) & (x < half) & (d >= t_in - 2.0) & (d < t_in + thick)
    in_plane = np.minimum(np.minimum(half - x, d - t_in + 2.0), t_in + thick - d)
    lab[sel] = L_STERNUM
    tis[sel] = bone_tissue(m.grid, in_plane[sel], np.inf)


def _draw_spine(m: BodyModel, z: float, lab: np.ndarray, tis: np.ndarray) -> None:
    p = m.p
    pitch = p.vertebra_pitch
    pos = (z / pitch + p.vertebra_phase) % 1.0
    disc = 5.0 / pitch
    body = m.vertebral_body_q <= 1.0
    if pos < disc:
        lab[body], tis[body] = L_BODY, T.DISC
    else:
        lab[body] = L_VERTEBRAE
        tis[body] = bone_tissue(m.grid, m.spine_depth[body], min(pos - disc, 1.0 - pos) * pitch)
        # arch and spinous process in most of each vertebra's height, transverse processes in part
        if pos > 0.25:
            pe = (m.posterior_elements == 1) if pos > 0.75 else (m.posterior_elements > 0)
            along_z = (pos - 0.25) * pitch if pos <= 0.75 else min(pos - 0.25, 1.0 - pos) * pitch
            lab[pe], tis[pe] = L_VERTEBRAE, bone_tissue(m.grid, m.spine_depth[pe], along_z)
    lab[m.canal], tis[m.canal] = L_CORD, T.CSF


def _draw_lobes(m: BodyModel, z: float, lung: np.ndarray, lab: np.ndarray, tis: np.ndarray) -> None:
    if not lung.any():
        return
    right = m.right
    g = np.hypot(1.0, m.p.fissure_slope)
    left_lower = z < m.fissure_left
    right_lower = z < m.fissure_right
    middle = ~right_lower & (z < m.fissure_horizontal)
    lobe = np.where(
        right,
        np.where(right_lower, L_RLL, np.where(middle, L_RML, L_RUL)),
        np.where(left_lower, L_LLL, L_LUL),
    ).astype(np.uint8)
    lab[lung] = lobe[lung]
    fissure = np.where(right, np.abs(z - m.fissure_right), np.abs(z - m.fissure_left)) < 0.6 * g
    # the horizontal fissure lies almost in the slice plane: on axial CT it shows as no clear line
    tis[lung] = np.where(fissure[lung], T.FISSURE, T.LUNG)


def _draw_abdomen(m: BodyModel, z: float, sel: np.ndarray, lab: np.ndarray, tis: np.ndarray) -> None:
    if not sel.any():
        return
    s = m.p.scale
    lab[sel], tis[sel] = L_BODY, T.FAT
    dia = sel & (z > m.diaphragm_z - DIAPHRAGM_MM)
    tis[dia] = T.MUSCLE
    organs = sel & ~dia
    liver = organs & (m.X < m.liver_edge)
    lab[liver], tis[liver] = L_LIVER, T.LIVER
    sc, sr = m.stomach_center, m.stomach_radii
    qz = ((z - sc[2]) / sr[2]) ** 2
    stomach = organs & ~liver & (m.stomach_q + qz <= 1.0)
    if stomach.any():
        lab[stomach] = L_STOMACH
        inner = m.stomach_q + qz <= (1 - 4.0 / sr[1]) ** 2
        air = m.Y < sc[1] - 0.35 * sr[1]
        tis[stomach] = np.where(inner[stomach], np.where(air[stomach], T.AIR, T.STOMACH_CONTENT),
                                T.STOMACH_WALL)
    spleen_z = -m.p.dome_left_drop - 70.0 * s
    qz = ((z - spleen_z) / (55.0 * s)) ** 2
    spleen = organs & ~liver & ~stomach & (m.spleen_q + qz <= 1.0)
    lab[spleen], tis[spleen] = L_SPLEEN, T.SPLEEN


def table_top(p: AnatomyParams, x: np.ndarray) -> np.ndarray:
    """Body ``y`` (mm) of the couch's top surface at ``x``: curved up at the sides."""
    return p.body_posterior * 0.98 + 3.0 - 0.0012 * x**2


def draw_table(grid: Grid, p: AnatomyParams, tissue: np.ndarray) -> None:
    """The patient couch below the back: a curved carbon-fibre shell around foam (label 0)."""
    x = grid.x[None, :]
    y = grid.y[:, None]
    top = table_top(p, x)
    shell = (y >= top) & (y < top + 2.0) | (y >= top + 14.0) & (y < top + 16.0)
    foam = (y >= top + 2.0) & (y < top + 14.0)
    width = np.abs(x) < 220.0
    sl = np.zeros(shell.shape, dtype=np.uint8)
    sl[foam & width] = T.TABLE_FOAM
    sl[shell & width] = T.TABLE_SHELL
    sel = sl > 0
    tissue[:, sel] = sl[sel]
