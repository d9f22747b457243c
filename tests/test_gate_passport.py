"""Passport check of the gate: body part terms, coverage, resolution and tilt, each refusal with its
reason and the value seen (volumes built in memory: the checks read only tags and geometry)."""

from __future__ import annotations

import numpy as np
import pytest

from shared.dicom.volume import Volume, VolumeMeta, affine_from
from worker_gate.passport import passport_checks

CHEST_SHAPE = (60, 48, 48)
CHEST_SPACING = (8.0, 8.0, 5.0)  # 384 mm wide, 300 mm long: geometry of a chest CT on a tiny array


def _volume(*, shape=CHEST_SHAPE, spacing=CHEST_SPACING, direction=None, **meta) -> Volume:
    meta.setdefault("modality", "CT")
    return Volume(hu=np.zeros(shape, np.int16), affine=affine_from(spacing=spacing, direction=direction),
                  meta=VolumeMeta(**meta))


def _judge(volume: Volume, **limits):
    checks, reason = passport_checks(volume, **{"max_pixel_mm": 10.0, **limits})
    return {check.name: check for check in checks}, reason


@pytest.mark.parametrize("body_part", [
    "CHEST", "THORAX", "LUNG", "CHEST_ABDOMEN", "CHESTABDOMEN", "CHEST_TO_PELVIS", "TORSO", "chest abdomen pelvis",
    "TH CT CHEST WO C", "Thorax",
])
def test_chest_terms_and_synonyms_pass(body_part):
    checks, reason = _judge(_volume(body_part_examined=body_part))
    assert reason is None
    assert checks["body_part_examined"].passed and checks["body_part_examined"].value == body_part.upper()


@pytest.mark.parametrize("body_part", ["HEAD", "BRAIN", "KNEE", "HEADNECK", "ABDOMEN", "PELVIS", "ANKLE", "CT HEAD"])
def test_other_explicit_parts_are_refused_with_the_value_seen(body_part):
    checks, reason = _judge(_volume(body_part_examined=body_part))
    assert reason == "not_chest"
    assert not checks["body_part_examined"].passed and checks["body_part_examined"].value == body_part


@pytest.mark.parametrize("description", ["CT THORAX", "Chest 1.0 B70f", "LUNG SCREENING", "THX C+"])
def test_an_empty_body_part_is_supported_by_chest_descriptions(description):
    checks, reason = _judge(_volume(series_description=description))
    assert reason is None
    assert "SeriesDescription" in checks["body_part_examined"].detail


@pytest.mark.parametrize("meta", [{}, {"study_description": "CT HEAD"}, {"body_part_examined": "PARTIALBODY"}])
def test_missing_or_ambiguous_body_part_is_left_to_the_anatomy_check(meta):
    checks, reason = _judge(_volume(**meta))
    assert reason is None
    assert "anatomy check" in checks["body_part_examined"].detail


def test_other_modalities_are_refused_as_not_ct():
    checks, reason = _judge(_volume(modality="MR", body_part_examined="CHEST"))
    assert reason == "not_ct" and checks["modality"].value == "MR"


def test_a_short_slab_is_refused_for_coverage():
    checks, reason = _judge(_volume(shape=(18, 48, 48), spacing=(8.0, 8.0, 5.0)))
    assert reason == "insufficient_coverage"
    assert checks["z_coverage_mm"].value == 90.0 and checks["lateral_fov_mm"].passed


def test_a_small_field_crop_is_refused_for_coverage():
    checks, reason = _judge(_volume(shape=(60, 48, 48), spacing=(4.0, 4.0, 5.0)))
    assert reason == "insufficient_coverage"
    assert checks["lateral_fov_mm"].value == 192.0 and checks["z_coverage_mm"].passed


def test_a_long_scan_in_few_thick_slices_is_refused_for_its_slice_count():
    checks, reason = _judge(_volume(shape=(12, 48, 48), spacing=(8.0, 8.0, 10.0)))
    assert reason == "too_few_slices" and checks["slice_count"].value == 12


def test_coverage_follows_the_patient_axes_not_the_array_axes():
    sagittal = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])  # slices step right-left
    checks, reason = _judge(_volume(shape=(64, 60, 50), spacing=(1.0, 5.0, 6.0), direction=sagittal))
    assert checks["lateral_fov_mm"].value == 384.0 and checks["z_coverage_mm"].value == 300.0
    assert reason is None


def test_coarse_pixels_are_refused():
    checks, reason = _judge(_volume(spacing=(1.6, 1.6, 5.0), shape=(60, 200, 200)), max_pixel_mm=1.5)
    assert reason == "coarse_resolution" and checks["pixel_spacing_mm"].value == 1.6
    _, reason = _judge(_volume(spacing=(1.5, 1.5, 5.0), shape=(60, 200, 200)), max_pixel_mm=1.5)
    assert reason is None


def test_a_gantry_tilt_is_refused_with_its_angle():
    volume = _volume()
    tilt = np.radians(15.0)
    volume.affine[:3, 2] = np.array([0.0, np.sin(tilt), np.cos(tilt)]) * 5.0 / np.cos(tilt)  # slices sheared along y
    checks, reason = _judge(volume)
    assert reason == "gantry_tilt" and checks["gantry_tilt_deg"].value == pytest.approx(15.0, abs=0.01)
