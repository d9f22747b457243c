"""A CT slice as a radiologist views it: windowed grey levels, the anomaly map as a heat map, organ
outlines, oriented so that an axial slice shows patient left on the image right and anterior up
(the viewer convention of PS3.3 C.7.6.1.1.1 PatientOrientation "L\\P").
"""

from __future__ import annotations

import colorsys
import io
from dataclasses import dataclass
from functools import cache
from typing import Literal

import numpy as np
from PIL import Image
from scipy import ndimage

from shared.dicom.volume import Volume

WindowName = Literal["lung", "mediastinal"]
WINDOWS: dict[str, tuple[float, float]] = {"lung": (-600.0, 1500.0), "mediastinal": (40.0, 400.0)}
"""Window name -> (level, width) in HU."""

OVERLAY_FLOOR = 0.3
"""Scores below this are not drawn; above it the heat map runs red (floor) to yellow (1)."""
OVERLAY_ALPHA = (0.3, 0.7)
"""Opacity of the heat map at the floor and at score 1."""
FINDING_OUTLINE_RGB = (0, 220, 255)
ORGAN_OUTLINE_ALPHA = 0.45
_LETTERS = (("R", "L"), ("A", "P"), ("F", "H"))
"""Patient direction letters of -x/+x, -y/+y, -z/+z in LPS (PS3.3 C.7.6.1.1.1)."""


@dataclass(frozen=True)
class DisplayPlane:
    """How a slice array ``(row j, column i)`` becomes the displayed image, and what that shows."""

    transpose: bool
    flip_vertical: bool
    flip_horizontal: bool
    right: np.ndarray
    """Unit LPS vector pointing to the image's right (increasing displayed column)."""
    down: np.ndarray
    """Unit LPS vector pointing down the image (increasing displayed row)."""
    pixel_spacing: tuple[float, float]
    """Displayed (between rows, between columns) in mm, before any resampling."""

    def apply(self, image: np.ndarray) -> np.ndarray:
        """Reorient a ``(ny, nx, ...)`` slice array to display order."""
        out = np.swapaxes(image, 0, 1) if self.transpose else image
        if self.flip_vertical:
            out = out[::-1]
        if self.flip_horizontal:
            out = out[:, ::-1]
        return np.ascontiguousarray(out)

    @property
    def patient_orientation(self) -> tuple[str, str]:
        """DICOM PatientOrientation (row direction, column direction), e.g. ``("L", "P")``."""
        return direction_letters(self.right), direction_letters(self.down)


def display_plane(volume: Volume) -> DisplayPlane:
    """The radiological view of ``volume``'s slices: axial L right / A up, coronal L right / H up,
    sagittal P right / H up (for oblique slices, of the nearest of those)."""
    direction = volume.direction
    axes = [int(np.argmax(np.abs(direction[:, c]))) for c in (0, 1)]  # dominant LPS axis of i and of j
    di, dj = volume.spacing[0], volume.spacing[1]
    if axes[0] == axes[1]:  # degenerate (strongly oblique) plane: show as stored
        return DisplayPlane(False, False, False, direction[:, 0], direction[:, 1], (dj, di))
    horizontal_axis = 0 if 0 in axes else 1  # x (L) when in the plane, else y (P)
    vertical_axis = next(a for a in axes if a != horizontal_axis)
    vertical_sign = 1.0 if vertical_axis == 1 else -1.0  # axial: P down; otherwise F down (H up)
    transpose = axes[1] == horizontal_axis
    col_vector = direction[:, 1] if transpose else direction[:, 0]
    row_vector = direction[:, 0] if transpose else direction[:, 1]
    flip_horizontal = col_vector[horizontal_axis] < 0
    flip_vertical = row_vector[vertical_axis] * vertical_sign < 0
    right = -col_vector if flip_horizontal else col_vector
    down = -row_vector if flip_vertical else row_vector
    spacing = (di, dj) if transpose else (dj, di)
    return DisplayPlane(transpose, flip_vertical, flip_horizontal, right, down, spacing)


def windowed(hu: np.ndarray, window: WindowName) -> np.ndarray:
    """``uint8`` grey levels of HU in a named window."""
    level, width = WINDOWS[window]
    low = level - width / 2
    return (np.clip((np.asarray(hu, dtype=np.float32) - low) / width, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def compose_slice(
    *, volume: Volume, k: int, window: WindowName, overlay: np.ndarray | None = None,
    organ_labels: np.ndarray | None = None,
) -> tuple[np.ndarray, DisplayPlane]:
    """Slice ``k`` as a displayed ``(H, W, 3)`` ``uint8`` image and its plane.

    ``overlay``: anomaly scores in [0, 1], ``(ny, nx)`` for slice ``k`` or ``(nz, ny, nx)``;
    ``organ_labels``: the organ label map (2-D or 3-D likewise), drawn as outlines."""
    if window not in WINDOWS:
        raise ValueError(f"window must be one of {sorted(WINDOWS)}, not {window!r}")
    if not 0 <= k < volume.shape[0]:
        raise IndexError(f"slice {k} is outside 0..{volume.shape[0] - 1}")
    grey = windowed(volume.hu[k], window)
    rgb = np.repeat(grey[..., None], 3, axis=-1).astype(np.float32)
    if organ_labels is not None:
        _blend_organ_outlines(rgb, _slice_of(organ_labels, k, volume))
    if overlay is not None:
        _blend_heat_map(rgb, _slice_of(overlay, k, volume).astype(np.float32))
    plane = display_plane(volume)
    return plane.apply(np.clip(rgb + 0.5, 0, 255).astype(np.uint8)), plane


def square_pixels(image: np.ndarray, plane: DisplayPlane, *, min_size: int = 0) -> tuple[np.ndarray, float]:
    """Resample a displayed image to square pixels, enlarged until its longer side is at least
    ``min_size``; returns the image and its pixel size in mm."""
    row_mm, col_mm = plane.pixel_spacing
    pixel_mm = min(row_mm, col_mm)
    height, width = image.shape[0] * row_mm / pixel_mm, image.shape[1] * col_mm / pixel_mm
    scale = max(1.0, min_size / max(height, width))
    size = (round(width * scale), round(height * scale))
    if size == (image.shape[1], image.shape[0]):
        return image, pixel_mm
    resized = Image.fromarray(image).resize(size, Image.Resampling.BILINEAR)
    return np.asarray(resized), col_mm * image.shape[1] / size[0]


def draw_outline(image: np.ndarray, region: np.ndarray, plane: DisplayPlane) -> np.ndarray:
    """``image`` (displayed, possibly resampled) with the contour of a slice region ``(ny, nx)`` drawn
    one display pixel wide, so a small finding keeps its heat map visible inside the contour."""
    shown = Image.fromarray(plane.apply(np.asarray(region, dtype=np.uint8)) * 255)
    shown = np.asarray(shown.resize((image.shape[1], image.shape[0]), Image.Resampling.NEAREST)) > 0
    out = image.copy()
    out[ndimage.binary_dilation(shown) & ~shown] = FINDING_OUTLINE_RGB
    return out


def render_slice_png(
    *, volume: Volume, k: int, window: WindowName, overlay: np.ndarray | None,
    organ_labels: np.ndarray | None = None,
) -> bytes:
    """PNG of slice ``k`` in the lung (W1500/L-600) or mediastinal (W400/L40) window, with the
    anomaly ``overlay`` as a semi-transparent heat map (see :func:`compose_slice` for shapes)."""
    image, plane = compose_slice(volume=volume, k=k, window=window, overlay=overlay, organ_labels=organ_labels)
    image, _ = square_pixels(image, plane)
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def _slice_of(array: np.ndarray, k: int, volume: Volume) -> np.ndarray:
    array = np.asarray(array)
    plane_shape = volume.shape[1:]
    if array.shape == volume.shape:
        return array[k]
    if array.shape == plane_shape:
        return array
    raise ValueError(f"overlay shape {array.shape} is neither the volume's {volume.shape} nor a slice's {plane_shape}")


def _blend_heat_map(rgb: np.ndarray, scores: np.ndarray) -> None:
    t = np.clip((scores - OVERLAY_FLOOR) / (1.0 - OVERLAY_FLOOR), 0.0, 1.0)
    shown = scores >= OVERLAY_FLOOR
    if not shown.any():
        return
    t = t[shown]
    heat = np.stack([np.full_like(t, 255.0), 255.0 * t, np.zeros_like(t)], axis=-1)
    alpha = (OVERLAY_ALPHA[0] + (OVERLAY_ALPHA[1] - OVERLAY_ALPHA[0]) * t)[:, None]
    rgb[shown] = (1.0 - alpha) * rgb[shown] + alpha * heat


def _blend_organ_outlines(rgb: np.ndarray, labels: np.ndarray) -> None:
    edges = _edges(labels)
    colours = _organ_palette()[labels[edges]]
    rgb[edges] = (1.0 - ORGAN_OUTLINE_ALPHA) * rgb[edges] + ORGAN_OUTLINE_ALPHA * colours


def _edges(labels: np.ndarray) -> np.ndarray:
    """Labelled pixels (> 0) whose label differs from a 4-neighbour's: each organ's own border."""
    labels = np.asarray(labels)
    edge = np.zeros(labels.shape, dtype=bool)
    vertical = labels[1:, :] != labels[:-1, :]
    horizontal = labels[:, 1:] != labels[:, :-1]
    edge[1:, :] |= vertical
    edge[:-1, :] |= vertical
    edge[:, 1:] |= horizontal
    edge[:, :-1] |= horizontal
    return edge & (labels > 0)


@cache
def _organ_palette() -> np.ndarray:
    """A distinct, fixed colour per label id (golden-angle hues)."""
    hues = [(label * 0.618034) % 1.0 for label in range(256)]
    return np.array([colorsys.hsv_to_rgb(hue, 0.6, 255.0) for hue in hues], dtype=np.float32)


def direction_letters(vector: np.ndarray) -> str:
    """Patient direction letters of an LPS vector, most significant first (e.g. ``"LP"``)."""
    order = np.argsort(-np.abs(vector))
    letters = [_LETTERS[a][int(vector[a] > 0)] for a in order if abs(vector[a]) > 0.2]
    return "".join(letters[:3])
