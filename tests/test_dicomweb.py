"""DICOMweb STOW-RS and QIDO-RS against ``dicomweb-client`` (a client not written by us), over real HTTP.

The gateway runs in uvicorn on a free port, on SQLite and a local store in ``tmp_path``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pydicom
import pytest
import requests
import uvicorn
from dicomweb_client.api import DICOMwebClient
from gateway_testkit import ADMIN_KEY, bearer, gateway_settings, migrate, write_series
from sqlalchemy import select

from gateway.dimse.launcher import free_port
from gateway.main import create_app
from shared.db.models import Instance, Series
from shared.db.session import session_factory

SOP_CLASS_NOT_SUPPORTED, STUDY_UID_MISMATCH = 0x0122, 0xA901


@dataclass
class LiveGateway:
    """A gateway serving HTTP on ``base_url``."""

    base_url: str
    database_url: str

    def key(self, role: str) -> dict[str, str]:
        response = httpx.post(f"{self.base_url}/api/keys", json={"name": role, "role": role}, headers=bearer(ADMIN_KEY))
        assert response.status_code == 201, response.text
        return bearer(response.json()["key"])

    def client(self, role: str) -> DICOMwebClient:
        return DICOMwebClient(url=f"{self.base_url}/dicomweb", headers=self.key(role))

    def series(self) -> list[tuple[str, str, int, int]]:
        """(source, modality, n_instances, instance rows) of every series."""
        with session_factory(self.database_url)() as session:
            return [
                (s.source, s.modality, s.n_instances,
                 len(session.scalars(select(Instance.id).where(Instance.series_pk == s.id)).all()))
                for s in session.scalars(select(Series))
            ]


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveGateway]:
    settings = gateway_settings(tmp_path, auto_analyze_min_instances=5)
    migrate(settings.resolved_database_url)
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=free_port(), log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield LiveGateway(f"http://127.0.0.1:{server.config.port}", settings.resolved_database_url)
    server.should_exit = True
    thread.join(10)


def datasets(folder: Path, **kwargs: object) -> list[pydicom.Dataset]:
    return [pydicom.dcmread(path) for path in write_series(folder, **kwargs)]


def uids(sequence) -> set[str]:  # type: ignore[no-untyped-def]
    return {item.ReferencedSOPInstanceUID for item in sequence}


def test_stow_then_qido_round_trip(live: LiveGateway, tmp_path: Path) -> None:
    instances = datasets(tmp_path / "a", n_slices=6, patient_id="STOW-1", seed=1)
    study_uid = instances[0].StudyInstanceUID

    response = live.client("ingest").store_instances(instances)

    assert uids(response.ReferencedSOPSequence) == {ds.SOPInstanceUID for ds in instances}
    assert "FailedSOPSequence" not in response
    assert live.series() == [("stowrs", "CT", 6, 6)]

    reader = live.client("clinician")
    [study] = reader.search_for_studies(search_filters={"PatientID": "STOW-1"})
    assert study["0020000D"]["Value"] == [study_uid]
    assert study["00201208"]["Value"] == [6]  # NumberOfStudyRelatedInstances
    assert study["00080061"]["Value"] == ["CT"]  # ModalitiesInStudy
    assert study["00100010"]["Value"] == [{"Alphabetic": "Doe^Jane"}]
    [series] = reader.search_for_series(study_instance_uid=study_uid)
    assert series["0020000E"]["Value"] == [instances[0].SeriesInstanceUID]
    assert series["00201209"]["Value"] == [6]  # NumberOfSeriesRelatedInstances
    assert reader.search_for_series(search_filters={"Modality": "CT"})[0]["0020000D"]["Value"] == [study_uid]
    assert reader.search_for_studies(search_filters={"PatientID": "nobody"}) == []


def test_a_repeated_stow_stores_each_instance_once(live: LiveGateway, tmp_path: Path) -> None:
    instances = datasets(tmp_path / "a", n_slices=5, seed=2)
    client = live.client("ingest")

    client.store_instances(instances)
    again = client.store_instances(instances)

    assert uids(again.ReferencedSOPSequence) == {ds.SOPInstanceUID for ds in instances}
    assert live.series() == [("stowrs", "CT", 5, 5)]


def test_a_non_ct_instance_fails_alone(live: LiveGateway, tmp_path: Path, shared_ct: Path) -> None:
    ct = datasets(tmp_path / "a", n_slices=3, seed=3)
    mr = pydicom.dcmread(sorted((shared_ct / "nonchest_mr_brain_t1_sag_siemens").glob("*.dcm"))[0])

    response = live.client("ingest").store_instances([*ct, mr])  # HTTP 202: some stored, some failed

    assert uids(response.ReferencedSOPSequence) == {ds.SOPInstanceUID for ds in ct}
    [failed] = response.FailedSOPSequence
    assert (failed.ReferencedSOPInstanceUID, failed.FailureReason) == (mr.SOPInstanceUID, SOP_CLASS_NOT_SUPPORTED)
    assert live.series() == [("stowrs", "CT", 3, 3)]


def test_instances_of_another_study_than_the_url_are_refused(live: LiveGateway, tmp_path: Path) -> None:
    instances = datasets(tmp_path / "a", n_slices=2, seed=4)

    with pytest.raises(requests.HTTPError) as raised:
        live.client("ingest").store_instances(instances, study_instance_uid="1.2.3.4")

    assert raised.value.response.status_code == 409  # none stored
    body = pydicom.Dataset.from_json(raised.value.response.json())
    assert {item.FailureReason for item in body.FailedSOPSequence} == {STUDY_UID_MISMATCH}
    assert live.series() == []


def test_qido_matching_keys(live: LiveGateway, tmp_path: Path) -> None:
    client = live.client("ingest")
    client.store_instances(datasets(tmp_path / "a", n_slices=2, seed=5, patient_id="QIDO-A", StudyDate="20240110",
                                    PatientName="Smith^Anna"))
    client.store_instances(datasets(tmp_path / "b", n_slices=2, seed=6, patient_id="QIDO-B", StudyDate="20240320",
                                    PatientName="Jones^Bob"))
    reader = live.client("clinician")

    def patients(**filters: str) -> list[str]:
        return sorted(study["00100020"]["Value"][0] for study in reader.search_for_studies(search_filters=filters))

    assert patients(StudyDate="20240101-20240131") == ["QIDO-A"]
    assert patients(StudyDate="20240201-") == ["QIDO-B"]
    assert patients(PatientName="jon*") == ["QIDO-B"]  # wildcard, case ignored for names
    assert patients(**{"00100020": "QIDO-A"}) == ["QIDO-A"]  # a key given as its tag
    assert patients() == ["QIDO-A", "QIDO-B"]
    assert len(reader.search_for_studies(limit=1)) == 1
    assert len(reader.search_for_studies(limit=1, offset=1)) == 1
    headers = live.key("clinician")
    unsupported = httpx.get(f"{live.base_url}/dicomweb/studies", params={"ReferringPhysicianName": "X"}, headers=headers)
    assert unsupported.status_code == 400 and unsupported.json()["reason"] == "unsupported_query"
    bad_date = httpx.get(f"{live.base_url}/dicomweb/studies", params={"StudyDate": "2024"}, headers=headers)
    assert bad_date.status_code == 400


def test_roles_and_media_types(live: LiveGateway, tmp_path: Path) -> None:
    [instance] = write_series(tmp_path / "a", n_slices=1, seed=7)
    body = b"--XX\r\nContent-Type: application/dicom\r\n\r\n" + instance.read_bytes() + b"\r\n--XX--\r\n"
    stow = {"Content-Type": 'multipart/related; type="application/dicom"; boundary=XX'}
    ingest, clinician = live.key("ingest"), live.key("clinician")

    assert httpx.post(f"{live.base_url}/dicomweb/studies", content=body, headers=stow).status_code == 401
    assert httpx.get(f"{live.base_url}/dicomweb/studies", headers=ingest).status_code == 403  # ingest may not read
    wrong_type = {"Content-Type": 'multipart/related; type="application/dicom+json"; boundary=XX'}
    assert httpx.post(f"{live.base_url}/dicomweb/studies", content=body, headers={**wrong_type, **ingest}).status_code == 415
    stored = httpx.post(f"{live.base_url}/dicomweb/studies", content=body, headers={**stow, **ingest})
    assert stored.status_code == 200 and stored.headers["content-type"] == "application/dicom+json"
    assert httpx.get(f"{live.base_url}/dicomweb/series", headers=clinician).json()[0]["00080060"]["Value"] == ["CT"]
