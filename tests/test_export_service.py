"""Export jobs on a real database and store, one try at a time: exponential backoff, duplicates, dead letter,
re-send, and a try whose worker vanished. The peer is a port nobody listens on (a real refused connection)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import update

from servers import free_port, postgres_schema
from shared.config import Settings
from shared.db.migrate import upgrade_database
from shared.db.models import AnalysisRun, ExportJob, ExportState, Report, RunState, Series, Study
from shared.db.session import session_factory
from shared.dicom.volume import Volume
from shared.dicom.writer import write_ct_series
from shared.export.destinations import parse_stow_urls
from shared.export.service import backoff_seconds, create_export_jobs, enqueue_due, resend, run_export
from shared.queue.app import configure
from shared.storage.local import LocalStore


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def world(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    """Settings with one unreachable C-STORE destination, a migrated database, a store and a done run."""
    with ExitStack() as cleanup:
        database_url = cleanup.enter_context(postgres_schema("ctriage_export")) if request.param == "postgres" else ""
        yield from _world(tmp_path, database_url)


def _world(tmp_path: Path, database_url: str):  # type: ignore[no-untyped-def]
    settings = Settings(_env_file=None, data_dir=tmp_path / "var", database_url=database_url,  # type: ignore[call-arg]
                        export_cstore_destinations=f"GONE@127.0.0.1:{free_port()}",
                        export_max_attempts=3, export_retry_base_seconds=10, export_timeout_seconds=3)
    upgrade_database(settings.resolved_database_url)
    configure(settings)  # the embedded filesystem transport under tmp_path: enqueue_due publishes for real
    store = LocalStore(tmp_path / "objects")
    volume = Volume(hu=np.zeros((2, 8, 8), dtype=np.int16), affine=np.eye(4))
    artifacts = {}
    for name, path in zip(("seg", "sr"), write_ct_series(volume, tmp_path / "outputs"), strict=True):
        artifacts[name] = f"runs/r1/dicom/{name}.dcm"
        store.put_bytes(artifacts[name], path.read_bytes())
    sessions = session_factory(settings.resolved_database_url)
    with sessions() as session:
        study = Study(study_instance_uid="1.2.3")
        session.add(study)
        session.flush()
        series = Series(study_pk=study.id, series_instance_uid="1.2.3.4", storage_prefix="studies/x/")
        session.add(series)
        session.flush()
        run = AnalysisRun(series_pk=series.id, state=RunState.done, stages={})
        session.add(run)
        session.flush()
        session.add(Report(run_pk=run.id, series_pk=series.id, schema_version="1", status="done", body={"artifacts": artifacts}))
        [job] = create_export_jobs(session=session, run_id=run.id, settings=settings)
        session.commit()
        ids = (run.id, job.id)
    yield settings, sessions, store, ids
    configure()


def job_of(sessions, export_id: str) -> ExportJob:  # type: ignore[no-untyped-def]
    with sessions() as session:
        job = session.get(ExportJob, export_id)
        session.expunge(job)
        return job


def test_failed_tries_back_off_exponentially_then_dead_letter_and_resend_starts_over(world) -> None:  # type: ignore[no-untyped-def]
    settings, sessions, store, (run_id, export_id) = world
    waits = []
    for attempt in range(3):
        before = datetime.now(timezone.utc)
        state = run_export(export_id=export_id, attempt=attempt, sessions=sessions, store=store, settings=settings)
        job = job_of(sessions, export_id)
        assert job.attempts == attempt + 1 and "association not established" in job.last_error
        if state is ExportState.pending:
            waits.append(job.next_attempt_at.replace(tzinfo=timezone.utc) - before)
        # A second delivery of the message of a try already made does nothing.
        assert run_export(export_id=export_id, attempt=attempt, sessions=sessions, store=store, settings=settings) is None

    assert state is ExportState.dead_letter and job.next_attempt_at is None
    assert [round(wait.total_seconds()) for wait in waits] == [10, 20]  # base, then doubled
    assert [backoff_seconds(attempts=n, base=30) for n in (1, 2, 3, 4)] == [30, 60, 120, 240]
    with sessions() as session:
        assert create_export_jobs(session=session, run_id=run_id, settings=settings) == []  # one job per destination

        assert resend(session=session, job=session.get(ExportJob, export_id), settings=settings)
    restarted = job_of(sessions, export_id)
    assert (restarted.state, restarted.attempts) == (ExportState.pending, 0)


def test_a_due_retry_is_enqueued_once_and_a_try_whose_worker_vanished_is_taken_up(world) -> None:  # type: ignore[no-untyped-def]
    settings, sessions, store, (_, export_id) = world
    run_export(export_id=export_id, attempt=0, sessions=sessions, store=store, settings=settings)
    long_ago = datetime.now(timezone.utc) - timedelta(hours=1)
    with sessions() as session:
        session.execute(update(ExportJob).where(ExportJob.id == export_id).values(next_attempt_at=long_ago))
        session.commit()

    assert enqueue_due(sessions=sessions, settings=settings) == 1
    assert enqueue_due(sessions=sessions, settings=settings) == 0  # enqueued: not again until its lease runs out

    with sessions() as session:  # a worker claimed try 2, then died before recording anything
        session.execute(update(ExportJob).where(ExportJob.id == export_id).values(state=ExportState.sending, attempts=2))
        session.commit()
        session.execute(update(ExportJob).where(ExportJob.id == export_id).values(updated_at=long_ago))
        session.commit()
    assert enqueue_due(sessions=sessions, settings=settings) == 1
    job = job_of(sessions, export_id)
    assert job.state is ExportState.pending and "never finished" in job.last_error


def test_a_resend_during_a_try_is_refused(world) -> None:  # type: ignore[no-untyped-def]
    settings, sessions, _, (_, export_id) = world
    with sessions() as session:
        session.execute(update(ExportJob).where(ExportJob.id == export_id).values(state=ExportState.sending))
        session.commit()
        assert resend(session=session, job=session.get(ExportJob, export_id), settings=settings) is False
    assert job_of(sessions, export_id).state is ExportState.sending


def test_stow_urls_are_parsed_and_credentials_in_them_refused() -> None:
    assert [str(d) for d in parse_stow_urls(" http://pacs:8042/dicom-web/studies ,https://b/studies")] == [
        "http://pacs:8042/dicom-web/studies", "https://b/studies"]
    with pytest.raises(ValueError, match="not an http"):
        parse_stow_urls("ftp://pacs/studies")
    with pytest.raises(ValueError, match="CTRIAGE_EXPORT_STOW_AUTHORIZATION") as error:
        parse_stow_urls("https://user:secret@pacs/studies")
    assert "secret" not in str(error.value)
