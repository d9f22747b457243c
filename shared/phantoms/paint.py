"""Painting shapes into the label and tissue maps, restricted to the labels a shape may replace."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from shared.phantoms.geometry import Grid, capsule_box, segment_distance


def label_set(labels: Iterable[int]) -> np.ndarray:
    """A 256-entry boolean table: ``table[label]`` is True for the given labels."""
    table = np.zeros(256, dtype=bool)
    table[list(labels)] = True
    return table


def paint_tube(
    grid: Grid,
    labels: np.ndarray,
    tissue: np.ndarray,
    path: np.ndarray,
    radii: np.ndarray | float,
    *,
    label: int | None,
    tissue_id: int,
    replace: np.ndarray,
) -> None:
    """Fill a tube of (linearly varying) ``radii`` along polyline ``path`` ``(n, 3)``.

    Only voxels whose current label is in ``replace`` (a :func:`label_set`) change; ``label=None``
    changes the tissue only.
    """
    path = np.asarray(path, dtype=np.float64)
    r = np.broadcast_to(np.asarray(radii, dtype=np.float64), (len(path),))
    for i in range(len(path) - 1):
        p0, p1, r0, r1 = path[i], path[i + 1], r[i], r[i + 1]
        box = capsule_box(grid, p0, p1, max(r0, r1))
        if box is None:
            continue
        dist, t = segment_distance(grid, box, p0, p1)
        sel = dist <= (r0 + t * (r1 - r0))
        lab = labels[box]
        sel &= replace[lab]
        if label is not None:
            lab[sel] = label
        tissue[box][sel] = tissue_id


def paint_mask(
    labels: np.ndarray, tissue: np.ndarray, box: tuple, sel: np.ndarray, *, label: int | None,
    tissue_id: int, replace: np.ndarray,
) -> np.ndarray:
    """Paint boolean ``sel`` over ``box`` where the label is replaceable; returns what was painted."""
    lab = labels[box]
    sel = sel & replace[lab]
    if label is not None:
        lab[sel] = label
    tissue[box][sel] = tissue_id
    return sel
