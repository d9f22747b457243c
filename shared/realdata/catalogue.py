"""One registry of the real CT on this machine: the team's shared folder and the ``make data`` cache.

A case id is ``<source>/<name>``: ``shared/nsclc_pat1`` is read from ``../shared/data/ct`` (override
with ``CTRIAGE_SHARED_CT``), ``pypi/nsclc_pat1`` — the same images — from the cache that
``ctriage data fetch`` fills (``.data`` in the repository, override with ``CTRIAGE_REAL_DATA_CACHE``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from shared.dicom.volume import Volume
from shared.realdata.cases import CASES, CaseSpec, Format, Lesion, Role, Stated
from shared.realdata.loaders import load_image, mask_on_grid, read_array
from shared.realdata.rtstruct import rasterise_roi

Source = Literal["shared", "pypi"]
REPO = Path(__file__).resolve().parents[2]


def shared_ct_root() -> Path:
    """The team's real CT folder: ``$CTRIAGE_SHARED_CT`` or ``../shared/data/ct`` beside the repo."""
    return Path(os.environ.get("CTRIAGE_SHARED_CT", REPO.parent / "shared" / "data" / "ct"))


def cache_root() -> Path:
    """The ``make data`` cache: ``$CTRIAGE_REAL_DATA_CACHE`` or ``.data`` in the repository."""
    return Path(os.environ.get("CTRIAGE_REAL_DATA_CACHE", REPO / ".data"))


def cached_cases_root() -> Path:
    """Where ``ctriage data fetch`` extracts cases, one folder each with a ``PROVENANCE.json``."""
    return cache_root() / "real"


@dataclass(frozen=True)
class LesionBox:
    """A radiologist's box on slice ``k`` (at ``z_mm``): inclusive pixel bounds, ``i`` = column, ``j`` = row."""

    k: int
    z_mm: float
    i_min: int
    j_min: int
    i_max: int
    j_max: int
    label: str


@dataclass(frozen=True)
class RealCase:
    """One real image series in one place, with what the README states about it."""

    id: str
    source: Source
    spec: CaseSpec
    path: Path  # a DICOM folder or file, a NIfTI or an NRRD file
    lesion: Lesion | None
    lesion_path: Path | None

    @property
    def format(self) -> Format:
        """'dicom', 'nifti' or 'nrrd'."""
        return self.spec.format

    @property
    def role(self) -> Role:
        """What kind of scan it is for ctriage (chest_full, chest_crop, nonchest_ct, ...)."""
        return self.spec.role

    @property
    def shape(self) -> tuple[int, int, int]:
        """Expected array shape ``(nz, ny, nx)``."""
        return self.spec.shape

    @property
    def spacing(self) -> tuple[Stated | None, Stated | None, Stated | None]:
        """Expected voxel size ``(di, dj, dk)`` in mm as the README states it (None: not stated)."""
        return self.spec.spacing

    @property
    def licence(self) -> str:
        """The data's licence as far as known."""
        return self.spec.licence

    @property
    def present(self) -> bool:
        """Whether the image lies on disk."""
        return self.path.exists()

    def load(self) -> Volume:
        """The image as a :class:`Volume`; DICOM through ``read_study`` (raises its ``LoadError``, e.g. MR)."""
        if self.format == "dicom":
            from shared.dicom.reader import MIN_SLICES, read_study

            return read_study(self.path, min_slices=1 if self.role == "single_slice" else MIN_SLICES)
        return load_image(self.path)

    def lesion_mask(self, volume: Volume | None = None) -> np.ndarray | None:
        """Boolean ``(nz, ny, nx)`` lesion mask on the image grid; None when the case has no mask."""
        if self.lesion is None or self.lesion.kind == "boxes" or self.lesion_path is None:
            return None
        volume = volume if volume is not None else self.load()
        if self.lesion.kind == "rtstruct":
            return rasterise_roi(rtstruct=self.lesion_path, roi_name=self.lesion.roi_name, volume=volume)
        mask, affine = read_array(self.lesion_path)
        return mask_on_grid(mask=mask, affine=affine, target=volume)

    def lesion_boxes(self, volume: Volume | None = None) -> list[LesionBox]:
        """The radiologists' boxes on this series' slices (matched by SOPInstanceUID); [] if none."""
        if self.lesion is None or self.lesion.kind != "boxes" or self.lesion_path is None:
            return []
        if not self.lesion_path.exists():
            return []  # the boxes come with the shared folder only
        volume = volume if volume is not None else self.load()
        slice_of = {uid: k for k, uid in enumerate(volume.meta.sop_instance_uids)}
        annotations = json.loads(self.lesion_path.read_text())["annotations"]
        return [
            LesionBox(k=slice_of[a["sop_instance_uid"]], z_mm=a["z_mm"], label=a["label"],
                      i_min=a["bbox_pixels"]["xmin"], j_min=a["bbox_pixels"]["ymin"],
                      i_max=a["bbox_pixels"]["xmax"], j_max=a["bbox_pixels"]["ymax"])
            for a in annotations if a["sop_instance_uid"] in slice_of
        ]


def _case(spec: CaseSpec, source: Source) -> RealCase | None:
    root = shared_ct_root() if source == "shared" else cached_cases_root()
    relative = spec.shared if source == "shared" else spec.cached
    if relative is None:
        return None
    lesion = spec.shared_lesion if source == "shared" else spec.cached_lesion
    lesion_root = shared_ct_root() if lesion is not None and (source == "shared" or lesion.in_shared) else root
    return RealCase(
        id=f"{source}/{spec.name}", source=source, spec=spec, path=root / relative, lesion=lesion,
        lesion_path=lesion_root / lesion.path if lesion is not None else None,
    )


def all_cases() -> list[RealCase]:
    """Every known case from both sources, present on disk or not."""
    return [case for spec in CASES for source in ("shared", "pypi") if (case := _case(spec, source))]


def available_cases(role: Role | None = None) -> list[RealCase]:
    """The cases present on disk, optionally only those of one ``role``."""
    return [c for c in all_cases() if c.present and (role is None or c.role == role)]


def case(case_id: str) -> RealCase:
    """The case with id ``<source>/<name>`` (present or not); KeyError names the known ids."""
    for candidate in all_cases():
        if candidate.id == case_id:
            return candidate
    raise KeyError(f"no real case {case_id!r}; known: {', '.join(c.id for c in all_cases())}")
