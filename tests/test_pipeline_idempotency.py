"""A stage delivered twice rewrites the same artifacts and leaves one report (acks_late redelivery)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from pipeline_testkit import phantom, put_series, record_series, write_series
from shared.contracts import ChainState, GateRequest, RunArtifacts, Stage
from shared.db.migrate import upgrade_database
from shared.db.models import AnalysisRun, Report, RunState
from shared.db.session import session_factory
from shared.pipeline import runs
from shared.pipeline.execute import execute_stage
from shared.pipeline.inprocess import analyze_in_process
from shared.report import ReportV1
from shared.storage.local import LocalStore

VOLATILE = {"created_at", "timings"}  # the only report fields allowed to differ between deliveries


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    folder = tmp_path_factory.mktemp("study")
    return write_series(phantom(seed=777, shape=(64, 128, 128)).volume, folder)


def _artifact_hashes(store: LocalStore, run_id: str) -> dict[str, str]:
    keys = RunArtifacts.for_run(run_id)
    return {name: store.stat(getattr(keys, name)).sha256 for name in ("volume", "organs", "anomaly")}


def test_the_whole_pipeline_twice_writes_identical_artifacts_and_report(tmp_path: Path, study):
    store = LocalStore(tmp_path / "objects", fsync=False)
    prefix = put_series(store, study, "studies/a/series/b")
    first = analyze_in_process(store=store, source_prefix=prefix, run_id="run-1")
    hashes = _artifact_hashes(store, "run-1")
    second = analyze_in_process(store=store, source_prefix=prefix, run_id="run-1")

    assert _artifact_hashes(store, "run-1") == hashes
    assert first.model_dump(exclude=VOLATILE) == second.model_dump(exclude=VOLATILE)
    assert ReportV1.model_validate_json(store.get_bytes("runs/run-1/report.json")).model_dump(exclude=VOLATILE) == first.model_dump(exclude=VOLATILE)


def test_a_redelivered_stage_keeps_one_report_row_and_the_same_artifacts(tmp_path: Path, study):
    url = f"sqlite:///{tmp_path / 'idem.db'}"
    upgrade_database(url)
    sessions = session_factory(url)
    store = LocalStore(tmp_path / "objects", fsync=False)
    prefix = put_series(store, study, "studies/a/series/b")
    with sessions() as session:
        series = record_series(session, prefix=prefix, study_uid="1.2.3", series_uid="1.2.3.4")
        run = runs.create_run(session=session, series_pk=series.id)
        session.commit()
        run_id = run.id
    payload = ChainState(run_id=run_id, series_id=series.id, gate_request=GateRequest(run_id=run_id, source_prefix=prefix)).model_dump(mode="json")

    for stage in (Stage.gate, Stage.screen):
        outcome = execute_stage(stage=stage, payload=payload, store=store, sessions=sessions, max_lost=3)
        assert outcome.proceed
        payload = outcome.state.model_dump(mode="json")
    done = execute_stage(stage=Stage.localize, payload=payload, store=store, sessions=sessions, max_lost=3)
    assert not done.proceed
    hashes = _artifact_hashes(store, run_id)
    with sessions() as session:
        first_body = session.scalars(select(Report.body).where(Report.run_pk == run_id)).one()

    # A duplicate after the run ended is ignored; one racing with the first (the run still open) redoes the work.
    assert not execute_stage(stage=Stage.localize, payload=payload, store=store, sessions=sessions, max_lost=3).proceed
    with sessions() as session:
        row = session.get(AnalysisRun, run_id)
        row.state = RunState.running
        session.commit()
    execute_stage(stage=Stage.localize, payload=payload, store=store, sessions=sessions, max_lost=3)

    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Report).where(Report.run_pk == run_id)) == 1
        body = session.scalars(select(Report.body).where(Report.run_pk == run_id)).one()
        assert session.get(AnalysisRun, run_id).state is RunState.done
    assert _artifact_hashes(store, run_id) == hashes
    assert {k: v for k, v in body.items() if k not in VOLATILE} == {k: v for k, v in first_body.items() if k not in VOLATILE}
