"""The C-STORE receiver against dcmtk's echoscu and storescu (a real PACS-side implementation, not ours).

The receiver runs as a real ``ctriage dicom-receiver`` child process on SQLite and a local store in
``tmp_path``; what it stored is read back from that database and folder.
"""

from __future__ import annotations

import hashlib
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pydicom
import pytest
from dimse_testkit import (
    AE_TITLE,
    PACS_AE,
    database_of,
    dataset_bytes,
    phantom_study,
    require_dcmtk,
    start_receiver,
    storescu,
)
from pydicom.uid import JPEG2000Lossless, generate_uid

from gateway.dimse.launcher import ReceiverProcess
from shared.dicom.tools import dcmtk_program


@pytest.fixture
def receiver(tmp_path: Path):  # type: ignore[no-untyped-def]
    require_dcmtk()
    process = start_receiver(tmp_path)
    yield process
    process.stop()


def stored_object(tmp_path: Path, key: str) -> Path:
    return tmp_path / "var" / "objects" / key


def test_echoscu_is_answered(receiver: ReceiverProcess) -> None:
    result = subprocess.run([dcmtk_program("echoscu"), "-aet", PACS_AE, "-aec", AE_TITLE, "127.0.0.1", str(receiver.port)],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr


def test_a_phantom_study_is_stored_byte_for_byte_and_indexed(receiver: ReceiverProcess, tmp_path: Path) -> None:
    files = phantom_study(tmp_path / "study", seed=11, n_slices=12)

    result = storescu(receiver.port, tmp_path / "study")

    assert result.returncode == 0, result.stderr
    database = database_of(tmp_path)
    [series] = database.series()
    assert (series.source, series.n_instances, series.instance_rows) == ("cstore", 12, 12)
    sent = {pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID: path for path in files}
    for key, sha256 in database.checksums().items():
        stored = stored_object(tmp_path, key)
        uid = pydicom.dcmread(stored, stop_before_pixels=True).SOPInstanceUID
        assert dataset_bytes(stored) == dataset_bytes(sent.pop(uid)), "the data set must be stored as received"
        assert sha256 == hashlib.sha256(stored.read_bytes()).hexdigest(), "the row's checksum is the stored object's"
    assert not sent


def test_a_repeated_push_is_stored_once(receiver: ReceiverProcess, tmp_path: Path) -> None:
    phantom_study(tmp_path / "study", seed=12, n_slices=6)

    first = storescu(receiver.port, tmp_path / "study")
    again = storescu(receiver.port, tmp_path / "study")

    assert first.returncode == 0 and again.returncode == 0, again.stderr
    [series] = database_of(tmp_path).series()
    assert (series.n_instances, series.instance_rows) == (6, 6)


def test_real_chest_ct_and_a_jpeg2000_study_arrive_whole(receiver: ReceiverProcess, tmp_path: Path, shared_ct: Path) -> None:
    chest = shared_ct / "lungdx_A0001_adenocarcinoma" / "dicom_5mm_kernelL"
    abdomen = _with_dataset_uids(shared_ct / "nonchest_ct_abdomen_totalseg_example_dicom", tmp_path / "abdomen")

    plain = storescu(receiver.port, chest)
    jpeg2000 = storescu(receiver.port, abdomen, options=("--propose-j2k-lossless",))

    assert plain.returncode == 0, plain.stderr
    assert jpeg2000.returncode == 0, jpeg2000.stderr
    database = database_of(tmp_path)
    counts = sorted((s.n_instances, s.instance_rows) for s in database.series())
    assert counts == [(20, 20), (64, 64)]
    abdomen_study = pydicom.dcmread(next(abdomen.iterdir()), stop_before_pixels=True).StudyInstanceUID
    compressed = [key for key in database.storage_keys() if key.startswith(f"studies/{abdomen_study}/")]
    assert len(compressed) == 20
    for key in compressed[:3]:
        stored = pydicom.dcmread(stored_object(tmp_path, key))
        assert stored.file_meta.TransferSyntaxUID == JPEG2000Lossless  # kept as sent, not transcoded
        source = pydicom.dcmread(abdomen / f"{stored.SOPInstanceUID}.dcm")
        assert stored.PixelData == source.PixelData


def test_an_unknown_calling_ae_is_refused_at_association(receiver: ReceiverProcess, tmp_path: Path) -> None:
    phantom_study(tmp_path / "study", seed=13, n_slices=3)

    stranger = storescu(receiver.port, tmp_path / "study", calling="STRANGER")
    wrong_called = storescu(receiver.port, tmp_path / "study", called="NOT_US")

    assert stranger.returncode != 0 and "Calling AE Title Not Recognized" in stranger.stderr
    assert wrong_called.returncode != 0 and "Called AE Title Not Recognized" in wrong_called.stderr
    assert database_of(tmp_path).series() == []


def test_an_mr_object_fails_alone_and_the_association_goes_on(receiver: ReceiverProcess, tmp_path: Path, shared_ct: Path) -> None:
    mr = min((shared_ct / "nonchest_mr_brain_t1_sag_siemens").glob("*.dcm"))
    ct = phantom_study(tmp_path / "study", seed=14, n_slices=4)

    result = storescu(receiver.port, mr, *ct)

    output = result.stdout + result.stderr
    assert "0x0122" in output or "SOPClassNotSupported" in output.replace(" ", ""), output
    [series] = database_of(tmp_path).series()
    assert (series.n_instances, series.instance_rows) == (4, 4)
    assert "1 refused" in receiver.log() and "4 stored" in receiver.log()


def test_accepted_sockets_have_tcp_nodelay(tmp_path: Path) -> None:
    from gateway.dimse.intake import InstanceIntake
    from gateway.dimse.negotiation import AssociationPolicy
    from gateway.dimse.server import DicomReceiver
    from shared.db.session import session_factory
    from shared.storage.local import LocalStore

    database = database_of(tmp_path)
    receiver = DicomReceiver(
        host="127.0.0.1", port=0,
        policy=AssociationPolicy(ae_title=AE_TITLE, allowed_calling_aes=None, max_associations=4),
        intake=InstanceIntake(session_factory=session_factory(database.url), store=LocalStore(tmp_path / "objects"), source="cstore"),
        max_pdu_length=1 << 20, network_timeout=30, spill_dir=tmp_path / "spill",
    )
    receiver.start()
    try:
        with socket.create_connection(receiver.address):
            deadline = time.monotonic() + 10
            while not receiver.associations() and time.monotonic() < deadline:
                time.sleep(0.01)
            [association] = receiver.associations()
            assert association.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
    finally:
        receiver.stop(grace=1)


def _with_dataset_uids(source: Path, target: Path) -> Path:
    """Copies of ``source``'s files with the UIDs a PACS always sends, which that de-identified set blanked.

    SOP Class/Instance UIDs come back from the file meta (where they were kept); the study and series
    get fixed new UIDs. Pixel data stay JPEG 2000, byte for byte.
    """
    study_uid, series_uid = (generate_uid(entropy_srcs=["dimse-test-abdomen", part]) for part in ("study", "series"))
    target.mkdir()
    for path in sorted(source.glob("*.dcm")):
        ds = pydicom.dcmread(path)
        ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
        ds.save_as(target / f"{ds.SOPInstanceUID}.dcm", enforce_file_format=True)
    return target


def test_a_study_pushed_twice_into_s3_with_syncs_on_is_stored_once_byte_for_byte(tmp_path: Path) -> None:
    from servers import moto_s3_server

    from shared.storage.s3 import S3Store

    require_dcmtk()
    files = phantom_study(tmp_path / "study", seed=15, n_slices=5)
    bucket = f"dimse-{uuid.uuid4().hex[:16]}"
    with moto_s3_server() as endpoint:
        receiver = start_receiver(tmp_path, storage_backend="s3", s3_endpoint=endpoint, s3_bucket=bucket,
                                  s3_access_key="testing", s3_secret_key="testing", sqlite_synchronous="FULL")
        try:
            first = storescu(receiver.port, tmp_path / "study")
            again = storescu(receiver.port, tmp_path / "study")
        finally:
            receiver.stop()
        store = S3Store(endpoint=endpoint, access_key="testing", secret_key="testing", bucket=bucket)

        assert first.returncode == 0 and again.returncode == 0, again.stderr
        database = database_of(tmp_path)
        [series] = database.series()
        assert (series.n_instances, series.instance_rows) == (5, 5)
        sent = {pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID: path for path in files}
        for number, key in enumerate(database.storage_keys()):
            stored = tmp_path / f"stored-{number}.dcm"
            store.download(key, str(stored))
            uid = pydicom.dcmread(stored, stop_before_pixels=True).SOPInstanceUID
            assert dataset_bytes(stored) == dataset_bytes(sent.pop(uid)), "the data set must be stored as received"
        assert not sent
