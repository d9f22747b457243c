"""Gate negatives are written as intended: read their tags back, and load them with the reader."""

from __future__ import annotations

import pydicom
import pytest

from shared.dicom.errors import LoadError
from shared.dicom.reader import read_study
from shared.phantoms.negatives import (
    CR_IMAGE_STORAGE, DX_FOR_PRESENTATION, MR_IMAGE_STORAGE, NEGATIVE_KINDS, write_negative,
)

SHAPE = (24, 96, 96)


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    root = tmp_path_factory.mktemp("negatives")
    return {kind: write_negative(kind, root / kind, seed=3, shape=SHAPE) for kind in NEGATIVE_KINDS}


def _first(case):
    return pydicom.dcmread(case.files[0])


@pytest.mark.parametrize("kind", sorted(NEGATIVE_KINDS))
def test_each_negative_loads_or_is_refused_with_its_reason(kind, cases):
    case = cases[kind]
    assert case.files and all(p.exists() for p in case.files)
    if case.expected_reason is None:
        volume = read_study(case.folder)
        assert volume.meta.modality == "CT"
    else:
        with pytest.raises(LoadError) as info:
            read_study(case.folder)
        assert info.value.reason.value == case.expected_reason


@pytest.mark.parametrize("kind,body_part", [("head", "HEAD"), ("abdomen", "ABDOMEN"), ("knee", "KNEE"),
                                            ("tagged_head", "HEAD")])
def test_other_body_parts_say_so_in_their_tags(kind, body_part, cases):
    ds = _first(cases[kind])
    assert ds.Modality == "CT" and ds.BodyPartExamined == body_part
    assert len(cases[kind].files) == SHAPE[0]


def test_other_body_parts_have_no_lung(cases):
    for kind in ("head", "abdomen", "knee"):
        hu = read_study(cases[kind].folder).hu
        body = hu > -300
        lungish = (hu > -950) & (hu < -700)
        assert lungish.sum() < 0.02 * body.sum(), kind


def test_chest_without_body_part_has_none(cases):
    ds = _first(cases["no_body_part"])
    assert ds.Modality == "CT" and "BodyPartExamined" not in ds


def test_mr_and_xray_objects_carry_their_sop_classes(cases):
    mr = _first(cases["mr"])
    assert mr.SOPClassUID == MR_IMAGE_STORAGE and mr.Modality == "MR" and mr.ScanningSequence == "SE"
    cr, dx = _first(cases["cr"]), _first(cases["dx"])
    assert cr.SOPClassUID == CR_IMAGE_STORAGE and cr.Modality == "CR" and cr.BodyPartExamined == "CHEST"
    assert dx.SOPClassUID == DX_FOR_PRESENTATION and dx.Modality == "DX"
    assert dx.PresentationIntentType == "FOR PRESENTATION"
    assert cr.pixel_array.ndim == 2


def test_localizer_is_a_ct_scout(cases):
    ds = _first(cases["localizer"])
    assert ds.Modality == "CT" and list(ds.ImageType)[2] == "LOCALIZER"
    assert len(cases["localizer"].files) == 1


def test_damaged_and_foreign_files_are_not_readable_dicom(cases):
    for path in cases["truncated"].files:
        with pytest.raises(Exception):
            pydicom.dcmread(path).pixel_array  # noqa: B018
    for path in cases["not_dicom"].files:
        with pytest.raises(pydicom.errors.InvalidDicomError):
            pydicom.dcmread(path)
    with pytest.raises(ValueError, match="unknown negative"):
        write_negative("spleen", cases["head"].folder, seed=1)
