"""Study completeness: quiet period, expected instance count, the auto-analyze rule, late instances, races.

Instances go through the real intake (object store and database in ``tmp_path``); runs are enqueued
on the embedded filesystem broker (no worker takes them, so they stay queued).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from gateway_testkit import bearer, gateway_settings, migrate, write_series
from sqlalchemy import select

from gateway.dimse.intake import InstanceIntake
from shared.completeness import AutoAnalyzeRule, complete_due_series, complete_series, utcnow
from shared.db.models import AnalysisRun, RunState, Series
from shared.db.session import session_factory
from shared.pipeline import runs
from shared.queue.app import configure as configure_queue
from shared.storage.local import LocalStore

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
RULE = AutoAnalyzeRule(enabled=True, modalities=frozenset({"CT"}), min_instances=5)
QUIET = 10.0


@pytest.fixture
def intake(tmp_path: Path) -> InstanceIntake:
    settings = gateway_settings(tmp_path)
    migrate(settings.resolved_database_url)
    configure_queue(settings)
    return InstanceIntake(session_factory=session_factory(settings.resolved_database_url),
                          store=LocalStore(tmp_path / "objects", fsync=False), source="cstore")


@pytest.fixture
def sessions(tmp_path: Path, intake: InstanceIntake):  # type: ignore[no-untyped-def]
    return session_factory(gateway_settings(tmp_path).resolved_database_url)


def receive(intake: InstanceIntake, files: list[Path]) -> list:  # type: ignore[type-arg]
    receipts = [intake.receive(name=path.name, data=path, sop_class_uid=CT_IMAGE_STORAGE) for path in files]
    assert all(receipt.ok for receipt in receipts), receipts
    return receipts


def only_series(sessions) -> Series:  # type: ignore[no-untyped-def]
    with sessions() as session:
        return session.scalars(select(Series)).one()


def run_states(sessions, series_id: str) -> list[RunState]:  # type: ignore[no-untyped-def]
    with sessions() as session:
        return list(session.scalars(
            select(AnalysisRun.state).where(AnalysisRun.series_pk == series_id).order_by(AnalysisRun.created_at)
        ))


def scan(sessions, *, after_seconds: float, rule: AutoAnalyzeRule = RULE) -> int:  # type: ignore[no-untyped-def]
    """One scanner pass as if ``after_seconds`` had passed since now."""
    return complete_due_series(session_factory=sessions, rule=rule, quiet_seconds=QUIET,
                               now=utcnow() + timedelta(seconds=after_seconds))


def test_a_series_completes_after_the_quiet_period_and_gets_one_run(intake, sessions, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    receive(intake, write_series(tmp_path / "s", n_slices=6))

    assert scan(sessions, after_seconds=1) == 0  # still arriving, as far as anyone can tell
    assert scan(sessions, after_seconds=QUIET + 1) == 1
    assert scan(sessions, after_seconds=QUIET + 2) == 0  # complete once

    series = only_series(sessions)
    assert series.completed_at is not None and series.n_instances == 6
    assert run_states(sessions, series.id) == [RunState.queued]


def test_the_expected_instance_count_completes_without_waiting(intake, sessions, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    files = write_series(tmp_path / "s", n_slices=6)
    receive(intake, files[:2])
    with sessions() as session:
        session.scalars(select(Series)).one().expected_instances = 6
        session.commit()
    receipts = receive(intake, files[2:])

    assert [receipt.expected_reached for receipt in receipts] == [False, False, False, True]
    assert scan(sessions, after_seconds=0) == 1


@pytest.mark.parametrize(("rule", "why"), [
    (AutoAnalyzeRule(enabled=True, modalities=frozenset({"CT"}), min_instances=10), "too few instances"),
    (AutoAnalyzeRule(enabled=True, modalities=frozenset({"MR"}), min_instances=1), "modality not listed"),
    (AutoAnalyzeRule(enabled=False, modalities=frozenset({"CT"}), min_instances=1), "auto-analyze off"),
])
def test_a_series_outside_the_rule_completes_without_a_run(intake, sessions, tmp_path: Path, rule, why) -> None:  # type: ignore[no-untyped-def]
    receive(intake, write_series(tmp_path / "s", n_slices=6))

    assert scan(sessions, after_seconds=QUIET + 1, rule=rule) == 1, why

    series = only_series(sessions)
    assert series.completed_at is not None
    assert run_states(sessions, series.id) == [], why


def test_late_instances_reopen_the_same_series_and_a_new_run_replaces_the_old(intake, sessions, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    files = write_series(tmp_path / "s", n_slices=8)
    receive(intake, files[:6])
    assert scan(sessions, after_seconds=QUIET + 1) == 1
    series = only_series(sessions)
    with sessions() as session:  # the first run ended (here: failed) before the late instances came
        [first] = session.scalars(select(AnalysisRun.id).where(AnalysisRun.series_pk == series.id))
        runs.fail_run(session=session, run_id=first, stage=None, reason="internal_error", detail="test")
        session.commit()

    receive(intake, files[6:7])
    reopened = only_series(sessions)
    assert reopened.completed_at is None and reopened.n_instances == 7
    receive(intake, files[7:])  # another late one while the series is open: still the same series, no run yet
    assert run_states(sessions, series.id) == [RunState.failed]

    assert scan(sessions, after_seconds=QUIET + 1) == 1
    assert only_series(sessions).id == series.id
    assert run_states(sessions, series.id) == [RunState.failed, RunState.queued]


def test_an_unfinished_run_of_the_partial_series_is_replaced(intake, sessions, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    files = write_series(tmp_path / "s", n_slices=7)
    receive(intake, files[:6])
    assert scan(sessions, after_seconds=QUIET + 1) == 1
    series = only_series(sessions)
    [first] = run_states(sessions, series.id)

    receive(intake, files[6:])
    assert scan(sessions, after_seconds=QUIET + 1) == 1

    with sessions() as session:
        remaining = list(session.scalars(select(AnalysisRun).where(AnalysisRun.series_pk == series.id)))
    assert [run.state for run in remaining] == [RunState.queued]  # one run, of all 7 instances
    assert first == RunState.queued


def test_two_scanners_complete_a_series_once(intake, sessions, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    receive(intake, write_series(tmp_path / "s", n_slices=6))
    series = only_series(sessions)
    now = utcnow() + timedelta(seconds=QUIET + 1)

    outcomes = []
    for _scanner in range(2):  # both saw the series open with the same newest instance
        with sessions() as session:
            outcomes.append(complete_series(session=session, series_id=series.id,
                                            seen_last_instance_at=series.last_instance_at, rule=RULE, now=now))

    assert [outcome.completed for outcome in outcomes] == [True, False]
    assert len(run_states(sessions, series.id)) == 1


def test_an_instance_arriving_while_the_scanner_decides_keeps_the_series_open(intake, sessions, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    files = write_series(tmp_path / "s", n_slices=7)
    receive(intake, files[:6])
    seen = only_series(sessions).last_instance_at
    receive(intake, files[6:])  # after the scanner read the series, before it completes it

    with sessions() as session:
        outcome = complete_series(session=session, series_id=only_series(sessions).id, seen_last_instance_at=seen,
                                  rule=RULE, now=utcnow() + timedelta(seconds=QUIET + 1))

    assert not outcome.completed
    assert only_series(sessions).completed_at is None


def test_expected_instances_through_the_api(tmp_path: Path) -> None:
    from gateway_testkit import start_gateway

    settings = gateway_settings(tmp_path, auto_analyze_min_instances=5)
    for gateway in start_gateway(settings):
        intake = InstanceIntake(session_factory=gateway.client.app.state.session_factory,  # type: ignore[attr-defined]
                                store=gateway.client.app.state.store, source="cstore")  # type: ignore[attr-defined]
        files = write_series(tmp_path / "s", n_slices=6)
        receive(intake, files[:5])
        scan_id = only_series(session_factory(settings.resolved_database_url)).id
        ingest, clinician = gateway.key("ingest"), gateway.key("clinician")
        url = f"/api/scans/{scan_id}/expected-instances"

        waiting = gateway.client.put(url, json={"expected_instances": 6}, headers=ingest)
        assert waiting.status_code == 200, waiting.text
        assert waiting.json()["complete"] is False and waiting.json()["n_instances"] == 5

        receive(intake, files[5:])
        done = gateway.client.put(url, json={"expected_instances": 6}, headers=ingest)
        assert done.status_code == 200 and done.json()["complete"] is True and done.json()["run_id"]

        read = gateway.client.get(f"/api/scans/{scan_id}/completeness", headers=clinician)
        assert read.json()["complete"] is True and read.json()["expected_instances"] == 6
        assert gateway.client.put(url, json={"expected_instances": 0}, headers=ingest).status_code == 422
        assert gateway.client.put("/api/scans/nope/expected-instances", json={"expected_instances": 3},
                                  headers=ingest).status_code == 404
        assert gateway.client.put(url, json={"expected_instances": 6}).status_code == 401
        assert gateway.client.get(f"/api/scans/{scan_id}/completeness", headers=bearer("wrong")).status_code == 401
