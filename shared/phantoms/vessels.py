"""Space-filling branching trees for the pulmonary arteries, veins and bronchi of each lobe.

Each tree grows from a hilar root by recursive bisection of points sampled in its lobe: a branch
runs part of the way towards the centroid of its points, which are then split across their
principal axis, one half per child (after Kitaoka et al., J Appl Physiol 1999). Radii follow
Murray's law from the number of leaves a branch feeds, so vessels taper towards the pleura. Thick
branches are painted as capsules in their bounding boxes; thin ones are splatted as small voxel
balls along their axis, all at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shared.phantoms.geometry import Grid
from shared.phantoms.paint import label_set, paint_tube
from shared.phantoms.tissues import Tissue as T

SPLAT_MAX_RADIUS = 1.6


@dataclass
class Tree:
    """Segments ``start[s] -> end[s]`` with the number of leaves each feeds and its generation."""

    start: np.ndarray
    end: np.ndarray
    leaves: np.ndarray
    generation: np.ndarray

    def radii(self, leaf_radius: float, exponent: float = 3.0) -> np.ndarray:
        """Murray's-law radius of every segment (mm)."""
        return leaf_radius * self.leaves ** (1.0 / exponent)


def sample_points(labels: np.ndarray, grid: Grid, label: int, *, count: int,
                  rng: np.random.Generator, stride: int = 4) -> np.ndarray:
    """Up to ``count`` random body points ``(n, 3)`` inside voxels labelled ``label``."""
    sub = labels[::stride, ::stride, ::stride]
    k, j, i = np.nonzero(sub == label)
    if len(k) == 0:
        return np.zeros((0, 3))
    pick = rng.choice(len(k), size=min(count, len(k)), replace=False)
    jitter = rng.uniform(-0.5, 0.5, size=(len(pick), 3)) * stride
    ijk = np.stack([i[pick] * stride, j[pick] * stride, k[pick] * stride], axis=1) + jitter
    return np.asarray(grid.origin) + ijk * np.asarray(grid.spacing)


def grow_tree(root: np.ndarray, points: np.ndarray, *, leaf_size: int = 3,
              reach: float = 0.55) -> Tree:
    """Grow a tree from ``root`` that fills the cloud ``points`` ``(n, 3)``."""
    starts, ends, parents, gens = [], [], [], []
    stack = [(np.asarray(root, dtype=np.float64), points, -1, 0)]
    while stack:
        start, pts, parent, gen = stack.pop()
        centroid = pts.sum(axis=0) / len(pts)
        idx = len(starts)
        if len(pts) <= leaf_size:
            starts.append(start)
            ends.append(start + 0.9 * (centroid - start))
            parents.append(parent)
            gens.append(gen)
            continue
        end = start + reach * (centroid - start)
        starts.append(start)
        ends.append(end)
        parents.append(parent)
        gens.append(gen)
        centred = pts - centroid
        if len(pts) > 64:
            _, vecs = np.linalg.eigh(centred.T @ centred)
            side = centred @ vecs[:, -1] > 0
        else:  # small clouds: the coordinate axis of largest spread is close enough, and cheaper
            axis = int(np.argmax(centred.max(axis=0) - centred.min(axis=0)))
            side = centred[:, axis] > 0
        if side.all() or not side.any():
            side = np.arange(len(pts)) % 2 == 0
        stack.append((end, pts[side], idx, gen + 1))
        stack.append((end, pts[~side], idx, gen + 1))
    parents_a = np.asarray(parents)
    leaves = np.zeros(len(starts))
    is_leaf = np.ones(len(starts), dtype=bool)
    is_leaf[parents_a[parents_a >= 0]] = False
    leaves[is_leaf] = 1.0
    for s in range(len(starts) - 1, 0, -1):  # children always come after their parent
        if parents_a[s] >= 0:
            leaves[parents_a[s]] += leaves[s]
    return Tree(np.asarray(starts), np.asarray(ends), leaves, np.asarray(gens))


def draw_tree(grid: Grid, labels: np.ndarray, tissue: np.ndarray, tree: Tree, radii: np.ndarray,
              *, label: int | None, tissue_id: int, replace: np.ndarray) -> None:
    """Paint the segments of ``tree`` with their ``radii``."""
    thick = radii > SPLAT_MAX_RADIUS
    for s in np.nonzero(thick)[0]:
        paint_tube(grid, labels, tissue, np.stack([tree.start[s], tree.end[s]]), radii[s],
                   label=label, tissue_id=tissue_id, replace=replace)
    thin = np.nonzero(~thick)[0]
    if len(thin):
        splat_segments(grid, labels, tissue, tree.start[thin], tree.end[thin], radii[thin],
                       label=label, tissue_id=tissue_id, replace=replace)


def splat_segments(grid: Grid, labels: np.ndarray, tissue: np.ndarray, start: np.ndarray,
                   end: np.ndarray, radii: np.ndarray, *, label: int | None, tissue_id: int,
                   replace: np.ndarray) -> None:
    """Paint thin segments as voxel balls every half voxel along their axes (vectorised)."""
    spacing = np.asarray(grid.spacing)
    step = 0.5 * float(spacing.min())
    buckets = np.round(radii * 4) / 4
    for r in np.unique(buckets):
        sel = buckets == r
        a, b = start[sel], end[sel]
        n = np.maximum(1, np.ceil(np.linalg.norm(b - a, axis=1) / step)).astype(int)
        seg = np.repeat(np.arange(len(a)), n + 1)
        first = np.repeat(np.cumsum(n + 1) - (n + 1), n + 1)
        t = (np.arange(len(seg)) - first) / n[seg]
        pts = a[seg] + (b[seg] - a[seg]) * t[:, None]
        centre = np.rint(grid.to_index(pts)).astype(np.int64)  # (i, j, k)
        stencil = _ball(max(float(r), 0.5 * float(spacing[:2].min())), spacing)
        vox = (centre[:, None, :] + stencil[None]).reshape(-1, 3)
        nz, ny, nx = labels.shape
        ok = ((vox[:, 0] >= 0) & (vox[:, 0] < nx) & (vox[:, 1] >= 0) & (vox[:, 1] < ny)
              & (vox[:, 2] >= 0) & (vox[:, 2] < nz))
        vox = vox[ok]
        flat = np.unique((vox[:, 2] * ny + vox[:, 1]) * nx + vox[:, 0])
        lab = labels.reshape(-1)
        flat = flat[replace[lab[flat]]]
        if label is not None:
            lab[flat] = label
        tissue.reshape(-1)[flat] = tissue_id


def _ball(radius: float, spacing: np.ndarray) -> np.ndarray:
    """Voxel offsets ``(m, 3)`` (i, j, k) within ``radius`` mm of a centre voxel."""
    n = np.ceil(radius / spacing).astype(int)
    ii, jj, kk = np.meshgrid(*(np.arange(-c, c + 1) for c in n), indexing="ij")
    off = np.stack([ii.ravel(), jj.ravel(), kk.ravel()], axis=1)
    d2 = ((off * spacing) ** 2).sum(axis=1)
    keep = d2 <= radius**2
    keep[len(keep) // 2] = True
    return off[keep]


def draw_lung_trees(grid: Grid, labels: np.ndarray, tissue: np.ndarray, hilum,
                    rng: np.random.Generator) -> None:
    """Arteries, veins and bronchi of every lobe, grown from the hilum into that lobe."""
    from shared.phantoms.body import LUNG_LABELS
    from shared.phantoms.mediastinum import L_BRONCHI, L_VESSELS

    stride = max(1, int(round(4.0 / min(grid.spacing))))
    voxel_ml = grid.voxel_ml * stride**3
    vessels_ok = label_set([*LUNG_LABELS, L_VESSELS])
    wall_ok = label_set([*LUNG_LABELS, L_VESSELS, L_BRONCHI])
    for lobe in LUNG_LABELS:
        if lobe not in hilum.artery:
            continue
        n_vox = int(np.count_nonzero(labels[::stride, ::stride, ::stride] == lobe))
        # fewer, coarser branches on coarse grids, where thin ones would not show anyway
        density = 1.6 * float(np.clip((0.8 / min(grid.spacing[:2])) ** 2, 0.15, 1.0))
        count = int(np.clip(n_vox * voxel_ml * density, 0, 2500))
        if count < 8:
            continue
        arteries = sample_points(labels, grid, lobe, count=count, rng=rng, stride=stride)
        veins = sample_points(labels, grid, lobe, count=count, rng=rng, stride=stride)
        a_tree = grow_tree(hilum.artery[lobe], arteries)
        v_tree = grow_tree(hilum.vein[lobe], veins)
        offset = rng.normal(size=3)
        offset *= 4.5 / np.linalg.norm(offset)
        b_tree = grow_tree(hilum.bronchus[lobe], arteries + offset)
        draw_tree(grid, labels, tissue, a_tree, a_tree.radii(0.7), label=L_VESSELS,
                  tissue_id=T.BLOOD_RIGHT, replace=vessels_ok)
        draw_tree(grid, labels, tissue, v_tree, v_tree.radii(0.7), label=L_VESSELS,
                  tissue_id=T.BLOOD_LEFT, replace=vessels_ok)
        lumen = b_tree.radii(0.45)
        keep = lumen >= 0.9
        if keep.any():
            b = Tree(b_tree.start[keep], b_tree.end[keep], b_tree.leaves[keep], b_tree.generation[keep])
            r = lumen[keep]
            draw_tree(grid, labels, tissue, b, r + np.maximum(0.6, 0.25 * r), label=L_BRONCHI,
                      tissue_id=T.AIRWAY_WALL, replace=wall_ok)
            draw_tree(grid, labels, tissue, b, r, label=L_BRONCHI, tissue_id=T.AIR,
                      replace=label_set([L_BRONCHI]))
