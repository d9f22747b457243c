"""Run bookkeeping and the report views the API serves, on a real SQLite database (no queue)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import func, select

from pipeline_testkit import record_series
from shared.contracts import Stage
from shared.db.migrate import upgrade_database
from shared.db.models import AnalysisRun, Report, RunState
from shared.db.session import session_factory
from shared.pipeline import runs
from shared.pipeline.execute import fail_stage
from shared.pipeline.reports import run_progress, series_report
from shared.report import FailureReason, ReportStatus, ReportV1, Verdict
from shared.storage.local import LocalStore
from celery.exceptions import TimeLimitExceeded


@pytest.fixture
def sessions(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    upgrade_database(url)
    return session_factory(url)


@pytest.fixture
def series_id(sessions) -> str:
    with sessions() as session:
        return record_series(session, prefix="studies/1.2/series/1.3/", study_uid="1.2", series_uid="1.3").id


def _new_run(sessions, series_id: str) -> str:
    with sessions() as session:
        run = runs.create_run(session=session, series_pk=series_id)
        session.commit()
        return run.id


def _done_report(run_id: str, series_id: str, verdict: Verdict = Verdict.normal) -> ReportV1:
    return ReportV1(status=ReportStatus.done, verdict=verdict, run_id=run_id, series_id=series_id, score=0.0,
                    threshold=1.0, created_at=datetime.now(timezone.utc))


def test_stages_progress_from_queued_to_done(sessions, series_id):
    run_id = _new_run(sessions, series_id)
    with sessions() as session:
        assert run_progress(session=session, series_pk=series_id).stages[0].state == "queued"
        assert runs.start_stage(session=session, run_id=run_id, stage=Stage.gate, max_lost=2)
        runs.finish_stage(session=session, run_id=run_id, stage=Stage.gate, seconds=1.25)
        session.commit()
        progress = run_progress(session=session, series_pk=series_id)
    assert progress.state == "running"
    assert progress.stage == "screen"
    assert [(s.stage, s.state) for s in progress.stages] == [("gate", "done"), ("screen", "queued"), ("localize", "pending")]
    assert progress.stages[0].seconds == 1.25
    assert progress.stages[0].attempts == 1
    with sessions() as session:
        view = series_report(session=session, series_pk=series_id)
    assert view.status == "in_progress" and view.report is None and view.progress.run_id == run_id


def test_recording_a_report_twice_keeps_one_report_row(sessions, series_id):
    run_id = _new_run(sessions, series_id)
    for verdict in (Verdict.normal, Verdict.pathology):  # a re-delivered localize task
        with sessions() as session:
            runs.record_report(session=session, run_id=run_id, report=_done_report(run_id, series_id, verdict), stage=Stage.localize, seconds=0.5)
            session.commit()
    with sessions() as session:
        rows = session.scalar(select(func.count()).select_from(Report).where(Report.run_pk == run_id))
        run = session.get(AnalysisRun, run_id)
        view = series_report(session=session, series_pk=series_id)
    assert rows == 1
    assert run.state is RunState.done and run.finished_at is not None
    assert view.status == "done" and view.report.verdict is Verdict.pathology


def test_a_duplicate_delivery_after_the_end_does_nothing(sessions, series_id):
    run_id = _new_run(sessions, series_id)
    with sessions() as session:
        runs.record_report(session=session, run_id=run_id, report=_done_report(run_id, series_id), stage=Stage.localize)
        session.commit()
        assert not runs.start_stage(session=session, run_id=run_id, stage=Stage.gate, max_lost=2)
        assert runs.fail_run(session=session, run_id=run_id, stage=Stage.gate, reason=FailureReason.internal_error, detail="x") is None
        session.commit()
        assert session.get(AnalysisRun, run_id).state is RunState.done


def test_a_stage_whose_worker_keeps_dying_fails_the_run(sessions, series_id):
    run_id = _new_run(sessions, series_id)
    with sessions() as session:
        # Each start that finds the stage still "running" means the previous worker died mid-stage.
        assert runs.start_stage(session=session, run_id=run_id, stage=Stage.screen, max_lost=1)
        assert runs.start_stage(session=session, run_id=run_id, stage=Stage.screen, max_lost=1)
        assert not runs.start_stage(session=session, run_id=run_id, stage=Stage.screen, max_lost=1)
        session.commit()
        view = series_report(session=session, series_pk=series_id)
    assert view.status == "failed"
    assert view.report.reason == "worker_lost"
    assert [s.state for s in run_progress(session=sessions(), series_pk=series_id).stages] == ["queued", "failed", "skipped"]


def test_a_run_stuck_past_its_time_limit_is_failed_when_read(sessions, series_id):
    run_id = _new_run(sessions, series_id)
    with sessions() as session:
        runs.start_stage(session=session, run_id=run_id, stage=Stage.gate, max_lost=2)
        session.commit()
        run = session.get(AnalysisRun, run_id)
        later = datetime.now(timezone.utc) + timedelta(seconds=61)
        assert not runs.fail_if_stale(session=session, run=run, stale_after=3600, now=later)
        assert runs.fail_if_stale(session=session, run=run, stale_after=60, now=later)
        session.commit()
        assert session.get(AnalysisRun, run_id).reason == "worker_lost"


def test_a_final_stage_failure_ends_the_run_failed_with_its_reason(sessions, series_id, tmp_path):
    run_id = _new_run(sessions, series_id)
    store = LocalStore(tmp_path / "objects")
    with sessions() as session:
        runs.start_stage(session=session, run_id=run_id, stage=Stage.screen, max_lost=2)
        session.commit()
    fail_stage(stage=Stage.screen, payload={"run_id": run_id}, error=TimeLimitExceeded(60), store=store, sessions=sessions)
    with sessions() as session:
        view = series_report(session=session, series_pk=series_id)
    assert view.status == "failed"
    assert view.report.reason == FailureReason.time_limit.value
    assert "TimeLimitExceeded" in view.report.reason_detail
    assert ReportV1.model_validate_json(store.get_bytes(f"runs/{run_id}/report.json")).status is ReportStatus.failed


def test_the_latest_finished_report_wins_while_a_newer_run_is_in_progress(sessions, series_id):
    first = _new_run(sessions, series_id)
    with sessions() as session:
        runs.record_report(session=session, run_id=first, report=_done_report(first, series_id, Verdict.pathology), stage=Stage.localize)
        session.commit()
    second = _new_run(sessions, series_id)
    with sessions() as session:
        view = series_report(session=session, series_pk=series_id)
    assert view.status == "done" and view.report.run_id == first
    assert view.progress is not None and view.progress.run_id == second
    with sessions() as session:
        runs.fail_run(session=session, run_id=second, stage=Stage.gate, reason=FailureReason.broker_unavailable, detail="down")
        session.commit()
        view = series_report(session=session, series_pk=series_id)
    assert view.status == "failed" and view.report.run_id == second and view.progress is None


def test_never_analyzed(sessions, series_id):
    with sessions() as session:
        assert series_report(session=session, series_pk=series_id).status == "never_analyzed"
        assert run_progress(session=session, series_pk=series_id) is None
