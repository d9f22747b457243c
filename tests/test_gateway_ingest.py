"""shared.ingest on its own: the per-object path the PACS intake (C-STORE, STOW-RS) uses."""

from __future__ import annotations

from pathlib import Path

import pytest
from gateway_testkit import migrate, write_series
from sqlalchemy import func, select

from shared.db.models import Instance, Series
from shared.db.session import session_factory
from shared.dicom.errors import LoadError, Reason
from shared.ingest import ingest_instance
from shared.storage.local import LocalStore


@pytest.fixture
def session(tmp_path: Path):  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'ingest.db'}"
    migrate(url)
    with session_factory(url)() as session:
        yield session


def test_instances_arriving_one_by_one_build_one_series_stored_once(session, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store = LocalStore(tmp_path / "objects")
    paths = write_series(tmp_path / "ct", n_slices=3)
    results = [ingest_instance(db=session, store=store, name=p.name, data=p, source="cstore") for p in paths]
    repeat = ingest_instance(db=session, store=store, name="again", data=paths[0].read_bytes(), source="cstore")
    session.commit()

    assert [result.new for result in results] == [True, True, True] and repeat.new is False
    series = session.scalars(select(Series)).one()
    assert series.source == "cstore" and series.n_instances == 3
    assert session.scalar(select(func.count()).select_from(Instance)) == 3
    keys = session.scalars(select(Instance.storage_key)).all()
    assert all(key.startswith(series.storage_prefix) for key in keys)
    stored = sorted(store.get_bytes(info.key) for info in store.list(series.storage_prefix))
    assert stored == sorted(p.read_bytes() for p in paths)


def test_an_object_whose_uid_could_escape_its_folder_is_refused(session, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = write_series(tmp_path / "ct", n_slices=1, SOPInstanceUID="1.2.3/../../evil")[0]
    with pytest.raises(LoadError) as refused:
        ingest_instance(db=session, store=LocalStore(tmp_path / "objects"), name="x", data=path, source="cstore")
    assert refused.value.reason is Reason.NOT_DICOM
    assert not list((tmp_path / "objects").rglob("*.dcm"))
