"""The baseline stage functions on small phantoms, called without a queue (as ``ctriage analyze`` does)."""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
import pytest

from pipeline_testkit import phantom, put_series, with_round_lesion, write_series
from shared.anatomy import LEFT_LUNG, LEFT_LUNG_ANY, RIGHT_LUNG, RIGHT_LUNG_ANY, label_of
from shared.contracts import GateRequest
from shared.dicom.volume import Volume, VolumeMeta
from shared.dicom.writer import write_ct_series
from shared.phantoms.negatives import write_negative
from shared.phantoms.other_parts import abdomen_volume
from shared.pipeline.artifacts import get_anomaly_map, get_label_map
from shared.pipeline.inprocess import analyze_in_process
from shared.report import ReportStatus, Verdict
from shared.storage.local import LocalStore
from worker_gate.stage import run_gate

NORMAL_SEED = 4242  # never a training seed of worker_screener.fit_baseline (900001...)


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "objects", fsync=False)


@pytest.fixture(scope="module")
def normal_phantom():
    return phantom(seed=NORMAL_SEED)


def _analyze(store: LocalStore, files: list[Path]):
    run_id = str(uuid.uuid4())
    prefix = put_series(store, files, f"studies/test/series/{run_id}")
    return analyze_in_process(store=store, source_prefix=prefix, run_id=run_id)


def test_a_normal_phantom_is_normal_with_both_lungs_on_the_right_side(store, tmp_path, normal_phantom):
    report = _analyze(store, write_series(normal_phantom.volume, tmp_path / "normal"))

    assert report.status is ReportStatus.done
    assert report.verdict is Verdict.normal
    assert report.score <= report.threshold
    assert report.study_instance_uid == normal_phantom.volume.meta.study_instance_uid
    assert [check.name for check in report.gate.checks if not check.passed] == []
    organs = get_label_map(store, report.artifacts["organs"])
    truth_left = np.isin(normal_phantom.labels, [label_of(n) for n in LEFT_LUNG])
    truth_right = np.isin(normal_phantom.labels, [label_of(n) for n in RIGHT_LUNG])
    found_left = np.isin(organs.labels, [label_of(n) for n in LEFT_LUNG_ANY])  # lobes or whole lungs
    found_right = np.isin(organs.labels, [label_of(n) for n in RIGHT_LUNG_ANY])
    assert (found_left & truth_left).sum() / found_left.sum() > 0.9  # patient left, not array left
    assert (found_right & truth_right).sum() / found_right.sum() > 0.9
    scores = get_anomaly_map(store, report.artifacts["anomaly"]).scores
    assert scores.shape == normal_phantom.volume.shape
    assert 0.0 <= scores.min() and scores.max() <= 1.0


def test_a_big_nodule_in_the_right_lung_is_found_there(store, tmp_path, normal_phantom):
    volume, centre_mm = with_round_lesion(normal_phantom, side="right", diameter_mm=30.0)
    files = write_series(volume, tmp_path / "nodule")
    report = _analyze(store, files)

    assert report.status is ReportStatus.done
    assert report.verdict is Verdict.pathology
    assert report.score > report.threshold
    top = report.findings[0]
    assert top.organ in RIGHT_LUNG_ANY
    assert np.all(np.asarray(top.bbox_mm.min) <= centre_mm) and np.all(centre_mm <= np.asarray(top.bbox_mm.max))
    assert np.linalg.norm(np.asarray(top.centroid_mm) - centre_mm) < 10.0
    assert 4.0 < top.volume_ml < 30.0  # a 30 mm sphere is 14 ml; the map blurs its edge by the kernel
    assert top.score_max >= report.voxel_threshold
    slice_z = {str(ds.SOPInstanceUID): float(ds.ImagePositionPatient[2]) for ds in map(_header, files)}
    assert abs(slice_z[top.key_sop_instance_uids[0]] - centre_mm[2]) < 15.0  # the key slice cuts the nodule


def test_an_mr_series_is_rejected_as_not_ct(store, tmp_path):
    case = write_negative("mr", tmp_path / "mr", seed=5)
    report = _analyze(store, case.files)

    assert report.status is ReportStatus.rejected
    assert report.reason == "not_ct"
    assert report.findings == [] and report.verdict is None


def test_a_chest_ct_tagged_head_is_rejected_by_its_tags(store, tmp_path):
    case = write_negative("tagged_head", tmp_path / "head", seed=6, shape=(64, 128, 128))
    report = _analyze(store, case.files)

    assert report.status is ReportStatus.rejected
    assert report.reason == "not_chest"
    failed = [check for check in report.gate.checks if not check.passed]
    assert [(check.name, check.value) for check in failed] == [("body_part_examined", "HEAD")]


def test_an_untagged_abdomen_is_rejected_for_missing_lungs(store, tmp_path):
    hu, grid = abdomen_volume((48, 128, 128), np.random.default_rng(3))
    volume = Volume(hu=np.rint(hu).astype(np.int16), affine=grid.affine, meta=VolumeMeta(modality="CT", patient_id="ABD"))
    report = _analyze(store, write_ct_series(volume, tmp_path / "abdomen", uid_entropy="abdomen"))

    assert report.status is ReportStatus.rejected
    assert report.reason == "no_chest_anatomy"
    assert {check.name for check in report.gate.checks if not check.passed} >= {"lung_left_ml", "lung_right_ml"}


def test_a_thin_slab_is_rejected_for_coverage(store, tmp_path, normal_phantom):
    volume = normal_phantom.volume
    slab = Volume(hu=volume.hu[40:56].copy(), affine=volume.affine.copy(), meta=volume.meta)
    slab.affine[:3, 3] = volume.index_to_lps(np.array([0.0, 0.0, 40.0]))
    files = write_series(slab, tmp_path / "slab")
    result = run_gate(store=store, request=GateRequest(run_id="slab", source_prefix=put_series(store, files, "studies/slab")))

    assert not result.accepted
    assert result.reason == "insufficient_coverage"
    assert not store.exists("runs/slab/volume.npz")


def _header(path: Path):  # type: ignore[no-untyped-def]
    import pydicom

    return pydicom.dcmread(path, stop_before_pixels=True)
