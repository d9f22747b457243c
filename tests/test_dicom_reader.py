"""The DICOM loader on real CT series and on synthetic series written with every encoding it must read."""

from __future__ import annotations

import io
import random
from collections import Counter
import zipfile
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.fileset import FileSet
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    EnhancedCTImageStorage,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGLosslessSV1,
    JPEGLSLossless,
    MRImageStorage,
    RLELossless,
    SecondaryCaptureImageStorage,
    XRayRadiationDoseSRStorage,
    generate_uid,
)

from shared.dicom import LoadError, Reason, Volume, affine_from
from shared.dicom.instances import read_instance
from shared.dicom.reader import choose_series, list_series, read_study
from shared.dicom.sources import ZipLimits, iter_dicom_sources
from shared.dicom.writer import ct_slice_datasets, save_dataset, write_ct_series

# --------------------------------------------------------------------------------------------------
# Real CT (../shared/data/ct): shapes and spacings from its README, checked against the headers.
# --------------------------------------------------------------------------------------------------

REAL_SERIES = [
    ("lungdx_A0001_adenocarcinoma/dicom_5mm_kernelL", (64, 512, 512), (0.841797, 0.841797, 5.0)),
    ("lungdx_A0001_adenocarcinoma/dicom_5mm_kernelB", (64, 512, 512), (0.841797, 0.841797, 5.0)),
    ("chest_ct_partial_apex_lungfcp_0001_every2nd", (49, 512, 512), (0.759766, 0.759766, 2.0)),
    ("nonchest_ct_abdomen_totalseg_example_dicom", (20, 512, 512), (0.976563, 0.976563, 2.0)),  # JPEG 2000
    ("nonchest_ct_headneck_hnc_0522c0001_every2nd", (57, 512, 512), (0.976563, 0.976563, 4.8)),
    ("nsclc_gtv_crops_ibsi_pycerr/pat_1/dicom", (60, 201, 204), (0.977, 0.977, 3.0)),
    ("nsclc_gtv_crops_ibsi_pycerr/pat_2/dicom", (41, 138, 141), (0.977, 0.977, 3.0)),
    ("nsclc_gtv_crops_ibsi_pycerr/pat_3/dicom", (46, 137, 136), (0.977, 0.977, 3.0)),
    ("nsclc_gtv_crops_ibsi_pycerr/pat_4/dicom", (56, 172, 178), (0.976563, 0.976563, 3.0)),
    ("midrc_ricord_covid_slabs/covid_negative/patient_1", (10, 512, 512), (0.507813, 0.507813, 3.0)),
    ("midrc_ricord_covid_slabs/covid_negative/patient_2", (10, 512, 512), (0.783203, 0.783203, 3.0)),
    ("midrc_ricord_covid_slabs/covid_negative/patient_3", (10, 512, 512), (0.621094, 0.621094, 3.0)),
    ("midrc_ricord_covid_slabs/covid_negative/patient_4", (10, 512, 512), (0.683594, 0.683594, 3.0)),
    ("midrc_ricord_covid_slabs/covid_negative/patient_5", (10, 512, 512), (0.683594, 0.683594, 3.0)),
    ("midrc_ricord_covid_slabs/covid_positive/patient_1", (10, 512, 512), (0.759766, 0.759766, 3.0)),
    ("midrc_ricord_covid_slabs/covid_positive/patient_2", (10, 512, 512), (0.65625, 0.65625, 3.0)),
    ("midrc_ricord_covid_slabs/covid_positive/patient_3", (10, 512, 512), (0.607422, 0.607422, 3.0)),
]


def _header_positions(folder: Path) -> dict[str, np.ndarray]:
    """SOPInstanceUID -> ImagePositionPatient, read with pydicom directly (the test's own oracle)."""
    positions = {}
    for path in folder.glob("*.dcm"):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        uid = ds.SOPInstanceUID or ds.file_meta.MediaStorageSOPInstanceUID  # the abdomen set blanks the former
        positions[uid] = np.array([float(v) for v in ds.ImagePositionPatient])
    return positions


@pytest.mark.realdata
@pytest.mark.parametrize(("folder", "shape", "spacing"), REAL_SERIES, ids=[s[0] for s in REAL_SERIES])
def test_real_series_load_with_readme_geometry_and_plausible_hu(shared_ct, folder, shape, spacing):
    volume = read_study(shared_ct / folder)

    assert volume.shape == shape
    assert volume.spacing == pytest.approx(spacing, abs=2e-3)
    assert np.allclose(volume.direction, np.eye(3), atol=1e-6)  # all these are axial, head first
    positions = _header_positions(shared_ct / folder)
    # k runs from the most inferior slice toward the head (+z in LPS), whatever the file order
    z = np.array([positions[uid][2] for uid in volume.meta.sop_instance_uids])
    assert volume.origin[2] == pytest.approx(min(p[2] for p in positions.values()))
    assert np.allclose(z, volume.origin[2] + np.arange(shape[0]) * volume.affine[2, 2], atol=1e-3)
    assert np.allclose(volume.index_to_lps([0, 0, shape[0] - 1]), positions[volume.meta.sop_instance_uids[-1]])
    assert volume.hu.min() <= -950  # air outside the body or in the lungs
    assert volume.hu.max() >= 300  # bone
    assert -1000 < np.median(volume.hu) < 100
    assert volume.meta.modality == "CT"
    assert volume.warnings == []


@pytest.mark.realdata
def test_shuffled_file_order_gives_the_identical_volume(shared_ct):
    files = sorted((shared_ct / "chest_ct_partial_apex_lungfcp_0001_every2nd").glob("*.dcm"))
    shuffled = files[:]
    random.Random(7).shuffle(shuffled)

    reference, other = read_study(files), read_study(shuffled)

    assert np.array_equal(reference.hu, other.hu)
    assert np.array_equal(reference.affine, other.affine)
    assert reference.meta.sop_instance_uids == other.meta.sop_instance_uids


@pytest.mark.realdata
def test_jpeg2000_series_decodes_to_pydicom_values_sorted_by_position_not_instance_number(shared_ct):
    folder = shared_ct / "nonchest_ct_abdomen_totalseg_example_dicom"
    volume = read_study(folder)

    by_uid = {ds.file_meta.MediaStorageSOPInstanceUID: ds for ds in map(pydicom.dcmread, folder.glob("*.dcm"))}
    for k, uid in enumerate(volume.meta.sop_instance_uids):
        ds = by_uid[uid]
        expected = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        assert np.array_equal(volume.hu[k], expected)
    instance_numbers = [int(by_uid[uid].InstanceNumber) for uid in volume.meta.sop_instance_uids]
    assert instance_numbers == sorted(instance_numbers, reverse=True)  # this scanner numbers head to feet


@pytest.mark.realdata
def test_real_zip_and_bytes_give_the_same_volume_as_the_folder(shared_ct, tmp_path):
    folder = shared_ct / "nsclc_gtv_crops_ibsi_pycerr/pat_2/dicom"
    archive = tmp_path / "study.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.glob("*.dcm")):
            zf.write(path, f"study/{path.name}")
    reference = read_study(folder)

    for source in (archive, archive.read_bytes(), [p.read_bytes() for p in folder.glob("*.dcm")]):
        volume = read_study(source)
        assert np.array_equal(volume.hu, reference.hu)
        assert np.array_equal(volume.affine, reference.affine)


@pytest.mark.realdata
def test_study_folder_with_rtstruct_and_nifti_loads_the_ct_and_says_what_it_skipped(shared_ct):
    volume = read_study(shared_ct / "nsclc_gtv_crops_ibsi_pycerr/pat_1")

    assert volume.shape == (60, 201, 204)
    assert "ignored 3 file(s) that are not DICOM" in volume.warnings  # ct, gtv_mask, ibsi mask (.nii.gz)
    assert any("not_image" in w for w in volume.warnings)  # the RTSTRUCT


@pytest.mark.realdata
def test_two_reconstructions_of_one_study_choose_one_and_either_can_be_named(shared_ct):
    root = shared_ct / "lungdx_A0001_adenocarcinoma"
    series = list_series(root)
    assert [(s.modality, s.n_instances, s.orientation, s.convolution_kernel) for s in series] == [
        ("CT", 64, "axial", "L"), ("CT", 64, "axial", "B"),
    ]

    default = read_study(root)
    kernel_b = read_study(root, series_instance_uid=series[1].series_instance_uid)

    assert default.meta.series_instance_uid == series[0].series_instance_uid  # tie: lower SeriesNumber
    assert any(w.startswith("chose series") for w in default.warnings)
    assert kernel_b.meta.convolution_kernel == "B"
    assert np.array_equal(default.affine, kernel_b.affine)  # same slice positions
    assert not np.array_equal(default.hu, kernel_b.hu)


@pytest.mark.realdata
def test_real_negatives_give_their_reason_codes(shared_ct):
    with pytest.raises(LoadError) as mr:
        read_study(shared_ct / "nonchest_mr_brain_t1_sag_siemens")
    assert mr.value.reason is Reason.NOT_CT and mr.value.values["modality"] == "MR"

    singles = shared_ct / "covid19_nysbu_single_slices"
    with pytest.raises(LoadError) as one_slice:
        read_study(sorted(singles.glob("*.dcm"))[0])
    assert one_slice.value.reason is Reason.TOO_FEW_SLICES
    with pytest.raises(LoadError) as many_studies:
        read_study(singles)
    assert many_studies.value.reason is Reason.NOT_ONE_STUDY and many_studies.value.values["n_studies"] == 20

    with pytest.raises(LoadError) as two_slices:  # header-stripped: no Modality, CT SOP class
        read_study(shared_ct / "lungmask_test_slices")
    assert two_slices.value.reason is Reason.TOO_FEW_SLICES and two_slices.value.values["n_slices"] == 2
    assert read_study(shared_ct / "lungmask_test_slices", min_slices=2).shape == (2, 512, 512)


@pytest.mark.realdata
def test_ricord_padding_becomes_air(shared_ct):
    folder = shared_ct / "midrc_ricord_covid_slabs/covid_negative/patient_2"
    ds = pydicom.dcmread(sorted(folder.glob("*.dcm"))[0])
    assert int(ds.PixelPaddingValue) == -2000

    volume = read_study(folder)
    k = volume.meta.sop_instance_uids.index(ds.SOPInstanceUID)

    padded = ds.pixel_array == -2000
    assert padded.any()
    assert np.all(volume.hu[k][padded] == -1024)
    assert np.array_equal(volume.hu[k][~padded], ds.pixel_array[~padded] - 1024)


# --------------------------------------------------------------------------------------------------
# Synthetic series
# --------------------------------------------------------------------------------------------------


def _phantom_hu(shape=(12, 40, 48), seed=0) -> np.ndarray:
    """Air, a soft-tissue ellipse with noise, a bone disc; every slice different (order matters)."""
    rng = np.random.default_rng(seed)
    nz, ny, nx = shape
    y, x = np.mgrid[:ny, :nx]
    body = ((y - ny / 2) / (0.4 * ny)) ** 2 + ((x - nx / 2) / (0.45 * nx)) ** 2 < 1
    bone = (y - 0.7 * ny) ** 2 + (x - nx / 2) ** 2 < (0.1 * nx) ** 2
    hu = np.full(shape, -1000, np.int16)
    for k in range(nz):
        hu[k][body] = 40 + 5 * k
        hu[k][bone] = 700 + 20 * k
    hu += rng.integers(-20, 21, shape, dtype=np.int16)
    return hu


def _volume(hu=None, *, spacing=(0.7, 0.8, 2.5), direction=None, origin=(-20.0, -30.0, -200.0)) -> Volume:
    hu = _phantom_hu() if hu is None else hu
    return Volume(hu=hu, affine=affine_from(spacing=spacing, origin=origin, direction=direction))


def _rotation(axis: np.ndarray, degrees: float) -> np.ndarray:
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    t = np.radians(degrees)
    return np.eye(3) + np.sin(t) * k + (1 - np.cos(t)) * k @ k


def _assert_same_volume(read: Volume, written: Volume) -> None:
    assert read.shape == written.shape
    assert np.array_equal(read.hu, written.hu)
    assert np.allclose(read.affine, written.affine, atol=1e-6)
    assert read.meta.sop_instance_uids == written.meta.sop_instance_uids


@pytest.mark.parametrize(
    "syntax",
    [ExplicitVRLittleEndian, ImplicitVRLittleEndian, DeflatedExplicitVRLittleEndian, RLELossless, JPEGLSLossless,
     JPEG2000Lossless],
    ids=lambda uid: uid.name,
)
def test_round_trip_is_exact_in_every_lossless_transfer_syntax(tmp_path, syntax):
    volume = _volume()
    write_ct_series(volume, tmp_path, transfer_syntax_uid=syntax)

    read = read_study(tmp_path)

    _assert_same_volume(read, volume)
    assert read.hu.dtype == np.int16
    assert read.meta.transfer_syntax_uid == syntax
    assert read.warnings == []


def test_round_trip_of_an_oblique_series(tmp_path):
    volume = _volume(direction=_rotation([1, 2, 0.5], 35))
    write_ct_series(volume, tmp_path)

    read = read_study(tmp_path)

    _assert_same_volume(read, volume)
    assert list_series(tmp_path)[0].orientation == "oblique"


def test_gantry_tilt_is_detected_and_the_sheared_affine_maps_every_slice_exactly(tmp_path):
    tilt = 20.0
    affine = affine_from(spacing=(0.7, 0.8, 2.5), origin=(-20.0, -30.0, -200.0))
    # Planes tilted about x; the table still moves along z: position step (0, 0, dz), not the normal.
    affine[:3, :2] = _rotation([1, 0, 0], tilt) @ affine[:3, :2]
    affine[:3, 2] = [0, 0, 2.5]
    volume = Volume(hu=_phantom_hu(), affine=affine)
    write_ct_series(volume, tmp_path)

    read = read_study(tmp_path)

    _assert_same_volume(read, volume)
    (warning,) = [w for w in read.warnings if "gantry tilt" in w]
    assert f"{tilt:.2f} degrees" in warning


def test_duplicate_slice_is_dropped_with_a_warning(tmp_path):
    volume = _volume()
    paths = write_ct_series(volume, tmp_path)
    copy = pydicom.dcmread(paths[4])
    copy.SOPInstanceUID = generate_uid()
    save_dataset(copy, tmp_path / "copy.dcm")

    read = read_study(tmp_path)

    assert np.array_equal(read.hu, volume.hu)
    assert any("1 duplicate slice" in w for w in read.warnings)


def test_missing_slice_is_interpolated_and_reported(tmp_path):
    volume = _volume()
    paths = write_ct_series(volume, tmp_path)
    paths[5].unlink()

    read = read_study(tmp_path)

    assert read.shape == volume.shape
    assert np.allclose(read.affine, volume.affine)
    expected = np.rint((volume.hu[4].astype(np.float32) + volume.hu[6]) / 2)
    assert np.array_equal(read.hu[5], expected)
    assert np.array_equal(np.delete(read.hu, 5, axis=0), np.delete(volume.hu, 5, axis=0))
    assert read.meta.sop_instance_uids[5] == ""
    assert any(w.startswith("missing slices: 1 gap(s)") for w in read.warnings)


def test_uneven_spacing_is_resampled_to_a_uniform_grid(tmp_path):
    volume = _volume()
    datasets = list(ct_slice_datasets(volume))
    moved = datasets[6]  # 0.8 mm toward slice 7 (spacing 2.5 mm): gaps 3.3 and 1.7 mm
    moved.ImagePositionPatient = [*moved.ImagePositionPatient[:2], float(moved.ImagePositionPatient[2]) + 0.8]
    for k, ds in enumerate(datasets):
        save_dataset(ds, tmp_path / f"{k}.dcm")

    read = read_study(tmp_path)

    assert read.shape == volume.shape
    assert read.spacing == pytest.approx(volume.spacing)
    assert any(w.startswith("uneven slice spacing") for w in read.warnings)
    assert read.meta.sop_instance_uids[6] == ""  # grid slice 6 lies between written slices 5 and 6
    weight = (2.5 - 0.0) / 3.3  # grid position of slice 6 within the 3.3 mm gap from slice 5
    expected = np.rint((1 - weight) * volume.hu[5].astype(np.float32) + weight * volume.hu[6])
    assert np.abs(read.hu[6].astype(int) - expected).max() <= 1


def test_unusable_geometry_is_refused(tmp_path):
    volume = _volume()
    paths = write_ct_series(volume, tmp_path / "hole")
    for path in paths[3:9]:  # 6 slices gone: a 17.5 mm hole
        path.unlink()
    with pytest.raises(LoadError) as hole:
        read_study(tmp_path / "hole")
    assert hole.value.reason is Reason.INCONSISTENT_GEOMETRY and hole.value.values["largest_gap_mm"] == 17.5

    datasets = list(ct_slice_datasets(_volume()))
    del datasets[3].ImagePositionPatient
    _write(datasets, tmp_path / "no_position")
    with pytest.raises(LoadError) as no_position:
        read_study(tmp_path / "no_position")
    assert no_position.value.reason is Reason.INCONSISTENT_GEOMETRY
    assert no_position.value.values["slices_without_geometry"] == 1

    datasets = list(ct_slice_datasets(_volume()))
    datasets[2].ImageOrientationPatient = [0, 1, 0, 0, 0, -1]
    _write(datasets, tmp_path / "mixed")
    with pytest.raises(LoadError) as mixed:
        read_study(tmp_path / "mixed")
    assert mixed.value.reason is Reason.INCONSISTENT_GEOMETRY


def _enhanced_ct(volume: Volume) -> Dataset:
    """One Enhanced CT Image object holding the volume's slices as frames, stored in reverse order."""
    slices = list(ct_slice_datasets(volume))[::-1]
    first = slices[0]
    ds = Dataset()
    ds.file_meta = first.file_meta
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID", "Modality", "PatientID",
                    "Rows", "Columns", "SamplesPerPixel", "PhotometricInterpretation", "BitsAllocated",
                    "BitsStored", "HighBit", "PixelRepresentation"):
        setattr(ds, keyword, first.get(keyword))
    ds.SOPClassUID, ds.SOPInstanceUID = EnhancedCTImageStorage, generate_uid()
    ds.ImageType = ["ORIGINAL", "PRIMARY", "VOLUME", "NONE"]
    ds.NumberOfFrames = len(slices)
    shared = Dataset()
    shared.PixelMeasuresSequence = [Dataset()]
    shared.PixelMeasuresSequence[0].PixelSpacing = first.PixelSpacing
    shared.PixelMeasuresSequence[0].SliceThickness = first.SliceThickness
    shared.PlaneOrientationSequence = [Dataset()]
    shared.PlaneOrientationSequence[0].ImageOrientationPatient = first.ImageOrientationPatient
    shared.PixelValueTransformationSequence = [Dataset()]
    shared.PixelValueTransformationSequence[0].RescaleIntercept = first.RescaleIntercept
    shared.PixelValueTransformationSequence[0].RescaleSlope = first.RescaleSlope
    shared.PixelValueTransformationSequence[0].RescaleType = "HU"
    ds.SharedFunctionalGroupsSequence = [shared]
    per_frame = []
    for item in slices:
        frame = Dataset()
        frame.PlanePositionSequence = [Dataset()]
        frame.PlanePositionSequence[0].ImagePositionPatient = item.ImagePositionPatient
        frame.CTImageFrameTypeSequence = [Dataset()]
        frame.CTImageFrameTypeSequence[0].FrameType = ["ORIGINAL", "PRIMARY", "VOLUME", "NONE"]
        per_frame.append(frame)
    ds.PerFrameFunctionalGroupsSequence = per_frame
    ds.PixelData = b"".join(item.PixelData for item in slices)
    return ds


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, JPEG2000Lossless], ids=lambda uid: uid.name)
def test_enhanced_ct_multiframe_reads_like_the_classic_series(tmp_path, syntax):
    volume = _volume()
    save_dataset(_enhanced_ct(volume), tmp_path / "enhanced.dcm", transfer_syntax_uid=syntax)

    read = read_study(tmp_path / "enhanced.dcm")

    assert np.array_equal(read.hu, volume.hu)
    assert np.allclose(read.affine, volume.affine, atol=1e-6)
    assert read.meta.sop_class_uid == EnhancedCTImageStorage
    assert list_series(tmp_path)[0].n_frames == volume.shape[0]


def _jpeg_lossless_sv1(image: np.ndarray, precision: int) -> bytes:
    """A JPEG lossless (ITU T.81 process 14, predictor 1) codestream for one grey image."""
    rows, cols = image.shape
    x = image.astype(np.int64)
    prediction = np.empty_like(x)
    prediction[0, 0] = 1 << (precision - 1)
    prediction[0, 1:] = x[0, :-1]
    prediction[1:, 0] = x[:-1, 0]
    prediction[1:, 1:] = x[1:, :-1]
    difference = (x - prediction) % 65536
    difference[difference > 32768] -= 65536
    bits = []
    for value in difference.ravel().tolist():
        size = abs(value).bit_length()
        bits.append(format(size, "05b"))  # every category 0..16 has a 5-bit code (table below)
        if 0 < size < 16:
            bits.append(format(value if value > 0 else value + (1 << size) - 1, f"0{size}b"))
    stream = "".join(bits)
    stream += "1" * (-len(stream) % 8)
    entropy = bytearray()
    for i in range(0, len(stream), 8):
        byte = int(stream[i:i + 8], 2)
        entropy += b"\xff\x00" if byte == 0xFF else bytes([byte])
    counts = bytes([0, 0, 0, 0, 17] + [0] * 11)
    huffman = b"\xff\xc4" + (2 + 1 + 16 + 17).to_bytes(2, "big") + b"\x00" + counts + bytes(range(17))
    size = rows.to_bytes(2, "big") + cols.to_bytes(2, "big")
    frame = b"\xff\xc3\x00\x0b" + bytes([precision]) + size + b"\x01\x01\x11\x00"  # SOF3, 1 component
    scan = b"\xff\xda\x00\x08\x01\x01\x00\x01\x00\x00"
    return b"\xff\xd8" + huffman + frame + scan + bytes(entropy) + b"\xff\xd9"


def test_jpeg_lossless_series_is_exact(tmp_path):
    volume = _volume()
    for k, ds in enumerate(ct_slice_datasets(volume)):
        stored = np.frombuffer(ds.PixelData, np.uint16).reshape(ds.Rows, ds.Columns)
        ds.PixelData = encapsulate([_jpeg_lossless_sv1(stored, int(ds.BitsStored))])
        ds["PixelData"].VR = "OB"
        ds.file_meta.TransferSyntaxUID = JPEGLosslessSV1
        ds.save_as(tmp_path / f"{k}.dcm", enforce_file_format=True)

    _assert_same_volume(read_study(tmp_path), volume)


def test_jpeg_baseline_8bit_series_decodes_within_lossy_error(tmp_path):
    from PIL import Image

    volume = _volume()
    for k, ds in enumerate(ct_slice_datasets(volume)):
        grey = np.clip((volume.hu[k].astype(np.int32) + 1024) // 8, 0, 255).astype(np.uint8)
        encoded = io.BytesIO()
        Image.fromarray(grey).save(encoded, "JPEG", quality=95)
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
        ds.RescaleSlope, ds.RescaleIntercept = 8, -1024
        ds.PixelData = encapsulate([encoded.getvalue()])
        ds["PixelData"].VR = "OB"
        ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
        ds.save_as(tmp_path / f"{k}.dcm", enforce_file_format=True)

    read = read_study(tmp_path)

    assert read.hu.dtype == np.float32
    quantised = np.clip((volume.hu.astype(np.int32) + 1024) // 8, 0, 255) * 8 - 1024
    error = np.abs(read.hu - quantised) / 8  # in grey levels
    assert np.median(error) <= 1 and error.mean() < 2  # lossy at quality 95: a grey level or so


def test_rescale_slope_and_per_slice_intercepts_give_float_hu(tmp_path):
    volume = _volume()
    for k, ds in enumerate(ct_slice_datasets(volume)):
        stored = np.frombuffer(ds.PixelData, np.uint16)
        ds.RescaleSlope, ds.RescaleIntercept = 0.5, -1100.25 + k  # the same HU, encoded differently
        ds.BitsStored, ds.HighBit = 16, 15
        ds.PixelData = np.rint((stored - 1024.0 + 1100.25 - k) / 0.5).astype(np.uint16).tobytes()
        save_dataset(ds, tmp_path / f"{k}.dcm")

    read = read_study(tmp_path)

    assert read.hu.dtype == np.float32
    assert np.allclose(read.hu, volume.hu, atol=0.25)


def test_unused_high_bits_are_ignored(tmp_path):
    volume = _volume()
    for k, ds in enumerate(ct_slice_datasets(volume)):
        assert ds.BitsStored == 12
        stored = np.frombuffer(ds.PixelData, np.uint16)
        ds.PixelData = (stored | 0xA000).tobytes()  # e.g. an old overlay in bits 12..15
        save_dataset(ds, tmp_path / f"{k}.dcm")

    assert np.array_equal(read_study(tmp_path).hu, volume.hu)


def test_pixel_padding_range_becomes_air(tmp_path):
    hu = _phantom_hu()
    hu[:, :3, :] = -2000  # outside the reconstruction circle
    volume = _volume(hu)
    for k, ds in enumerate(ct_slice_datasets(volume)):
        assert ds.PixelRepresentation == 1
        ds.PixelPaddingValue = -2000
        ds.PixelPaddingRangeLimit = -1999
        save_dataset(ds, tmp_path / f"{k}.dcm")

    read = read_study(tmp_path)

    assert np.all(read.hu[:, :3, :] == -1024)
    assert np.array_equal(read.hu[:, 3:, :], hu[:, 3:, :])


def _write(datasets, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for ds in datasets:
        save_dataset(ds, folder / f"{ds.SOPInstanceUID}.dcm")


def _dose_report(study_uid: str) -> Dataset:
    ds = Dataset()
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.SOPClassUID, ds.SOPInstanceUID = XRayRadiationDoseSRStorage, generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.Modality = study_uid, generate_uid(), "SR"
    return ds


def test_default_series_skips_localizer_dose_report_and_secondary_capture(tmp_path):
    study = generate_uid()
    thin = _volume(_phantom_hu((16, 40, 48)), spacing=(0.7, 0.7, 1.0))
    thick = _volume(_phantom_hu((8, 40, 48)), spacing=(0.7, 0.7, 2.0))
    coronal = _volume(_phantom_hu((20, 40, 48)), direction=_rotation([1, 0, 0], 90))
    scout = _volume(_phantom_hu((3, 40, 48)))
    screen = _volume(_phantom_hu((3, 40, 48)))
    for v in (thin, thick, coronal, scout, screen):
        v.meta.study_instance_uid = study
    _write(ct_slice_datasets(thin, SliceThickness=1.0, SeriesNumber=3), tmp_path)
    _write(ct_slice_datasets(thick, SliceThickness=2.0, SeriesNumber=2), tmp_path)
    _write(ct_slice_datasets(coronal, SeriesNumber=4), tmp_path)
    _write(ct_slice_datasets(scout, ImageType=["ORIGINAL", "PRIMARY", "LOCALIZER"], SeriesNumber=1), tmp_path)
    _write(ct_slice_datasets(screen, SOPClassUID=SecondaryCaptureImageStorage, SeriesNumber=99), tmp_path)
    _write([_dose_report(study)], tmp_path)

    series = {s.series_instance_uid: s for s in list_series(tmp_path)}
    volume = read_study(tmp_path)

    assert series[scout.meta.series_instance_uid].skip_reason == "localizer"
    assert series[scout.meta.series_instance_uid].is_localizer
    assert series[screen.meta.series_instance_uid].skip_reason == "secondary_capture"
    assert [s.skip_reason for s in series.values()].count("dose_report") == 1
    assert series[coronal.meta.series_instance_uid].orientation == "coronal"
    assert volume.meta.series_instance_uid == thin.meta.series_instance_uid  # axial, most slices
    assert np.array_equal(volume.hu, thin.hu)
    named = read_study(tmp_path, series_instance_uid=coronal.meta.series_instance_uid)
    assert np.array_equal(named.hu, coronal.hu)


def test_choose_series_picks_from_headers_parsed_elsewhere(tmp_path):
    volume, scout = _volume(), _volume(_phantom_hu((3, 40, 48)))
    scout.meta.study_instance_uid = volume.meta.study_instance_uid = generate_uid()
    paths = write_ct_series(volume, tmp_path / "ct")
    paths += write_ct_series(scout, tmp_path / "scout", ImageType=["ORIGINAL", "PRIMARY", "LOCALIZER"])
    instances = [read_instance(str(p), p) for p in paths]

    chosen, warnings = choose_series(instances, rejected=Counter({Reason.NOT_DICOM: 1}))

    assert [i.sop_instance_uid for i in chosen] == volume.meta.sop_instance_uids
    assert warnings == ["ignored 1 file(s) that are not DICOM", "skipped 3 localizer object(s)"]
    with pytest.raises(LoadError) as error:
        choose_series(instances[-3:])
    assert error.value.reason is Reason.NO_CT_SERIES


def test_study_level_refusals(tmp_path):
    mr = _volume()
    _write(ct_slice_datasets(mr, Modality="MR", SOPClassUID=MRImageStorage), tmp_path / "mr")
    with pytest.raises(LoadError) as not_ct:
        read_study(tmp_path / "mr")
    assert not_ct.value.reason is Reason.NOT_CT and not_ct.value.values["modality"] == "MR"

    _write(ct_slice_datasets(_volume(), ImageType=["ORIGINAL", "PRIMARY", "LOCALIZER"]), tmp_path / "scout")
    with pytest.raises(LoadError) as scout_only:
        read_study(tmp_path / "scout")
    assert scout_only.value.reason is Reason.NO_CT_SERIES

    _write([_dose_report(generate_uid())], tmp_path / "sr")
    with pytest.raises(LoadError) as sr_only:
        read_study(tmp_path / "sr")
    assert sr_only.value.reason is Reason.NO_PIXEL_DATA

    first, second = _volume(), _volume()
    _write(ct_slice_datasets(first), tmp_path / "two")
    _write(ct_slice_datasets(second), tmp_path / "two")
    with pytest.raises(LoadError) as two_studies:
        read_study(tmp_path / "two")
    assert two_studies.value.reason is Reason.NOT_ONE_STUDY
    named = read_study(tmp_path / "two", series_instance_uid=second.meta.series_instance_uid)
    assert np.array_equal(named.hu, second.hu)
    with pytest.raises(LoadError) as unknown:
        read_study(tmp_path / "two", series_instance_uid="1.2.3")
    assert unknown.value.reason is Reason.SERIES_NOT_FOUND


def test_broken_files_give_their_reason_codes(tmp_path):
    paths = write_ct_series(_volume(), tmp_path / "series")
    data = paths[0].read_bytes()
    garbled = data[:132] + np.random.default_rng(1).integers(0, 256, 900, np.uint8).tobytes() + data[1032:]
    cases = {
        Reason.EMPTY_INPUT: [b"", [], tmp_path / "empty"],
        Reason.NOT_DICOM: [b"%PDF-1.4 not an image" * 20, np.arange(1000, dtype=np.uint8).tobytes()],
        # cut in the pixels, between header elements, inside the file meta; header garbled after "DICM"
        Reason.TRUNCATED: [data[: len(data) - 1000], data[:400], data[:200], garbled],
    }
    (tmp_path / "empty").mkdir()
    for reason, sources in cases.items():
        for source in sources:
            with pytest.raises(LoadError) as error:
                read_study(source)
            assert error.value.reason is reason, source if not isinstance(source, bytes) else len(source)

    paths[3].write_bytes(paths[3].read_bytes()[:-100])  # one slice of the series cut short
    with pytest.raises(LoadError) as truncated:
        read_study(tmp_path / "series")
    assert truncated.value.reason is Reason.TRUNCATED


def test_corrupt_compressed_pixel_data_is_reported(tmp_path):
    paths = write_ct_series(_volume(), tmp_path, transfer_syntax_uid=JPEGLSLossless)
    ds = pydicom.dcmread(paths[2])
    frame = bytearray(pydicom.encaps.generate_frames(ds.PixelData, number_of_frames=1).__next__())
    frame[20:60] = b"\x00" * 40  # wipe the start of the scan data
    ds.PixelData = encapsulate([bytes(frame[:len(frame) // 2])])
    ds.save_as(paths[2], enforce_file_format=True)

    with pytest.raises(LoadError) as error:
        read_study(tmp_path)
    assert error.value.reason is Reason.CORRUPT_PIXEL_DATA


def test_junk_beside_a_series_is_ignored_with_a_warning(tmp_path):
    volume = _volume()
    write_ct_series(volume, tmp_path)
    (tmp_path / "notes.txt").write_text("scanned on Tuesday")
    (tmp_path / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1" + bytes(100))

    read = read_study(tmp_path)

    assert np.array_equal(read.hu, volume.hu)
    assert "ignored 2 file(s) that are not DICOM" in read.warnings


def test_media_export_with_dicomdir_is_read(tmp_path):
    volume = _volume()
    volume.meta.patient_id = "P-1"
    media = FileSet()
    for path in write_ct_series(volume, tmp_path / "series"):
        media.add(path)
    media.write(tmp_path / "cd")  # DICOMDIR + PT000000/ST000000/SE000000/IM00000n, as on a CD

    read = read_study(tmp_path / "cd")

    _assert_same_volume(read, volume)
    assert [s.skip_reason for s in list_series(tmp_path / "cd")].count("not_image") == 1  # the DICOMDIR


def test_raw_dataset_without_part10_header_is_read(tmp_path):
    volume = _volume()
    for k, ds in enumerate(ct_slice_datasets(volume)):
        buffer = io.BytesIO()
        ds.file_meta = pydicom.dataset.FileMetaDataset()
        pydicom.dcmwrite(buffer, ds, implicit_vr=True, little_endian=True)  # no preamble, no file meta
        (tmp_path / f"{k}.raw").write_bytes(buffer.getvalue())
    assert not (tmp_path / "0.raw").read_bytes()[128:132] == b"DICM"

    _assert_same_volume(read_study(tmp_path), volume)


# --------------------------------------------------------------------------------------------------
# Sources and zip safety
# --------------------------------------------------------------------------------------------------


def _zip_bytes(members: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def test_sources_accept_files_folders_zips_bytes_and_lists(tmp_path):
    paths = write_ct_series(_volume(), tmp_path / "series")
    archive = _zip_bytes({f"a/{p.name}": p.read_bytes() for p in paths[:3]})
    (tmp_path / "study.zip").write_bytes(archive)

    assert [n for n, _ in iter_dicom_sources(tmp_path / "series")] == [str(p) for p in paths]
    assert all(isinstance(item, Path) for _, item in iter_dicom_sources(tmp_path / "series"))
    assert [n for n, _ in iter_dicom_sources(tmp_path / "study.zip")] == [
        f"{tmp_path / 'study.zip'}:a/{p.name}" for p in paths[:3]
    ]
    mixed = list(iter_dicom_sources([paths[0], archive, [paths[1].read_bytes()]]))
    assert len(mixed) == 1 + 3 + 1
    assert all(isinstance(item, bytes) for _, item in mixed[1:])


def test_zip_with_path_traversal_or_bomb_is_refused(tmp_path):
    dicom = write_ct_series(_volume(), tmp_path)[0].read_bytes()
    unsafe = {
        "traversal": _zip_bytes({"ok.dcm": dicom, "../../etc/evil.dcm": dicom}),
        "absolute": _zip_bytes({"/etc/evil.dcm": dicom}),
        "windows": _zip_bytes({"..\\evil.dcm": dicom}),
        "bomb": _zip_bytes({"zeros.dcm": bytes(50 * 1024 * 1024)}),
    }
    for name, archive in unsafe.items():
        with pytest.raises(LoadError) as error:
            list(iter_dicom_sources(archive))
        assert error.value.reason is Reason.UNSAFE_ARCHIVE, name

    many = _zip_bytes({f"{i}.dcm": dicom for i in range(6)})
    with pytest.raises(LoadError) as too_many:
        read_study(many, limits=ZipLimits(max_members=5))
    assert too_many.value.reason is Reason.UNSAFE_ARCHIVE and too_many.value.values["members"] == 6
    with pytest.raises(LoadError) as too_big:
        read_study(many, limits=ZipLimits(max_total_bytes=len(dicom) * 5))
    assert too_big.value.reason is Reason.UNSAFE_ARCHIVE

    with pytest.raises(LoadError) as empty:
        read_study(_zip_bytes({}))
    assert empty.value.reason is Reason.EMPTY_INPUT
