"""The gate on every negative phantom (shared/phantoms/negatives.py), through the stage itself: each
is refused with its reason and the value seen, except the untagged chest CT, which the anatomy check
lets through."""

from __future__ import annotations

import pytest
from pipeline_testkit import put_series

from shared.contracts import GateRequest
from shared.dicom.reader import read_study
from shared.phantoms.negatives import NEGATIVE_KINDS, write_negative
from shared.storage.local import LocalStore
from worker_gate.backend import BUILTIN
from worker_gate.decide import check_volume
from worker_gate.stage import run_gate

CHEST_SHAPE = (48, 320, 320)
"""Fine enough in-plane (~1.4 mm) for the gate's default resolution limit."""
TAGGED_OTHER_PARTS = {"head": "HEAD", "abdomen": "ABDOMEN", "knee": "KNEE", "tagged_head": "HEAD"}


@pytest.fixture(scope="module")
def gated(tmp_path_factory):
    """kind -> (case, GateResult) for every negative kind."""
    root = tmp_path_factory.mktemp("gate-negatives")
    store = LocalStore(root / "objects", fsync=False)
    out = {}
    for kind in NEGATIVE_KINDS:
        shape = CHEST_SHAPE if kind in ("no_body_part", "tagged_head") else None
        case = write_negative(kind, root / kind, seed=11, shape=shape)
        request = GateRequest(run_id=kind, source_prefix=put_series(store, case.files, f"studies/{kind}"))
        out[kind] = (case, run_gate(store=store, request=request, backend=BUILTIN), store)
    return out


@pytest.mark.parametrize("kind", sorted(k for k, reason in NEGATIVE_KINDS.items() if reason is not None))
def test_inputs_the_loader_refuses_are_refused_with_its_reason(kind, gated):
    case, result, store = gated[kind]
    assert not result.accepted and result.reason == case.expected_reason
    assert [check.name for check in result.checks] == ["load"] and result.checks[0].detail
    assert not store.exists(f"runs/{kind}/volume.npz")


@pytest.mark.parametrize("kind", sorted(TAGGED_OTHER_PARTS))
def test_ct_of_other_parts_is_refused_by_its_tags(kind, gated):
    _, result, _ = gated[kind]
    assert not result.accepted and result.reason == "not_chest"
    failed = [(check.name, check.value) for check in result.checks if not check.passed]
    assert failed[0] == ("body_part_examined", TAGGED_OTHER_PARTS[kind])


def test_a_chest_ct_without_body_part_is_accepted_by_the_anatomy_check(gated):
    _, result, store = gated["no_body_part"]
    assert result.accepted, [(c.name, c.value, c.detail) for c in result.checks if not c.passed]
    checks = {check.name: check for check in result.checks}
    assert checks["body_part_examined"].value is None and "SeriesDescription" in checks["body_part_examined"].detail
    assert checks["heart_ml"].passed and checks["lung_left_ml"].passed and checks["lung_right_ml"].passed
    assert result.method == "builtin" and store.exists(result.organs_key) and store.exists(result.volume_key)


@pytest.mark.parametrize("kind", ["head", "abdomen", "knee"])
def test_other_parts_without_tags_are_refused_for_their_anatomy(kind, gated):
    case, _, _ = gated[kind]
    volume = read_study(case.folder)
    meta = volume.meta
    meta.body_part_examined = meta.study_description = meta.series_description = meta.protocol_name = ""
    verdict = check_volume(volume, backend=BUILTIN, max_pixel_mm=4.0)  # the phantoms are coarse (~3.6 mm)
    assert not verdict.accepted and verdict.reason in ("no_chest_anatomy", "insufficient_coverage")
    if verdict.reason == "no_chest_anatomy":
        assert {c.name for c in verdict.checks if not c.passed} & {"lung_left_ml", "lung_right_ml", "heart_ml"}
