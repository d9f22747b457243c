"""NIfTI-1 files for intermediate artifacts (organ label maps, anomaly maps, CT crops).

Our arrays are ``(nz, ny, nx)`` with an LPS affine over ``(i, j, k)`` (see :mod:`shared.dicom.volume`);
NIfTI stores ``data[i, j, k]`` with an affine to RAS+ (NIfTI-1 header, ``sform``). So writing
transposes the array to ``(nx, ny, nz)`` and flips the sign of x and y in the affine; reading does
the reverse. A sheared affine (gantry tilt) is kept exactly in the sform; the qform, which can
only hold rotations, is then left unset.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from shared.dicom.volume import Volume, VolumeMeta

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
"""Multiplies an LPS affine into a RAS one and back (its own inverse)."""
_SCANNER_XFORM = 1  # NIfTI xform code: scanner-based anatomical coordinates


def write_nifti(array_or_volume: np.ndarray | Volume, path: Path, affine_lps: np.ndarray | None = None) -> Path:
    """Write a ``(nz, ny, nx)`` array (or a Volume's HU) with its LPS affine as NIfTI (``.nii``/``.nii.gz``)."""
    if isinstance(array_or_volume, Volume):
        array = array_or_volume.hu
        affine_lps = array_or_volume.affine if affine_lps is None else affine_lps
    else:
        array = np.asarray(array_or_volume)
    if affine_lps is None:
        raise ValueError("an LPS affine is needed to write a plain array")
    if array.ndim != 3:
        raise ValueError(f"expected a (nz, ny, nx) array, got shape {array.shape}")
    if array.dtype == np.bool_:
        array = array.astype(np.uint8)
    affine_ras = LPS_TO_RAS @ np.asarray(affine_lps, dtype=np.float64)
    image = nib.Nifti1Image(np.ascontiguousarray(array.transpose(2, 1, 0)), affine_ras)
    image.set_sform(affine_ras, code=_SCANNER_XFORM)
    if _is_rotation_and_scale(affine_ras):
        image.set_qform(affine_ras, code=_SCANNER_XFORM)
    else:
        image.set_qform(None, code=0)
    image.header.set_xyzt_units("mm")
    path = Path(path)
    nib.save(image, path)
    return path


def read_nifti(path: Path) -> Volume:
    """A NIfTI image as a Volume: HU in ``(nz, ny, nx)`` (int16 kept, other types as float32), LPS affine."""
    array, affine = _read(path)
    if array.dtype != np.int16:
        array = array.astype(np.float32)
    return Volume(hu=array, affine=affine, meta=VolumeMeta())


def write_label_nifti(labels: np.ndarray, path: Path, affine_lps: np.ndarray) -> Path:
    """Write an integer label map (or a boolean mask) ``(nz, ny, nx)`` as NIfTI, in the smallest unsigned type."""
    labels = np.asarray(labels)
    if labels.dtype != np.bool_ and labels.dtype.kind not in "iu":
        raise ValueError(f"labels must be integers or booleans, got {labels.dtype}")
    high = int(labels.max()) if labels.size else 0
    if labels.size and int(labels.min()) < 0:
        raise ValueError("labels must not be negative")
    dtype = np.uint8 if high < 256 else np.uint16 if high < 65536 else np.uint32
    return write_nifti(labels.astype(dtype, copy=False), path, affine_lps)


def read_label_nifti(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """A label map as ``(labels (nz, ny, nx) unsigned ints, LPS affine)``."""
    array, affine = _read(path)
    if array.dtype.kind == "f":
        if not np.all(array == np.rint(array)) or array.min(initial=0) < 0:
            raise ValueError(f"{path} holds non-integer or negative values: not a label map")
        high = array.max(initial=0)
        array = array.astype(np.uint8 if high < 256 else np.uint16 if high < 65536 else np.uint32)
    return array, affine


def _read(path: Path) -> tuple[np.ndarray, np.ndarray]:
    image = nib.load(Path(path))
    if len(image.shape) != 3:
        raise ValueError(f"{path} is {len(image.shape)}-D; expected a 3-D image")
    data = np.asanyarray(image.dataobj)  # applies scl_slope / scl_inter when set
    array = np.ascontiguousarray(data.transpose(2, 1, 0))
    return array, LPS_TO_RAS @ image.affine


def _is_rotation_and_scale(affine: np.ndarray) -> bool:
    columns = affine[:3, :3]
    gram = columns.T @ columns
    return bool(np.allclose(gram, np.diag(np.diag(gram)), atol=1e-6 * np.abs(gram).max()))
