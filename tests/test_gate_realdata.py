"""The gate on every real scan of ``../shared/data/ct`` and of ``make data``: full chest CTs pass with
the built-in backend; slabs, crops and partial scans are refused for coverage; non-chest scans are
refused with their reason. DICOM cases go through the stage itself (object store in and out)."""

from __future__ import annotations

import dataclasses
import uuid
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from pipeline_testkit import put_series

from shared.anatomy import LUNG_ANY, label_of
from shared.contracts import GateRequest
from shared.dicom.volume import Volume
from shared.pipeline.artifacts import get_label_map, get_volume
from shared.realdata.catalogue import RealCase, available_cases
from shared.storage.local import LocalStore
from worker_gate.backend import BUILTIN
from worker_gate.decide import check_volume
from worker_gate.stage import run_gate

COVERAGE_ROLES = ("chest_slab", "chest_crop", "chest_partial")
CASES = {f"{case.spec.name}-{case.source}": case for case in available_cases() if case.role != "single_slice"}


@dataclasses.dataclass
class Judged:
    accepted: bool
    reason: str | None
    checks: dict
    labels: np.ndarray | None = None
    volume: Volume | None = None


@cache
def _judge(key: str, root: Path) -> Judged:
    case: RealCase = CASES[key]
    if case.spec.format != "dicom":
        verdict = check_volume(case.load(), backend=BUILTIN)
        labels = verdict.segmentation.labels if verdict.segmentation else None
        return Judged(verdict.accepted, verdict.reason, {c.name: c for c in verdict.checks}, labels)
    store = LocalStore(root / key, fsync=False)
    files = [path for path in sorted(case.path.rglob("*")) if path.is_file()]
    run_id = str(uuid.uuid4())
    result = run_gate(store=store, request=GateRequest(run_id=run_id, source_prefix=put_series(store, files, "in")),
                      backend=BUILTIN)
    judged = Judged(result.accepted, result.reason, {c.name: c for c in result.checks})
    if result.accepted:
        judged.labels = get_label_map(store, result.organs_key).labels
        judged.volume = get_volume(store, result.volume_key)
    return judged


@pytest.fixture
def judged(shared_ct, tmp_path_factory, request) -> Judged:
    """The gate's answer for the real case named by the test's parameter (computed once per case)."""
    return _judge(request.param, Path(tmp_path_factory.getbasetemp()) / "gate-real")


def _keys(*roles: str) -> list[str]:
    return [key for key, case in CASES.items() if case.role in roles]


@pytest.mark.realdata
@pytest.mark.parametrize("judged", _keys("chest_full"), indirect=True)
def test_every_full_chest_ct_passes_with_lungs_and_heart_in_its_label_map(judged):
    assert judged.accepted, {name: (c.value, c.detail) for name, c in judged.checks.items() if not c.passed}
    assert {"lung_left_ml", "lung_right_ml", "heart_ml"} <= set(judged.checks)
    lungs = np.isin(judged.labels, [label_of(name) for name in LUNG_ANY]).sum()
    heart = (judged.labels == label_of("heart")).sum()
    assert lungs > 0.05 * judged.labels.size and heart > 0  # what the screener and localizer will read


@pytest.mark.realdata
@pytest.mark.parametrize("judged", _keys(*COVERAGE_ROLES), indirect=True)
def test_slabs_crops_and_partial_scans_are_refused_for_coverage(judged):
    assert not judged.accepted and judged.reason == "insufficient_coverage"
    failed = [c for c in judged.checks.values() if not c.passed]
    assert failed[0].name in {"z_coverage_mm", "lateral_fov_mm"}  # the check that decided
    assert {c.name for c in failed} <= {"z_coverage_mm", "lateral_fov_mm", "slice_count"}
    assert "lung_left_ml" not in judged.checks  # refused before any segmentation


@pytest.mark.realdata
@pytest.mark.parametrize("judged", _keys("nonchest_ct", "nonchest_mr"), indirect=True)
def test_non_chest_scans_are_refused_with_their_reason(judged, request):
    assert not judged.accepted
    if CASES[request.node.callspec.params["judged"]].role == "nonchest_mr":
        assert judged.reason == "not_ct" and judged.checks["load"].value == {"modality": "MR"}
    else:
        assert judged.reason in {"not_chest", "insufficient_coverage", "no_chest_anatomy"}
        failed = next(c for c in judged.checks.values() if not c.passed)
        assert failed.value is not None  # the refusal shows the value seen


def _chest_volume(shared_ct) -> Volume:
    case = next((c for c in available_cases("chest_full") if c.spec.name == "pyradiomics_lung2"), None)
    if case is None:
        pytest.skip("pyradiomics_lung2 is not in the shared folder")
    return case.load()


@pytest.mark.realdata
def test_a_chest_ct_without_body_part_passes_through_the_anatomy_check(shared_ct):
    volume = _chest_volume(shared_ct)
    volume.meta.body_part_examined = ""
    verdict = check_volume(volume, backend=BUILTIN)
    assert verdict.accepted
    checks = {c.name: c for c in verdict.checks}
    assert checks["body_part_examined"].value is None and checks["heart_ml"].passed


@pytest.mark.realdata
def test_a_chest_ct_tagged_head_is_refused_by_its_tags(shared_ct):
    volume = _chest_volume(shared_ct)
    volume.meta.body_part_examined = "HEAD"
    verdict = check_volume(volume, backend=BUILTIN)
    assert not verdict.accepted and verdict.reason == "not_chest" and verdict.segmentation is None


@pytest.mark.realdata
def test_an_untagged_head_and_neck_ct_is_refused_for_its_anatomy(shared_ct):
    case = next((c for c in available_cases("nonchest_ct") if c.spec.name == "hnc_0522c0001"), None)
    if case is None:
        pytest.skip("hnc_0522c0001 is not in the shared folder")
    volume = case.load()
    volume.meta.body_part_examined = volume.meta.study_description = volume.meta.series_description = ""
    verdict = check_volume(volume, backend=BUILTIN)
    assert not verdict.accepted and verdict.reason == "no_chest_anatomy"
    assert verdict.detail.startswith("does not look like a chest CT; it cannot be processed")
    failed = {c.name: c.value for c in verdict.checks if not c.passed}
    assert failed and set(failed) <= {"lung_left_ml", "lung_right_ml", "heart_ml"}
