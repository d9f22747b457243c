"""The localize stage through the in-process pipeline: findings per organ on phantoms with known
lesions, the calibrated verdict, the findings mask, the DICOM outputs it stores, and determinism."""

from __future__ import annotations

import io
from pathlib import Path

import highdicom as hd
import numpy as np
import pytest
from click.testing import CliRunner

from localizer_testkit import LesionStudy, lesion_study, normal_study
from pipeline_testkit import put_series
from shared.contracts import RunArtifacts, Stage
from shared.dicom.writer import dciodvfy_errors
from shared.pipeline.artifacts import get_anomaly_map, get_label_map
from shared.pipeline.cli import analyze_command
from shared.pipeline.inprocess import analyze_in_process
from shared.report import ReportStatus, ReportV1, Verdict
from shared.storage.local import LocalStore
from worker_screener.baseline import load_parameters

MIN_LESION_MM = 5.0
VOLATILE = {"created_at", "timings"}
"""Report fields that differ between runs of the same input (wall clock)."""


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> LocalStore:
    return LocalStore(tmp_path_factory.mktemp("objects"), fsync=False)


@pytest.fixture(scope="module")
def lesions(tmp_path_factory: pytest.TempPathFactory) -> LesionStudy:
    return lesion_study(tmp_path_factory.mktemp("lesions"))


@pytest.fixture(scope="module")
def report(store: LocalStore, lesions: LesionStudy) -> ReportV1:
    prefix = put_series(store, lesions.files, "series/lesions")
    return analyze_in_process(store=store, source_prefix=prefix, run_id="run-lesions")


def test_every_lesion_the_screener_finds_is_reported_in_its_organ_around_its_centroid(
    store: LocalStore, lesions: LesionStudy, report: ReportV1,
) -> None:
    scores = get_anomaly_map(store, report.artifacts["anomaly"]).scores
    voxel_mm3 = float(np.prod(lesions.volume.spacing))
    found = [lesion for lesion in lesions.lesions
             if (scores[lesion.mask] >= report.voxel_threshold).sum() * voxel_mm3 >= 30.0]
    assert found, "the baseline screener should flag the 40 mm lesion at least"
    for lesion in found:
        diameter_mm = 2 * (lesion.mask.sum() * voxel_mm3 * 3 / (4 * np.pi)) ** (1 / 3)
        assert diameter_mm >= MIN_LESION_MM
        holding = [f for f in report.findings
                   if np.all(np.array(f.bbox_mm.min) <= lesion.centre_mm) and np.all(lesion.centre_mm <= np.array(f.bbox_mm.max))]
        assert holding, f"no finding's box holds the lesion at {lesion.centre_mm}"
        assert holding[0].organ in lesion.organs


def test_findings_fill_every_public_field_and_are_sorted_by_score_sum(lesions: LesionStudy, report: ReportV1) -> None:
    assert report.findings
    assert [f.score_sum for f in report.findings] == sorted((f.score_sum for f in report.findings), reverse=True)
    sops = set(lesions.volume.meta.sop_instance_uids)
    for finding in report.findings:
        assert finding.organs[finding.organ] == max(finding.organs.values())
        assert sum(finding.organs.values()) == pytest.approx(1.0, abs=1e-3)
        assert finding.volume_ml > 0
        assert report.voxel_threshold <= finding.score_mean <= finding.score_max <= 1.0
        assert finding.score_sum >= finding.score_mean
        assert all(lo <= hi for lo, hi in zip(finding.bbox_voxel.min, finding.bbox_voxel.max))
        assert all(lo <= c <= hi for lo, c, hi in zip(finding.bbox_mm.min, finding.centroid_mm, finding.bbox_mm.max))
        assert finding.slice_range == (finding.bbox_voxel.min[2], finding.bbox_voxel.max[2])
        assert len(finding.key_sop_instance_uids) == 1 and finding.key_sop_instance_uids[0] in sops


def test_the_verdict_follows_the_calibrated_rule_with_score_and_threshold(report: ReportV1) -> None:
    parameters = load_parameters()
    assert report.status is ReportStatus.done
    assert report.threshold == parameters.study_threshold and report.voxel_threshold == parameters.voxel_threshold
    assert report.score_unit == parameters.score_unit
    assert report.verdict is (Verdict.pathology if report.score > report.threshold else Verdict.normal)
    assert report.verdict is Verdict.pathology  # a 40 mm solid lesion is far above the calibrated threshold


def test_the_findings_mask_labels_each_finding_in_report_order(store: LocalStore, lesions: LesionStudy, report: ReportV1) -> None:
    assert report.artifacts["findings"] == RunArtifacts.for_run("run-lesions").findings
    mask = get_label_map(store, report.artifacts["findings"]).labels
    voxel_ml = float(np.prod(lesions.volume.spacing)) / 1000
    assert int(mask.max()) == len(report.findings)
    for number, finding in enumerate(report.findings, start=1):
        k, j, i = np.nonzero(mask == number)
        assert len(k) * voxel_ml == pytest.approx(finding.volume_ml, abs=1e-4)  # volume_ml is rounded to 0.1 µl
        assert (i.min(), j.min(), k.min()) == finding.bbox_voxel.min
        assert (i.max(), j.max(), k.max()) == finding.bbox_voxel.max


def test_seg_and_sr_round_trip_through_the_stored_artifacts(store: LocalStore, report: ReportV1) -> None:
    seg = hd.seg.segread(io.BytesIO(store.get_bytes(report.artifacts["seg"])))
    assert seg.StudyInstanceUID == report.study_instance_uid
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == report.series_instance_uid
    assert list(seg.segment_numbers) == list(range(1, len(report.findings) + 1))
    sr = hd.sr.srread(io.BytesIO(store.get_bytes(report.artifacts["sr"])))
    groups = sr.content.get_volumetric_roi_measurement_groups()
    assert len(groups) == len(report.findings)
    assert all(group.referenced_segment.referenced_sop_instance_uid == seg.SOPInstanceUID for group in groups)
    key_images = sorted(name for name in report.artifacts if name.startswith("key_image_"))
    assert key_images == [f"key_image_{n:03d}" for n in range(1, len(report.findings) + 1)]


def test_a_normal_phantom_is_normal_without_findings_seg_or_key_images(store: LocalStore, tmp_path: Path) -> None:
    _, files = normal_study(tmp_path / "ct")
    report = analyze_in_process(store=store, source_prefix=put_series(store, files, "series/normal"), run_id="run-normal")
    assert report.status is ReportStatus.done and report.verdict is Verdict.normal
    assert report.findings == [] and report.score == 0.0
    assert "seg" not in report.artifacts and not any(name.startswith("key_image_") for name in report.artifacts)
    hd.sr.srread(io.BytesIO(store.get_bytes(report.artifacts["sr"])))  # the SR still carries the verdict


def test_rerunning_gives_an_identical_report(store: LocalStore, report: ReportV1) -> None:
    again = analyze_in_process(store=store, source_prefix="series/lesions/", run_id="run-lesions")
    assert again.model_dump(exclude=VOLATILE) == report.model_dump(exclude=VOLATILE)
    assert set(again.timings) == {stage.value for stage in Stage}
    elsewhere = analyze_in_process(store=store, source_prefix="series/lesions/", run_id="run-lesions-2")
    assert elsewhere.findings == report.findings
    assert (elsewhere.verdict, elsewhere.score) == (report.verdict, report.score)


def test_analyze_out_writes_the_report_beside_valid_dicom_outputs_and_the_pdf(lesions: LesionStudy, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(analyze_command, [str(lesions.files[0].parent), "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = ReportV1.model_validate_json((out / "report.json").read_text())
    assert report.verdict is Verdict.pathology and report.findings
    dicom = ["seg.dcm", "sr.dcm", *(f"key_image_{n:03d}.dcm" for n in range(1, len(report.findings) + 1))]
    assert {name: dciodvfy_errors(out / name) for name in dicom} == {name: [] for name in dicom}
    assert (out / "report.pdf").read_bytes().startswith(b"%PDF")
