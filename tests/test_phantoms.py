"""Synthetic chest CT phantoms: determinism, anatomy, pathologies, DICOM round trip, CLI output."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from shared.anatomy import BY_NAME, LEFT_LUNG, LUNG_LOBES as LUNG_LABELS, RIGHT_LUNG, label_of
from shared.dicom.nifti import read_label_nifti
from shared.dicom.reader import read_study
from shared.dicom.writer import dciodvfy_errors, write_ct_series
from shared.phantoms import PATHOLOGY_TYPES, generate_phantom
from shared.phantoms.cli import phantom_command

SHAPE = (96, 192, 192)
SEED = 11
LUNG_PARTS = {label_of("lung_vessels"), label_of("bronchi")}

# Median HU inside the lesion mask, and its change from the same-seed normal phantom, that each
# pathology must produce: (lowest median, highest median, smallest |change| with its sign).
EXPECTED_HU = {
    "solid_nodule": (-450, 120, +250),
    "part_solid_nodule": (-700, 120, +120),
    "ground_glass_nodule": (-800, -250, +80),
    "mass": (-150, 120, +500),
    "consolidation": (-250, 150, +400),
    "ground_glass_opacity": (-800, -300, +100),
    "emphysema": (-1024, -900, -40),
    "atelectasis": (-200, 150, +400),
    "pleural_effusion": (-60, 70, +500),
    "pneumothorax": (-1024, -940, -40),
    "pericardial_effusion": (-60, 70, +40),
    "lymphadenopathy": (-150, 150, +60),
}


@pytest.fixture(scope="module")
def normal():
    return generate_phantom(seed=SEED, shape=SHAPE)


def test_same_seed_gives_identical_phantom_and_other_seed_differs():
    a = generate_phantom(seed=3, shape=(40, 96, 96), pathologies=["nodule", "effusion"])
    b = generate_phantom(seed=3, shape=(40, 96, 96), pathologies=["nodule", "effusion"])
    c = generate_phantom(seed=4, shape=(40, 96, 96), pathologies=["nodule", "effusion"])
    assert np.array_equal(a.volume.hu, b.volume.hu)
    assert np.array_equal(a.labels, b.labels)
    assert np.array_equal(a.lesion_mask, b.lesion_mask)
    assert np.array_equal(a.volume.affine, b.volume.affine)
    assert [l.as_dict() for l in a.lesions] == [l.as_dict() for l in b.lesions]
    assert a.params.as_dict() == b.params.as_dict()
    assert not np.array_equal(a.volume.hu, c.volume.hu)


def test_volume_is_a_tagged_chest_ct_in_hu(normal):
    v = normal.volume
    assert v.shape == SHAPE and v.hu.dtype == np.int16
    assert normal.labels.shape == SHAPE and normal.labels.dtype == np.uint8
    assert v.meta.modality == "CT" and v.meta.body_part_examined == "CHEST"
    assert v.meta.study_instance_uid and v.meta.series_instance_uid and v.meta.patient_id
    corner = v.hu[:, :4, :4]
    assert np.median(corner) < -950  # air outside the body
    lung = np.isin(normal.labels, [BY_NAME[n].label for n in LUNG_LABELS])
    assert -920 < np.median(v.hu[lung]) < -760


def test_organs_are_plausible_in_size_and_place(normal):
    labels, v = normal.labels, normal.volume
    ml = np.prod(v.spacing) / 1000.0
    lobes = [BY_NAME[n].label for n in LUNG_LABELS]
    lungs_l = np.isin(labels, lobes + sorted(LUNG_PARTS)).sum() * ml / 1000.0
    assert 2.0 < lungs_l < 7.0
    for name in ("trachea", "bronchi", "lung_vessels", "heart", "aorta", "pulmonary_artery", "esophagus",
                 "superior_vena_cava", "sternum", "ribs", "vertebrae", "spinal_cord", "liver", "stomach",
                 "skin", "subcutaneous_fat", "skeletal_muscle", *LUNG_LABELS):
        assert (labels == label_of(name)).sum() * ml > 1.0, name
    heart_ml = (labels == label_of("heart")).sum() * ml
    assert 300 < heart_ml < 1500

    def centre(names):
        return _centre(normal, names)

    left, right = centre(LEFT_LUNG), centre(RIGHT_LUNG)
    heart, spine, sternum = centre(["heart"]), centre(["vertebrae"]), centre(["sternum"])
    assert left[0] > right[0]  # LPS: +x is the patient's left
    assert heart[0] > (left[0] + right[0]) / 2  # heart left of the midline
    assert sternum[1] < heart[1] < spine[1]  # anterior to posterior
    upper, lower = centre(["lung_upper_lobe_right"]), centre(["lung_lower_lobe_right"])
    assert upper[2] > lower[2]
    assert centre(["liver"])[2] < heart[2]


def _centre(phantom, names) -> np.ndarray:
    """LPS centre of the voxels labelled with any of ``names``."""
    k, j, i = np.nonzero(np.isin(phantom.labels, [label_of(n) for n in names]))
    return phantom.volume.index_to_lps(np.stack([i.mean(), j.mean(), k.mean()]))


def test_shoulder_girdle_lies_on_the_chest_wall(normal):
    ml = np.prod(normal.volume.spacing) / 1000.0
    lungs = _centre(normal, LUNG_LABELS)
    for side, sign in (("left", 1), ("right", -1)):
        scapula, clavicle = f"scapula_{side}", f"clavicula_{side}"
        for name in (scapula, clavicle):
            assert (normal.labels == label_of(name)).sum() * ml > 5.0, name
        s, c = _centre(normal, [scapula]), _centre(normal, [clavicle])
        assert sign * (s[0] - lungs[0]) > 40 and sign * (c[0] - lungs[0]) > 20  # LPS: +x = left
        assert s[1] > lungs[1] + 30  # behind the lungs
        assert c[1] < lungs[1] - 30 and c[2] > s[2] > lungs[2]  # clavicle in front, above the blade


def test_lung_is_denser_where_it_is_dependent(normal):
    """Supine patients: the posterior third of the lung is denser than the anterior third, by about
    as much as on the real scans (40-70 HU from front to back)."""
    lung = np.isin(normal.labels, [BY_NAME[n].label for n in LUNG_LABELS])
    rows = np.nonzero(lung)[1]
    values = normal.volume.hu[lung].astype(float)
    front, back = np.percentile(rows, [33, 67])
    gradient = np.median(values[rows > back]) - np.median(values[rows < front])
    assert 10 < gradient < 80


def _allowed(organ: str) -> set[int]:
    label = label_of(organ)
    return {label} | LUNG_PARTS if organ in LUNG_LABELS else {label}


@pytest.mark.parametrize("kind", PATHOLOGY_TYPES)
def test_pathology_mask_lies_in_its_organ_and_changes_hu(kind, normal):
    ph = generate_phantom(seed=SEED, shape=SHAPE, pathologies=[kind])
    assert ph.lesions, f"no {kind} was placed"
    assert all(lesion.type == kind for lesion in ph.lesions)
    voxel_ml = np.prod(ph.volume.spacing) / 1000.0
    for lesion in ph.lesions:
        mask = ph.lesion_mask == lesion.mask_id
        assert mask.any()
        assert lesion.volume_ml == pytest.approx(mask.sum() * voxel_ml, rel=1e-3, abs=1e-3)
        assert set(np.unique(ph.labels[mask]).tolist()) <= _allowed(lesion.organ), lesion.organ
        i, j, k = np.rint(lesion.center_ijk).astype(int)
        assert 0 <= k < SHAPE[0] and 0 <= j < SHAPE[1] and 0 <= i < SHAPE[2]
        assert np.allclose(ph.volume.index_to_lps(np.array(lesion.center_ijk)), lesion.center_lps, atol=0.05)
    mask = ph.lesion_mask > 0
    if kind == "cardiomegaly":
        heart = label_of("heart")
        assert (ph.labels == heart).sum() > 1.4 * (normal.labels == heart).sum()
        assert ph.lesions[0].details["cardiothoracic_ratio"] > 0.5
        return
    if kind == "bone_lesion":
        change = np.median(ph.volume.hu[mask].astype(float)) - np.median(normal.volume.hu[mask].astype(float))
        assert abs(change) > 100
        return
    low, high, change_min = EXPECTED_HU[kind]
    now = float(np.median(ph.volume.hu[mask]))
    before = float(np.median(normal.volume.hu[mask]))
    assert low <= now <= high, (kind, now)
    assert (now - before) * np.sign(change_min) >= abs(change_min), (kind, now, before)


def test_space_taking_pathologies_displace_the_lung(normal):
    ph = generate_phantom(seed=SEED, shape=SHAPE, pathologies=["pneumothorax", "pleural_effusion"])
    pleura = label_of("pleural_cavity")
    for lesion in ph.lesions:
        mask = ph.lesion_mask == lesion.mask_id
        assert np.all(ph.labels[mask] == pleura)
        was = normal.labels[mask]
        assert np.isin(was, [label_of(n) for n in LUNG_LABELS] + sorted(LUNG_PARTS)).mean() > 0.9
        assert not np.any(ph.labels[mask] == label_of("lung_vessels"))  # no vessel crosses air or fluid


def test_several_pathologies_per_study_get_distinct_masks():
    ph = generate_phantom(seed=5, shape=(64, 160, 160), pathologies=["nodule", "nodule", "mass", "ggo"])
    ids = [lesion.mask_id for lesion in ph.lesions]
    assert len(ids) >= 4 and len(set(ids)) == len(ids)
    assert set(np.unique(ph.lesion_mask).tolist()) == {0, *ids}


def test_unknown_pathology_is_refused():
    with pytest.raises(ValueError, match="unknown pathology"):
        generate_phantom(seed=1, shape=(16, 64, 64), pathologies=["dragon"])


def test_dicom_round_trip_keeps_geometry_and_values(tmp_path):
    ph = generate_phantom(seed=8, shape=(40, 128, 128), pathologies=["nodule"])
    files = write_ct_series(ph.volume, tmp_path / "series", uid_entropy="test")
    assert len(files) == 40
    back = read_study(tmp_path / "series")
    assert back.shape == ph.volume.shape
    assert np.allclose(back.affine, ph.volume.affine, atol=1e-4)
    assert np.array_equal(back.hu.astype(np.int16), ph.volume.hu)
    assert back.meta.modality == "CT" and back.meta.body_part_examined == "CHEST"
    assert back.meta.study_instance_uid == ph.volume.meta.study_instance_uid
    for path in (files[0], files[20]):
        assert dciodvfy_errors(path) == []


def test_cli_writes_series_masks_and_manifest(tmp_path):
    result = CliRunner().invoke(phantom_command, [
        "--out", str(tmp_path), "--count", "1", "--pathology", "nodule,effusion", "--negative", "not_dicom",
        "--seed", "21", "--shape", "40x96x96",
    ])
    assert result.exit_code == 0, result.output
    case = tmp_path / "phantom_000021"
    manifest = json.loads((case / "manifest.json").read_text())
    assert [l["type"] for l in manifest["lesions"]] == ["pleural_effusion", "solid_nodule"]
    assert len(list((case / "dicom").glob("*.dcm"))) == 40 == manifest["files"]["dicom_count"]
    labels, affine = read_label_nifti(case / "labels.nii.gz")
    lesions, _ = read_label_nifti(case / "lesions.nii.gz")
    assert labels.shape == lesions.shape == (40, 96, 96)
    assert np.allclose(affine, manifest["affine_lps"], atol=1e-4)
    for lesion in manifest["lesions"]:
        mask = lesions == lesion["mask_id"]
        assert mask.any()
        assert set(np.unique(labels[mask]).tolist()) <= _allowed(lesion["organ"])
        assert len(lesion["center_lps"]) == 3 and len(lesion["center_ijk"]) == 3 and lesion["size_mm"] > 0
    index = json.loads((tmp_path / "manifest.json").read_text())
    assert index["cases"][0]["case"] == "phantom_000021"
    assert index["negatives"][0]["expected_reason"] == "not_dicom"
