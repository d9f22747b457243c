"""Migrations and models on SQLite and on the real PostgreSQL server (psycopg 3).

Each PostgreSQL test gets its own schema in the ``test`` database (dropped afterwards), so parallel
and CI runs do not collide. Set ``CTRIAGE_TEST_POSTGRES_URL`` to use another server.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from click.testing import CliRunner
from sqlalchemy import create_engine, delete, inspect, make_url, pool, select
from sqlalchemy.exc import IntegrityError

from servers import postgres_schema
from shared.config import get_settings
from shared.db.cli import db_command
from shared.db.migrate import alembic_config, current_revision, head_revision, upgrade_database
from shared.db.models import AnalysisRun, Base, Instance, Patient, Report, RunState, Series, Study
from shared.db.session import session_scope

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A URL whose ``search_path`` is a fresh schema of the test database; the schema is dropped after."""
    with postgres_schema("ctriage_test") as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database: a SQLite file, or a fresh schema on the PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ctriage.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def migrated_url(db_url: str) -> str:
    upgrade_database(db_url)
    return db_url


def table_names(url: str) -> set[str]:
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_from_empty_reaches_head_and_is_idempotent(db_url: str) -> None:
    assert current_revision(db_url) is None

    assert upgrade_database(db_url) == head_revision()
    assert upgrade_database(db_url) == head_revision()  # a second start changes nothing

    assert current_revision(db_url) == head_revision()
    assert table_names(db_url) == set(Base.metadata.tables) | {"alembic_version"}


def test_migrated_schema_matches_the_models(migrated_url: str) -> None:
    engine = create_engine(migrated_url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection, opts={"compare_type": True}), Base.metadata)
    engine.dispose()

    assert differences == []


def test_downgrade_to_base_and_upgrade_again(migrated_url: str) -> None:
    command.downgrade(alembic_config(migrated_url), "base")
    assert table_names(migrated_url) == {"alembic_version"}
    assert current_revision(migrated_url) is None

    assert upgrade_database(migrated_url) == head_revision()
    assert table_names(migrated_url) == set(Base.metadata.tables) | {"alembic_version"}


def test_processes_starting_together_migrate_once_without_errors(db_url: str) -> None:
    start_at = time.time() + 4  # past every child's imports, so their migrations overlap
    script = (
        "import sys, time\n"
        "from shared.db.migrate import upgrade_database\n"
        "time.sleep(max(0.0, float(sys.argv[2]) - time.time()))\n"
        "print(upgrade_database(sys.argv[1]))\n"
    )
    children = [
        subprocess.Popen(
            [sys.executable, "-c", script, db_url, str(start_at)], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(3)
    ]
    results = [child.communicate(timeout=120) for child in children]

    for child, (stdout, stderr) in zip(children, results, strict=True):
        assert child.returncode == 0, stderr[-2000:]
        assert stdout.strip() == head_revision()
    assert current_revision(db_url) == head_revision()


def make_series(session, *, study_uid: str = "1.2.826.0.1.3680043.8.498.1") -> Series:  # type: ignore[no-untyped-def]
    patient = Patient(patient_id="PID-1", name="Doe^Jane", birth_date="19700101", sex="F")
    study = Study(study_instance_uid=study_uid, patient=patient, study_date="20240102")
    series = Series(study=study, series_instance_uid=study_uid + ".2", modality="CT", storage_prefix=f"scans/{study_uid}/")
    session.add(series)
    session.flush()
    return series


def test_round_trip_keeps_json_enums_and_relationships(migrated_url: str) -> None:
    stages = {"gate": {"state": "done", "seconds": 1.25, "checks": ["modality", "body_part"]}, "screen": {"state": "running"}}
    body = {
        "status": "done",
        "verdict": "pathology",
        "findings": [{"organ": "lung_upper_lobe_left", "box": [1, 2, 3, 4, 5, 6], "score": 0.93}],
        "note": "Größe ≥ 3 mm",
    }
    with session_scope(migrated_url) as session:
        series = make_series(session)
        series.instances = [Instance(sop_instance_uid=f"1.2.3.{n}", storage_key=f"i/{n}", size_bytes=2**33 + n) for n in range(3)]
        run = AnalysisRun(series=series, state=RunState.running, stage="screen", stages=stages, model_versions={"gate": "baseline-1"})
        run.report = Report(series_pk=series.id, schema_version="1", status="done", verdict="pathology", body=body)
        session.add(run)
        session.flush()
        series_id, run_id = series.id, run.id

    with session_scope(migrated_url) as session:
        series = session.get(Series, series_id)
        assert series is not None and series.study.patient.patient_id == "PID-1"
        assert sorted((i.sop_instance_uid, i.size_bytes) for i in series.instances) == [(f"1.2.3.{n}", 2**33 + n) for n in range(3)]
        run = session.get(AnalysisRun, run_id)
        assert run is not None
        assert run.state is RunState.running
        assert (run.stages, run.model_versions) == (stages, {"gate": "baseline-1"})
        assert run.report is not None and run.report.body == body
        assert session.scalars(select(AnalysisRun.id).where(AnalysisRun.state == RunState.running)).all() == [run_id]

        run.state = RunState.done
        run.stages = {**run.stages, "screen": {"state": "done"}}
    with session_scope(migrated_url) as session:
        run = session.get(AnalysisRun, run_id)
        assert run is not None and run.state is RunState.done and run.stages["screen"] == {"state": "done"}


def test_an_instance_is_stored_once_per_series(migrated_url: str) -> None:
    with session_scope(migrated_url) as session:
        first = make_series(session, study_uid="1.2.3.1")
        other = make_series(session, study_uid="1.2.3.2")
        session.add_all(
            [
                Instance(series=first, sop_instance_uid="9.9.1", storage_key="a"),
                Instance(series=other, sop_instance_uid="9.9.1", storage_key="b"),  # same SOP, other series: fine
            ]
        )
        first_id = first.id

    with pytest.raises(IntegrityError), session_scope(migrated_url) as session:
        session.add(Instance(series_pk=first_id, sop_instance_uid="9.9.1", storage_key="c"))

    with session_scope(migrated_url) as session:
        assert session.scalars(select(Instance.storage_key).order_by(Instance.storage_key)).all() == ["a", "b"]


def test_deleting_a_series_removes_its_instances_runs_and_reports(migrated_url: str) -> None:
    with session_scope(migrated_url) as session:
        series = make_series(session)
        series.instances = [Instance(sop_instance_uid="1.1", storage_key="k")]
        run = AnalysisRun(series=series, state=RunState.done)
        run.report = Report(series_pk=series.id, schema_version="1", status="done", verdict="normal", body={})
        session.add(run)
        series_id = series.id

    with session_scope(migrated_url) as session:
        assert [len(session.scalars(select(model)).all()) for model in (Instance, AnalysisRun, Report)] == [1, 1, 1]
        session.delete(session.get(Series, series_id))

    with session_scope(migrated_url) as session:
        for model in (Series, Instance, AnalysisRun, Report):
            assert session.scalars(select(model)).all() == [], model.__name__
        assert len(session.scalars(select(Study)).all()) == 1  # the study stays


def test_database_cascades_deletes_without_the_orm(migrated_url: str) -> None:
    """A study deleted by plain SQL takes its series, instances, runs and reports; a patient's studies stay, unlinked."""
    with session_scope(migrated_url) as session:
        series = make_series(session)
        series.instances = [Instance(sop_instance_uid="1.1", storage_key="k")]
        run = AnalysisRun(series=series)
        run.report = Report(series_pk=series.id, schema_version="1", status="failed", body={})
        session.add(run)
        kept = make_series(session, study_uid="1.2.3.99")
        doomed_study, kept_study, kept_patient = series.study_pk, kept.study_pk, kept.study.patient_pk

    with session_scope(migrated_url) as session:
        assert [len(session.scalars(select(model)).all()) for model in (Instance, AnalysisRun, Report)] == [1, 1, 1]
        session.execute(delete(Study).where(Study.id == doomed_study))
        session.execute(delete(Patient).where(Patient.id == kept_patient))

    with session_scope(migrated_url) as session:
        assert session.scalars(select(Series.study_pk)).all() == [kept_study]
        assert session.scalars(select(Instance)).all() == []
        assert session.scalars(select(AnalysisRun)).all() == []
        assert session.scalars(select(Report)).all() == []
        assert session.get(Study, kept_study).patient_pk is None  # type: ignore[union-attr]


def test_cli_upgrades_and_reports_the_revision(db_url: str) -> None:
    runner = CliRunner()
    before = runner.invoke(db_command, ["current", "--url", db_url, "--check"])
    assert before.exit_code == 1 and "revision none" in before.output

    upgraded = runner.invoke(db_command, ["upgrade", "--url", db_url])
    assert upgraded.exit_code == 0, upgraded.output
    assert f"at revision {head_revision()}" in upgraded.output

    after = runner.invoke(db_command, ["current", "--url", db_url, "--check"])
    assert after.exit_code == 0 and "up to date" in after.output


def test_default_database_is_sqlite_inside_the_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CTRIAGE_DATABASE_URL", raising=False)
    monkeypatch.setenv("CTRIAGE_DATA_DIR", str(tmp_path / "var"))
    get_settings.cache_clear()
    try:
        assert upgrade_database() == head_revision()
        assert (tmp_path / "var" / "ctriage.db").is_file()
        assert current_revision() == head_revision()
    finally:
        get_settings.cache_clear()


@pytest.mark.postgres
def test_cli_output_hides_the_database_password(postgres_url: str) -> None:
    url = make_url(postgres_url).set(password="s3cret-pw").render_as_string(hide_password=False)  # trust auth ignores it
    for arguments in (["upgrade", "--url", url], ["current", "--url", url]):
        result = CliRunner().invoke(db_command, arguments)
        assert result.exit_code == 0, result.output
        assert "s3cret-pw" not in result.output and "***" in result.output
