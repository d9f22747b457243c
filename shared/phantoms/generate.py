"""``generate_phantom``: a synthetic chest CT with organ labels and ground-truth lesions, from a seed.

Independent random streams (anatomy, scanner, trees, pathologies, HU, noise) are derived from the
seed, so a phantom with pathologies shares its anatomy and acquisition with the normal phantom of
the same seed: the difference between the two volumes is the pathology alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from pydicom.uid import generate_uid

from shared.dicom.volume import Volume, VolumeMeta
from shared.phantoms.anatomy import AnatomyParams, sample_anatomy
from shared.phantoms.body import BodyModel, build_body_model, draw_body, draw_table
from shared.phantoms.geometry import Grid
from shared.phantoms.lung_texture import LungTexture
from shared.phantoms.mediastinum import draw_mediastinum
from shared.phantoms.pathologies import Lesion, PathologyContext, apply_pathologies, plan_pathologies
from shared.phantoms.scanner import ScannerParams, acquire, sample_scanner
from shared.phantoms.tissues import Tissue, tissue_hu
from shared.phantoms.vessels import draw_lung_trees

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
STREAMS = {"anatomy": 1, "scanner": 2, "trees": 3, "pathology": 4, "hu": 5, "noise": 6, "meta": 7, "texture": 8}


@dataclass
class PhantomParams:
    """The randomised parameters a phantom was built from."""

    seed: int
    anatomy: AnatomyParams
    scanner: ScannerParams
    pathologies: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        """JSON-ready parameters."""
        return {"seed": self.seed, "anatomy": self.anatomy.as_dict(), "scanner": self.scanner.as_dict(),
                "pathologies": list(self.pathologies)}


@dataclass
class Phantom:
    """A synthetic chest CT and its ground truth, all on the grid of ``volume``."""

    volume: Volume
    labels: np.ndarray
    """``uint8`` organ label map (ids of :mod:`shared.anatomy`)."""
    lesions: list[Lesion]
    lesion_mask: np.ndarray
    """``uint8``: 0 = no lesion, ``n`` = voxel of the lesion whose ``mask_id`` is ``n``."""
    params: PhantomParams


def _rng(seed: int, stream: str) -> np.random.Generator:
    return np.random.default_rng([int(seed), STREAMS[stream]])


def generate_phantom(
    *,
    seed: int,
    shape: tuple[int, int, int] | None = None,
    pathologies: Sequence[str] = (),
    contrast: str | None = None,
    slice_thickness_mm: float | None = None,
) -> Phantom:
    """Build the phantom of ``seed``: ``shape`` ``(nz, ny, nx)`` (default 512x512, slices from the
    drawn slice thickness), with the given :data:`PATHOLOGY_TYPES` (repeats allowed), contrast phase
    ``none``/``arterial``/``venous`` (default random)."""
    anatomy = sample_anatomy(_rng(seed, "anatomy"))
    plan = plan_pathologies(pathologies, anatomy, _rng(seed, "pathology"))
    coverage = anatomy.scan_top - anatomy.scan_bottom
    scanner, shape = sample_scanner(
        _rng(seed, "scanner"), body_width_mm=2 * anatomy.body_half_width * 1.08 + 20.0,
        coverage_mm=coverage, shape=shape, contrast=contrast, slice_thickness_mm=slice_thickness_mm,
    )
    grid = _grid(anatomy, scanner, shape)
    labels = np.zeros(shape, dtype=np.uint8)
    tissue = np.zeros(shape, dtype=np.uint8)
    draw_table(grid, anatomy, tissue)
    model = build_body_model(grid, anatomy)
    draw_body(model, labels, tissue)
    hilum = draw_mediastinum(model, labels, tissue)
    ctx = PathologyContext(model=model, labels=labels, tissue=tissue, hilum=hilum,
                           lesion_mask=np.zeros(shape, dtype=np.uint8), rng=_rng(seed, "pathology"))
    plan.apply_space(ctx)
    draw_lung_trees(grid, labels, tissue, hilum, _rng(seed, "trees"))
    lut = tissue_hu(phase=scanner.contrast_phase, rng=_rng(seed, "hu"), lung_hu=anatomy.lung_hu)
    hu = _hounsfield(model, tissue, lut, _rng(seed, "texture"))
    ctx.hu, ctx.lut = hu, lut
    lesions = apply_pathologies(plan, ctx)
    del tissue
    stored = acquire(hu, scanner, _rng(seed, "noise"))
    del hu
    meta = _meta(seed, anatomy, scanner)
    volume = Volume(hu=stored, affine=grid.affine, meta=meta)
    params = PhantomParams(seed=int(seed), anatomy=anatomy, scanner=scanner, pathologies=list(plan.names))
    return Phantom(volume=volume, labels=labels, lesions=lesions, lesion_mask=ctx.lesion_mask, params=params)


def _grid(p: AnatomyParams, sc: ScannerParams, shape: tuple[int, int, int]) -> Grid:
    """Axial grid centred on the scanner isocentre; the body sits at ``p.body_offset`` from it."""
    nz, ny, nx = shape
    bx, by, table_z = p.body_offset
    dx = dy = sc.pixel_mm
    dz = sc.slice_spacing_mm
    origin = (-(nx - 1) / 2 * dx - bx, -(ny - 1) / 2 * dy - by, p.scan_bottom + dz / 2)
    return Grid(shape=shape, spacing=(dx, dy, dz), origin=origin, lps_offset=(bx, by, table_z))


def _hounsfield(model: BodyModel, tissue: np.ndarray, lut: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """HU before acquisition: tissue values, lung with its gravity gradient and texture
    (:mod:`shared.phantoms.lung_texture`)."""
    hu = np.empty(tissue.shape, dtype=np.float32)
    texture = LungTexture(model, rng)
    rows, cols = model.rows, model.cols
    for k in range(tissue.shape[0]):
        np.take(lut, tissue[k], out=hu[k])
        lung = tissue[k, rows, cols] == Tissue.LUNG
        if lung.any():
            crop = hu[k, rows, cols]
            crop[lung] += texture.offsets(k)[lung]
    return hu


def _meta(seed: int, p: AnatomyParams, sc: ScannerParams) -> VolumeMeta:
    """Synthetic patient, study and series identity (no real person); UIDs derived from the seed."""
    rng = _rng(seed, "meta")
    year = int(rng.integers(1940, 2000))
    study_day = int(rng.integers(0, 365 * 5))
    study_date = np.datetime64("2020-01-01") + np.timedelta64(study_day, "D")
    return VolumeMeta(
        study_instance_uid=generate_uid(entropy_srcs=["ctriage-phantom", str(seed), "study"]),
        series_instance_uid=generate_uid(entropy_srcs=["ctriage-phantom", str(seed), "series"]),
        frame_of_reference_uid=generate_uid(entropy_srcs=["ctriage-phantom", str(seed), "frame"]),
        sop_class_uid=CT_IMAGE_STORAGE,
        patient_id=f"PHANTOM{seed:08d}",
        patient_name=f"PHANTOM^{seed}",
        patient_birth_date=f"{year}{int(rng.integers(1, 13)):02d}{int(rng.integers(1, 29)):02d}",
        patient_sex=str(rng.choice(["M", "F"])),
        study_date=str(study_date).replace("-", ""),
        study_time=f"{int(rng.integers(7, 19)):02d}{int(rng.integers(0, 60)):02d}00",
        study_id=f"{seed % 100000}",
        accession_number=f"PH{seed:08d}",
        study_description="CT CHEST",
        series_description=f"Synthetic chest {sc.slice_thickness_mm:g}mm {sc.convolution_kernel}",
        series_number=2,
        modality="CT",
        body_part_examined="CHEST",
        protocol_name="CHEST",
        manufacturer=sc.manufacturer,
        convolution_kernel=sc.convolution_kernel,
        slice_thickness=sc.slice_thickness_mm,
        image_type=["ORIGINAL", "PRIMARY", "AXIAL"],
    )
