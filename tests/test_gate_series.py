"""Which series of a multi-series study the gate analyses, and that it says so."""

from __future__ import annotations

import dataclasses

import pytest

from shared.dicom.volume import Volume
from shared.dicom.writer import write_ct_series
from shared.phantoms.generate import generate_phantom
from worker_gate.series import kernel_rank, read_chosen_series

STUDY_UID = "1.2.826.0.1.3680043.8.498.4242"


@pytest.fixture(scope="module")
def chest() -> Volume:
    volume = generate_phantom(seed=21, shape=(40, 48, 48)).volume  # ~300 mm long
    volume.meta.study_instance_uid = STUDY_UID
    return volume


def _write(volume: Volume, folder, *, number: int, kernel: str, **overrides) -> str:
    uid = f"{STUDY_UID}.{number}"
    meta = dataclasses.replace(volume.meta, series_instance_uid=uid, sop_instance_uids=[])
    write_ct_series(Volume(hu=volume.hu, affine=volume.affine, meta=meta), folder / f"s{number}",
                    uid_entropy=f"series-{number}", SeriesNumber=number, ConvolutionKernel=kernel, **overrides)
    return uid


def test_the_soft_tissue_series_covering_the_chest_is_chosen_over_bone_kernel_and_thin_slab(chest, tmp_path):
    _write(chest, tmp_path, number=1, kernel="BONE")
    wanted = _write(chest, tmp_path, number=2, kernel="B30f")
    slab = Volume(hu=chest.hu[:8].copy(), affine=chest.affine, meta=chest.meta)
    _write(slab, tmp_path, number=3, kernel="B30f", SliceThickness=1.0)  # thinner, but a slab

    volume, check = read_chosen_series(tmp_path)

    assert volume.meta.series_instance_uid == wanted
    assert check.passed and check.value["series_instance_uid"] == wanted
    assert check.value["ct_series_in_study"] == 3 and check.value["convolution_kernel"] == "B30f"
    assert "lung/soft-tissue kernel" in check.detail


def test_a_thinner_series_wins_when_both_cover_the_chest(chest, tmp_path):
    _write(chest, tmp_path, number=1, kernel="STANDARD", SliceThickness=5.0)
    thin = _write(chest, tmp_path, number=2, kernel="LUNG", SliceThickness=2.5)  # 40 x 2.5 mm: still covers

    volume, check = read_chosen_series(tmp_path)

    assert volume.meta.series_instance_uid == thin and check.value["slice_thickness_mm"] == 2.5


@pytest.mark.parametrize("kernel,rank", [("B30f", 0), ("Br40d", 0), ("B70f", 0), ("LUNG", 0), ("STANDARD", 0), ("L", 0),
                                         ("FC13", 0), ("BONE", 1), ("H70h", 1), ("", 1)])
def test_kernels_are_ranked_lung_and_soft_tissue_first(kernel, rank):
    assert kernel_rank(kernel) == rank
