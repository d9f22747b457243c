"""The instance intake on both databases: its per-instance statements run on the driver (shared.instance_index).

SQLite and PostgreSQL (psycopg) bind parameters in different styles and report a duplicate row with
different exceptions; the intake must store, count, reopen and deduplicate the same way on both,
also when several intakes race on one series.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from gateway_testkit import migrate, write_series
from servers import postgres_schema
from sqlalchemy import func, select

from gateway.dimse.intake import InstanceIntake
from shared.completeness import utcnow
from shared.db.models import Instance, Series
from shared.db.session import session_factory
from shared.storage.local import LocalStore

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'intake.db'}"
        migrate(url)
        yield url
    else:
        with postgres_schema("ctriage_intake") as url:
            migrate(url)
            yield url


def intake_of(url: str, tmp_path: Path) -> InstanceIntake:
    return InstanceIntake(session_factory=session_factory(url), store=LocalStore(tmp_path / "objects", fsync=False),
                          source="cstore")


def test_a_series_is_indexed_counted_and_reopened_once_per_instance(database_url: str, tmp_path: Path) -> None:
    intake, sessions = intake_of(database_url, tmp_path), session_factory(database_url)
    files = write_series(tmp_path / "ct", n_slices=5)
    first = [intake.receive(name=p.name, data=p.read_bytes(), sop_class_uid=CT_IMAGE_STORAGE) for p in files[:3]]
    with sessions() as session:
        series = session.scalars(select(Series)).one()
        series.expected_instances, series.completed_at = 5, utcnow()  # as if the scanner had completed it early
        session.commit()

    rest = [intake.receive(name=p.name, data=p, sop_class_uid=CT_IMAGE_STORAGE) for p in files[3:]]
    repeat = intake.receive(name="again", data=files[0].read_bytes(), sop_class_uid=CT_IMAGE_STORAGE)

    assert [(r.ok, r.new, r.expected_reached) for r in first + rest] == [(True, True, False)] * 4 + [(True, True, True)]
    assert repeat.ok and not repeat.new
    with sessions() as session:
        series = session.scalars(select(Series)).one()
        rows = session.execute(select(Instance.size_bytes, Instance.sha256, Instance.received_at)).all()
    assert series.n_instances == len(rows) == 5 and series.size_bytes == sum(p.stat().st_size for p in files)
    assert series.completed_at is None and series.last_instance_at == max(row.received_at for row in rows)
    assert all(len(row.sha256) == 64 for row in rows)


def test_intakes_racing_on_one_series_store_each_instance_once(database_url: str, tmp_path: Path) -> None:
    intake, sessions = intake_of(database_url, tmp_path), session_factory(database_url)
    files = write_series(tmp_path / "ct", n_slices=8)
    orders = [random.Random(seed).sample(files, len(files)) for seed in range(4)]  # every intake sends the whole series

    with ThreadPoolExecutor(max_workers=4) as pool:
        receipts = [r for batch in pool.map(
            lambda order: [intake.receive(name=p.name, data=p, sop_class_uid=CT_IMAGE_STORAGE) for p in order], orders,
        ) for r in batch]

    assert all(r.ok for r in receipts) and sum(r.new for r in receipts) == len(files)
    with sessions() as session:
        series = session.scalars(select(Series)).one()
        assert series.n_instances == session.scalar(select(func.count()).select_from(Instance)) == len(files)
    assert len(list((tmp_path / "objects").rglob("*.dcm"))) == len(files)
