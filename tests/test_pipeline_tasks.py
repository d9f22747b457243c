"""The Celery stage tasks' failure handling: retries of transient errors, then the run ends ``failed``.

Tasks run in this process through ``Task.apply`` (Celery's own executor, retries included), with the
settings a worker would read from its environment.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from pipeline_testkit import record_series
from shared.config import get_settings
from shared.contracts import ChainState, GateRequest, GateResult, Stage
from shared.db.migrate import upgrade_database
from shared.db.models import AnalysisRun, RunState
from shared.db.session import session_factory
from shared.pipeline import runs
from shared.pipeline.reports import series_report
from shared.queue.app import configure
from shared.queue.stage_task import StageTask, worker_store
from shared.report import ModelInfo
from worker_gate.tasks import gate_task
from worker_screener.tasks import screen_task


@pytest.fixture
def worker_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    url = f"sqlite:///{tmp_path / 'tasks.db'}"
    monkeypatch.setenv("CTRIAGE_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("CTRIAGE_DATABASE_URL", url)
    monkeypatch.setenv("CTRIAGE_STORAGE_BACKEND", "local")
    get_settings.cache_clear()
    worker_store.cache_clear()
    upgrade_database(url)
    yield monkeypatch
    monkeypatch.undo()
    get_settings.cache_clear()
    worker_store.cache_clear()
    configure()  # back to this process's own settings


def _queued_run(prefix: str = "studies/1/series/2/") -> tuple[str, str, dict]:
    sessions = session_factory(get_settings().resolved_database_url)
    with sessions() as session:
        series = record_series(session, prefix=prefix, study_uid="1", series_uid="2")
        run = runs.create_run(session=session, series_pk=series.id)
        session.commit()
        state = ChainState(run_id=run.id, series_id=series.id, gate_request=GateRequest(run_id=run.id, source_prefix=prefix))
        return run.id, series.id, state.model_dump(mode="json")


def _run(run_id: str) -> AnalysisRun:
    with session_factory(get_settings().resolved_database_url)() as session:
        run = session.get(AnalysisRun, run_id)
        session.expunge(run)
        return run


def test_a_missing_artifact_fails_the_run_at_once(worker_settings):
    run_id, series_id, payload = _queued_run()
    payload["gate"] = GateResult(
        run_id=run_id, accepted=True, method="baseline", model=ModelInfo(stage="gate", name="x", version="1"),
        volume_key=f"runs/{run_id}/volume.npz", organs_key=f"runs/{run_id}/organs.npz",
    ).model_dump(mode="json")

    screen_task.apply(args=(payload,))

    run = _run(run_id)
    assert run.state is RunState.failed
    assert run.reason == "missing_artifact"
    assert run.stages["screen"]["attempts"] == 1  # not retried: waiting will not bring it back
    with session_factory(get_settings().resolved_database_url)() as session:
        assert series_report(session=session, series_pk=series_id).report.reason == "missing_artifact"


def test_unreachable_storage_is_retried_then_fails_the_run(worker_settings):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]
    worker_settings.setenv("CTRIAGE_STORAGE_BACKEND", "s3")
    worker_settings.setenv("CTRIAGE_S3_ENDPOINT", f"127.0.0.1:{dead_port}")
    get_settings.cache_clear()
    worker_store.cache_clear()
    run_id, _, payload = _queued_run()

    gate_task.apply(args=(payload,))

    run = _run(run_id)
    assert run.state is RunState.failed
    assert run.reason == "storage_unavailable"
    assert run.stages["gate"]["attempts"] == StageTask.max_retries + 1
    assert run.stages["screen"]["state"] == "skipped"


def test_a_rejection_ends_the_run_and_skips_the_later_stages(worker_settings, tmp_path):
    run_id, series_id, payload = _queued_run("studies/empty/series/none/")  # nothing stored there

    result = gate_task.apply(args=(payload,))

    run = _run(run_id)
    assert run.state is RunState.rejected
    assert run.reason == "empty_input"
    assert result.result["gate"]["accepted"] is False
    assert [run.stages[s.value]["state"] for s in (Stage.gate, Stage.screen, Stage.localize)] == ["done", "skipped", "skipped"]


def test_a_broker_that_is_down_fails_the_new_run_and_tells_the_caller(worker_settings):
    from kombu.exceptions import OperationalError

    from shared.pipeline.dispatch import enqueue_analysis

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]
    worker_settings.setenv("CTRIAGE_BROKER_URL", f"redis://127.0.0.1:{dead_port}/0")
    get_settings.cache_clear()
    configure()
    try:
        sessions = session_factory(get_settings().resolved_database_url)
        with sessions() as session:
            series = record_series(session, prefix="studies/9/series/9/", study_uid="9", series_uid="9.9")
            with pytest.raises(OperationalError):
                enqueue_analysis(session=session, series=series)
            view = series_report(session=session, series_pk=series.id)
    finally:
        worker_settings.delenv("CTRIAGE_BROKER_URL")
        get_settings.cache_clear()

    assert view.status == "failed"
    assert view.report.reason == "broker_unavailable"
