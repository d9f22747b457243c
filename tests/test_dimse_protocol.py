"""The receiver's DICOM protocol against pynetdicom as the SCU: compressed transfer syntaxes kept as sent,
contexts it does not serve rejected, a broken peer aborted without hurting the next one."""

from __future__ import annotations

import socket
from pathlib import Path

import pydicom
import pytest
from dimse_testkit import AE_TITLE, PACS_AE, database_of, start_receiver
from gateway_testkit import write_series
from pydicom.uid import DeflatedExplicitVRLittleEndian, JPEGLSLossless, RLELossless
from pynetdicom import AE
from pynetdicom.sop_class import CTImageStorage, StudyRootQueryRetrieveInformationModelFind, Verification

from gateway.dimse.launcher import ReceiverProcess


@pytest.fixture
def receiver(tmp_path: Path):  # type: ignore[no-untyped-def]
    process = start_receiver(tmp_path)
    yield process
    process.stop()


def scu(*contexts: tuple[str, str]) -> AE:
    ae = AE(ae_title=PACS_AE)
    for abstract_syntax, transfer_syntax in contexts:
        ae.add_requested_context(abstract_syntax, transfer_syntax)
    return ae


@pytest.mark.parametrize("transfer_syntax", [RLELossless, JPEGLSLossless, DeflatedExplicitVRLittleEndian])
def test_compressed_instances_are_stored_in_their_transfer_syntax(receiver: ReceiverProcess, tmp_path: Path, transfer_syntax) -> None:  # type: ignore[no-untyped-def]
    files = write_series(tmp_path / "s", n_slices=3, transfer_syntax_uid=transfer_syntax)
    association = scu((CTImageStorage, transfer_syntax)).associate("127.0.0.1", receiver.port, ae_title=AE_TITLE)
    assert association.is_established
    try:
        statuses = [association.send_c_store(path).Status for path in files]
    finally:
        association.release()

    assert statuses == [0x0000] * 3
    database = database_of(tmp_path)
    for key in database.storage_keys():
        stored = pydicom.dcmread(tmp_path / "var" / "objects" / key)
        assert stored.file_meta.TransferSyntaxUID == transfer_syntax
        assert stored.pixel_array.shape == (32, 32)  # still decodable: the loader can read it


def test_services_we_do_not_provide_are_rejected_per_context(receiver: ReceiverProcess) -> None:
    association = scu(
        (Verification, "1.2.840.10008.1.2"), (StudyRootQueryRetrieveInformationModelFind, "1.2.840.10008.1.2"),
    ).associate("127.0.0.1", receiver.port, ae_title=AE_TITLE)
    assert association.is_established
    try:
        assert [str(cx.abstract_syntax) for cx in association.accepted_contexts] == [Verification]
        assert [str(cx.abstract_syntax) for cx in association.rejected_contexts] == [StudyRootQueryRetrieveInformationModelFind]
        assert association.send_c_echo().Status == 0x0000
    finally:
        association.release()


def test_a_peer_sending_garbage_is_aborted_and_the_next_one_served(receiver: ReceiverProcess) -> None:
    with socket.create_connection(("127.0.0.1", receiver.port), timeout=30) as garbage:
        garbage.sendall(b"\x42" * 64)  # not a PDU type at all
        reply = garbage.recv(64)
    assert reply[:1] == b"\x07"  # A-ABORT (PS3.8 9.3.8)

    association = scu((Verification, "1.2.840.10008.1.2")).associate("127.0.0.1", receiver.port, ae_title=AE_TITLE)
    assert association.is_established
    assert association.send_c_echo().Status == 0x0000
    association.release()
