"""Where the localizer's DICOM outputs get their source references, and what a run delivers when
they cannot be made: the gate's copy of the instances' headers (``runs/{id}/instances.json``), the
stored instances for runs older than that copy, and a ``done`` report naming each missing output."""

from __future__ import annotations

import io

import highdicom as hd
import pydicom
import pytest

from localizer_testkit import LesionStudy, lesion_study
from pipeline_testkit import put_series
from shared.contracts import ChainState, GateRequest, RunArtifacts, Stage
from shared.pipeline.artifacts import get_source_headers
from shared.pipeline.compose import report_from_state
from shared.pipeline.stages import advance
from shared.report import OutputReason, ReportStatus, ReportV1, Verdict
from shared.storage.local import LocalStore

COPIED = ("PatientName", "PatientID", "StudyInstanceUID", "StudyDate", "AccessionNumber", "SeriesInstanceUID",
          "FrameOfReferenceUID", "SOPClassUID", "ImageOrientationPatient", "PixelSpacing")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> LocalStore:
    return LocalStore(tmp_path_factory.mktemp("objects"), fsync=False)


@pytest.fixture(scope="module")
def lesions(tmp_path_factory: pytest.TempPathFactory) -> LesionStudy:
    return lesion_study(tmp_path_factory.mktemp("lesions"))


def _screened(store: LocalStore, lesions: LesionStudy, run_id: str) -> tuple[ChainState, str]:
    """A run of the lesion study through gate and screener; returns its state and the instances' prefix."""
    prefix = put_series(store, lesions.files, f"series/{run_id}")
    state = ChainState(run_id=run_id, gate_request=GateRequest(run_id=run_id, source_prefix=prefix))
    for stage in (Stage.gate, Stage.screen):
        state = advance(stage=stage, store=store, state=state)
    assert state.gate is not None and state.gate.accepted, state.gate
    return state, prefix


def _localized(store: LocalStore, state: ChainState) -> ReportV1:
    return report_from_state(advance(stage=Stage.localize, store=store, state=state))


def _outputs(report: ReportV1) -> dict[str, tuple[bool, OutputReason | None]]:
    return {output.name: (output.produced, output.reason) for output in report.outputs}


ALL_PRODUCED = {"seg": (True, None), "sr": (True, None), "key_images": (True, None)}


def test_the_gate_keeps_each_slice_header_so_outputs_need_no_stored_instance(store: LocalStore, lesions: LesionStudy) -> None:
    state, prefix = _screened(store, lesions, "run-headers")
    key = RunArtifacts.for_run("run-headers").instances
    headers = get_source_headers(store, key)
    assert [h.SOPInstanceUID for h in headers] == lesions.volume.meta.sop_instance_uids  # slice order
    originals = {ds.SOPInstanceUID: ds for ds in (pydicom.dcmread(f, stop_before_pixels=True) for f in lesions.files)}
    for header in headers:
        original = originals[header.SOPInstanceUID]
        assert {k: header.get(k) for k in COPIED} == {k: original.get(k) for k in COPIED}
        assert header.ImagePositionPatient == original.ImagePositionPatient
    assert len(store.get_bytes(key)) < 1024 * len(headers)  # shared attributes once, not per instance

    store.delete_prefix(prefix)  # e.g. purged after intake: the outputs do not need them
    report = _localized(store, state)
    assert report.status is ReportStatus.done and report.findings
    assert _outputs(report) == ALL_PRODUCED
    seg = hd.seg.segread(io.BytesIO(store.get_bytes(report.artifacts["seg"])))
    referenced = {item.ReferencedSOPInstanceUID for item in seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence}
    assert referenced <= set(lesions.volume.meta.sop_instance_uids) and referenced


def test_a_run_without_the_gates_copy_reads_the_stored_instances(store: LocalStore, lesions: LesionStudy) -> None:
    state, _ = _screened(store, lesions, "run-older")
    store.delete(RunArtifacts.for_run("run-older").instances)  # as runs made before the gate kept one
    report = _localized(store, state)
    assert _outputs(report) == ALL_PRODUCED
    hd.sr.srread(io.BytesIO(store.get_bytes(report.artifacts["sr"])))


def test_missing_or_unreadable_source_instances_degrade_the_outputs_not_the_run(store: LocalStore, lesions: LesionStudy) -> None:
    state, prefix = _screened(store, lesions, "run-damaged")
    store.delete(RunArtifacts.for_run("run-damaged").instances)
    keys = sorted(info.key for info in store.list(prefix))
    store.delete(keys[0])
    store.put_bytes(keys[1], b"\x00" * 128 + b"DICM" + b"\x02\x00")  # cut inside its file meta
    report = _localized(store, state)

    assert report.status is ReportStatus.done and report.verdict is Verdict.pathology and report.findings
    assert _outputs(report) == {name: (False, OutputReason.no_source_headers) for name in ("seg", "sr", "key_images")}
    assert all(f"2 of {len(keys)} source instances" in output.detail for output in report.outputs)
    assert "findings" in report.artifacts
    assert not {"seg", "sr"} & set(report.artifacts) and not any(name.startswith("key_image_") for name in report.artifacts)
    assert list(store.list(RunArtifacts.for_run("run-damaged").dicom_prefix)) == []
    again = ReportV1.model_validate_json(report.model_dump_json())  # the schema carries it through JSON
    assert again.outputs == report.outputs


def test_a_source_cut_short_fails_the_seg_and_its_sr_but_not_the_run(store: LocalStore, lesions: LesionStudy) -> None:
    state, prefix = _screened(store, lesions, "run-cut")
    store.delete(RunArtifacts.for_run("run-cut").instances)
    one_slice = f"{prefix}{lesions.files[0].name}"
    data = store.get_bytes(one_slice)
    # Cut just before Image Position (Patient): pydicom still reads the header's start, without geometry.
    store.put_bytes(one_slice, data[:data.index(b"\x20\x00\x32\x00")])
    report = _localized(store, state)

    assert report.status is ReportStatus.done and report.verdict is Verdict.pathology and report.findings
    outputs = _outputs(report)
    assert outputs["seg"] == (False, OutputReason.build_failed)
    assert outputs["sr"] == (False, OutputReason.seg_unavailable)
    assert outputs["key_images"] == (True, None)
    assert "seg" not in report.artifacts and "sr" not in report.artifacts and "key_image_001" in report.artifacts
