"""Read NIfTI and NRRD images into :class:`Volume` conventions, and bring label maps onto a CT grid.

Both formats are turned into the DICOM convention of ``shared.dicom.volume``: the array is
``(nz, ny, nx)`` and the affine maps ``(i, j, k)`` to LPS millimetres. NIfTI stores RAS world
coordinates (NIfTI-1 ``qform``/``sform``), so its axes are first permuted and flipped to the
orientation closest to (L, P, S) — the axial orientation a DICOM CT series has — and its affine is
negated in x and y.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from shared.dicom.volume import Volume, VolumeMeta

_RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])
_NRRD_SPACES = {
    "left-posterior-superior": np.eye(4), "LPS": np.eye(4),
    "right-anterior-superior": _RAS_TO_LPS, "RAS": _RAS_TO_LPS,
}


def read_nifti_array(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(array (nz, ny, nx), LPS affine)`` of a NIfTI file, axes reoriented to closest (L, P, S)."""
    image = nib.load(str(path))
    current = nib.io_orientation(image.affine)
    transform = nib.orientations.ornt_transform(current, nib.orientations.axcodes2ornt(("L", "P", "S")))
    data = nib.orientations.apply_orientation(np.asanyarray(image.dataobj), transform)
    ras_affine = image.affine @ nib.orientations.inv_ornt_aff(transform, image.shape[:3])
    return np.ascontiguousarray(data.transpose(2, 1, 0)), _RAS_TO_LPS @ ras_affine


def read_nrrd_array(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(array (nz, ny, nx), LPS affine)`` of a 3-D NRRD file with ``space directions``."""
    import nrrd  # pynrrd: only the real-data tools need it

    data, header = nrrd.read(str(path), index_order="C")
    space = header.get("space")
    if data.ndim != 3 or space not in _NRRD_SPACES:
        raise ValueError(f"{path.name}: need a 3-D NRRD in LPS or RAS space, got {data.ndim}-D '{space}'")
    affine = np.eye(4)
    affine[:3, :3] = np.asarray(header["space directions"], dtype=np.float64).T  # rows are axis vectors
    affine[:3, 3] = np.asarray(header["space origin"], dtype=np.float64)
    return data, _NRRD_SPACES[space] @ affine


def read_array(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(array (nz, ny, nx), LPS affine)`` of a ``.nii``/``.nii.gz`` or ``.nrrd`` file."""
    name = path.name.lower()
    if name.endswith((".nii", ".nii.gz")):
        return read_nifti_array(path)
    if name.endswith(".nrrd"):
        return read_nrrd_array(path)
    raise ValueError(f"{path.name}: not a NIfTI or NRRD file")


def load_image(path: Path) -> Volume:
    """A NIfTI or NRRD CT image as a :class:`Volume` (HU kept as stored: int16 or float32)."""
    hu, affine = read_array(path)
    if hu.dtype.kind == "f":
        hu = hu.astype(np.float32, copy=False)
    return Volume(hu=hu, affine=affine, meta=VolumeMeta(modality="CT"))


def mask_on_grid(*, mask: np.ndarray, affine: np.ndarray, target: Volume) -> np.ndarray:
    """Boolean ``(nz, ny, nx)`` of ``mask > 0`` on ``target``'s grid (nearest neighbour if grids differ)."""
    if mask.shape == target.shape and np.allclose(affine, target.affine, atol=1e-3):
        return mask > 0
    # target voxel index -> LPS -> source voxel index, composed into one (i, j, k) affine.
    target_to_source = np.linalg.inv(affine) @ target.affine
    # ndimage works in array axis order (k, j, i): reverse both sides of the (i, j, k) map.
    flip = np.eye(4)[[2, 1, 0, 3]]
    matrix = flip @ target_to_source @ flip
    resampled = ndimage.affine_transform(
        (mask > 0).astype(np.uint8), matrix[:3, :3], offset=matrix[:3, 3],
        output_shape=target.shape, order=0, mode="constant", cval=0,
    )
    return resampled > 0
