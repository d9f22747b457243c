"""The body outline: the patient, lungs and airways included, without the table and the blanket.

The patient is the largest 3-D component of tissue (denser than ``TISSUE_HU``) once thin things
lying against it (table top, blanket, cables) are cut by an opening; its holes, slice by slice, are
the lungs and airways. A small field of view (a crop around a tumour) cuts the lung open to the
image border, so the lung is no hole there: in such scans an air region reaching the border is
taken into the body when its median density is that of lung (above ``ROOM_AIR_HU``), not of room
air.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from worker_gate.organs.grid import WorkGrid
from worker_gate.organs.morphology import fill_holes_2d

TISSUE_HU = -500.0
"""Threshold between tissue and air (lung parenchyma counts as air here)."""

ROOM_AIR_HU = -960.0
"""Median working-grid density below which an air region reaching the border is room air."""

CROPPED_BORDER = 0.3
"""A scan whose image border is patient tissue over more than this fraction is a crop."""


def _border(image: np.ndarray) -> np.ndarray:
    """The border pixels of a 2-D image, as one 1-D array."""
    return np.concatenate([image[0], image[-1], image[1:-1, 0], image[1:-1, -1]])


def _patient(tissue: np.ndarray) -> np.ndarray:
    """The largest component of ``tissue`` after cutting thin attachments, with its skin restored."""
    in_plane = np.zeros((3, 3, 3), dtype=bool)
    in_plane[1] = ndimage.generate_binary_structure(2, 1)  # per slice: a scan may be one slice thick
    core = ndimage.binary_opening(tissue, structure=in_plane, iterations=2)
    labels, count = ndimage.label(core)
    if count == 0:
        return np.zeros_like(tissue)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    patient = labels == int(np.argmax(sizes))
    return ndimage.binary_dilation(patient, structure=in_plane, iterations=2) & tissue


def body_mask(grid: WorkGrid) -> np.ndarray:
    """Boolean ``(nz, ny, nx)``: the patient's body, lungs and airways included."""
    patient = _patient(grid.hu > TISSUE_HU)
    body = fill_holes_2d(patient)
    if np.mean([_border(patient[z]).mean() for z in range(patient.shape[0])]) <= CROPPED_BORDER:
        return body
    for z in range(patient.shape[0]):
        labels, _ = ndimage.label(~body[z])
        ids = np.unique(_border(labels))
        ids = ids[ids > 0]
        if ids.size:
            medians = np.asarray(ndimage.median(grid.hu[z], labels, ids))
            body[z] |= np.isin(labels, ids[medians >= ROOM_AIR_HU])
    return body
