"""The built-in organ segmenter on real CT (lungs, heart, trachea, lesions inside the lungs, non-chest
scans) and on phantoms with ground truth (Dice thresholds measured by ``python -m bench organs``)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest

from bench.bench_organs import cta_reference, dice, organ_mask, real_cases
from shared.anatomy import LEFT_LUNG, LUNG_LOBES, RIGHT_LUNG, label_of
from shared.dicom.volume import Volume
from worker_gate.organs import OrganSegmentation, segment_organs

FULL_CHEST = ("lungdx_A0001_kernelL", "lungdx_A0001_kernelB", "pyradiomics_lung1", "pyradiomics_lung2",
              "totalseg_cta_thorax")
NON_CHEST = ("hnc_0522c0001", "totalseg_abdomen_dicom", "mr_brain_t1_sag")


@lru_cache(maxsize=None)
def _scan(name: str) -> tuple[Volume, OrganSegmentation, np.ndarray | None]:
    for scan in real_cases():
        if scan.name == name:
            volume = scan.load()
            return volume, segment_organs(volume), scan.lesion(volume)
    pytest.skip(f"real scan {name} is not in the shared folder")


@pytest.fixture
def scan(shared_ct, request):  # noqa: ANN001, ANN201 - parametrised by scan name
    """``(volume, segmentation, lesion mask)`` of the real scan named by the test's parameter."""
    return _scan(request.param)


def _ml(seg: OrganSegmentation, names: tuple[str, ...]) -> float:
    return sum(seg.found.get(n, 0.0) for n in names)


def _centre_lps(volume: Volume, mask: np.ndarray) -> np.ndarray:
    """LPS centre (mm) of a ``(nz, ny, nx)`` mask."""
    kji = np.argwhere(mask).mean(axis=0)
    return volume.index_to_lps(kji[::-1])


@pytest.mark.realdata
@pytest.mark.parametrize("scan", FULL_CHEST, indirect=True)
def test_full_chest_has_two_lungs_of_plausible_volume_on_the_right_sides(scan) -> None:  # noqa: ANN001
    volume, seg, _ = scan
    left, right = _ml(seg, LEFT_LUNG), _ml(seg, RIGHT_LUNG)
    assert left > 500 and right > 500, seg.found
    assert 1500 <= left + right <= 8000, seg.found
    # LPS: +x is the patient's left
    x_left = _centre_lps(volume, organ_mask(seg.labels, LEFT_LUNG))[0]
    x_right = _centre_lps(volume, organ_mask(seg.labels, RIGHT_LUNG))[0]
    assert x_left > x_right + 80.0


@pytest.mark.realdata
@pytest.mark.parametrize("scan", FULL_CHEST, indirect=True)
def test_heart_lies_between_the_lungs_below_the_trachea(scan) -> None:  # noqa: ANN001
    volume, seg, _ = scan
    assert 250 <= seg.found.get("heart", 0.0) <= 1500, seg.found
    heart = _centre_lps(volume, seg.labels == label_of("heart"))
    left = _centre_lps(volume, organ_mask(seg.labels, LEFT_LUNG))
    right = _centre_lps(volume, organ_mask(seg.labels, RIGHT_LUNG))
    trachea = _centre_lps(volume, seg.labels == label_of("trachea"))
    assert right[0] < heart[0] < left[0]
    assert heart[1] < trachea[1] + 10.0  # in front of (or level with) the trachea: smaller y is anterior
    assert trachea[2] > heart[2] + 40.0  # the trachea is well above the heart


@pytest.mark.realdata
@pytest.mark.parametrize("scan", FULL_CHEST, indirect=True)
def test_trachea_is_found_in_the_upper_slices_and_kept_out_of_the_lungs(scan) -> None:  # noqa: ANN001
    volume, seg, _ = scan
    assert 5 <= _ml(seg, ("trachea", "bronchi")) <= 150, seg.found
    lungs = organ_mask(seg.labels, LUNG_LOBES)
    trachea = seg.labels == label_of("trachea")
    assert _centre_lps(volume, trachea)[2] > _centre_lps(volume, lungs)[2]


@pytest.mark.realdata
@pytest.mark.parametrize("scan", ["pyradiomics_lung1", "pyradiomics_lung2"], indirect=True)
def test_labelled_lesions_lie_inside_the_lung_mask(scan) -> None:  # noqa: ANN001
    # lung1: a 1.4 ml nodule beside the trachea; lung2: a 48 ml mass on the posterior diaphragm
    # touching the chest wall, the hard case for a threshold lung mask (measured 1.00 and 0.94)
    _, seg, lesion = scan
    inside = (lesion & organ_mask(seg.labels, LUNG_LOBES)).sum() / lesion.sum()
    assert inside >= 0.9


@pytest.mark.realdata
@pytest.mark.parametrize("scan", ["totalseg_cta_thorax"], indirect=True)
def test_heart_agrees_with_totalsegmentator_on_the_ct_angiography(scan) -> None:  # noqa: ANN001
    # TotalSegmentator's mask is model output, not truth; measured Dice 0.78 (its heart excludes
    # the aortic root and the pericardial fat, ours does not)
    volume, seg, _ = scan
    truth = cta_reference(volume)["heart"]
    assert dice(seg.labels == label_of("heart"), truth) >= 0.7


@pytest.mark.realdata
@pytest.mark.parametrize("scan", ["lungfcp_0001_apex"], indirect=True)
def test_partial_apex_scan_returns_the_lungs_and_trachea_it_shows_and_no_heart(scan) -> None:  # noqa: ANN001
    _, seg, _ = scan
    assert _ml(seg, LEFT_LUNG) > 200 and _ml(seg, RIGHT_LUNG) > 200, seg.found
    assert seg.found.get("trachea", 0.0) > 5
    assert "heart" not in seg.found
    assert any("heart" in note for note in seg.notes)


@pytest.mark.realdata
@pytest.mark.parametrize("scan", NON_CHEST, indirect=True)
def test_non_chest_scans_show_no_pair_of_plausible_lungs_with_a_heart(scan) -> None:  # noqa: ANN001
    _, seg, _ = scan
    both_lungs = _ml(seg, LEFT_LUNG) >= 500 and _ml(seg, RIGHT_LUNG) >= 500
    assert not (both_lungs and seg.found.get("heart", 0.0) >= 250), seg.found
    assert "heart" not in seg.found


@pytest.mark.realdata
@pytest.mark.parametrize("scan", ["pyradiomics_lung1"], indirect=True)
def test_left_and_right_follow_the_affine_not_the_array_order(scan) -> None:  # noqa: ANN001
    volume, seg, _ = scan
    # the same patient stored with columns running right-to-left
    affine = volume.affine.copy()
    affine[:3, 3] = volume.index_to_lps(np.array([volume.shape[2] - 1, 0, 0]))
    affine[:3, 0] = -affine[:3, 0]
    mirrored = segment_organs(Volume(hu=volume.hu[:, :, ::-1].copy(), affine=affine))
    same = mirrored.labels[:, :, ::-1]
    for names in (LEFT_LUNG, RIGHT_LUNG, ("heart",)):
        assert dice(organ_mask(same, names), organ_mask(seg.labels, names)) > 0.97


def test_output_is_deterministic_and_on_the_volume_grid() -> None:
    from shared.phantoms.generate import generate_phantom

    volume = generate_phantom(seed=5, shape=(60, 128, 128)).volume
    first, second = segment_organs(volume), segment_organs(volume)
    assert first.labels.shape == volume.shape and first.labels.dtype == np.uint8
    assert np.array_equal(first.labels, second.labels) and first.found == second.found
    whole = segment_organs(volume, lobes=False)
    assert "lung_left" in whole.found and not set(LUNG_LOBES) & set(whole.found)


# Dice measured on phantom seeds 1-12 (`python -m bench organs` prints seeds 1-3), lowest / mean:
# left lung 0.875 / 0.89, right lung 0.91 / 0.92, heart 0.75 / 0.82, trachea 0.64 / 0.68,
# liver 0.87 / 0.89, vertebrae 0.85 / 0.88. Lungs stay below 0.9 because labels found on the
# 2.5 mm working grid are mapped back voxel-blockwise: a shell of about one working voxel around
# each lung is wrong either way (~250 ml of a 3 l lung). Thresholds sit a little under the lowest.
PHANTOM_DICE = {"left lung": 0.85, "right lung": 0.88, "heart": 0.72, "trachea": 0.6, "liver": 0.8,
                "vertebrae": 0.8}


@pytest.mark.parametrize("seed", [11, 12])
def test_phantom_organs_reach_the_measured_dice(seed: int) -> None:
    from bench.bench_organs import DICE_ORGANS, TRUTH_EXTRA
    from shared.phantoms.generate import generate_phantom

    phantom = generate_phantom(seed=seed)
    seg = segment_organs(phantom.volume)
    for organ, threshold in PHANTOM_DICE.items():
        names = DICE_ORGANS[organ]
        truth = organ_mask(phantom.labels, names + TRUTH_EXTRA.get(organ, ()))
        assert dice(organ_mask(seg.labels, names), truth) >= threshold, organ
