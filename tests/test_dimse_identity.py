"""The C-STORE intake's UID walk reads what pydicom reads, and hands anything unusual back to pydicom."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from gateway_testkit import write_series
from pydicom.uid import (
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGLSLossless,
    RLELossless,
)

from shared.dicom.identity import read_identity
from shared.dicom.instances import read_instance


def _uids(instance) -> tuple[str, str, str, str]:  # type: ignore[no-untyped-def]
    return instance.sop_class_uid, instance.sop_instance_uid, instance.study_instance_uid, instance.series_instance_uid


@pytest.mark.parametrize("transfer_syntax", [ImplicitVRLittleEndian, ExplicitVRLittleEndian, RLELossless, JPEGLSLossless])
def test_the_walk_reads_the_uids_pydicom_reads(tmp_path: Path, transfer_syntax: str) -> None:
    paths = write_series(tmp_path / "ct", n_slices=3, transfer_syntax_uid=transfer_syntax)
    for path in paths:
        data = path.read_bytes()
        identity = read_identity(data)
        assert identity is not None
        assert _uids(identity) == _uids(read_instance(path.name, data))
        assert read_identity(data[:4096]) == identity  # the head of the object suffices


def test_real_series_walk_like_pydicom_or_defer_to_it(shared_ct: Path) -> None:
    checked = deferred = 0
    for path in sorted(shared_ct.rglob("*.dcm")):
        data = path.read_bytes()
        identity = read_identity(data)
        if identity is None:  # e.g. UIDs blanked in the data set: pydicom's reader decides
            deferred += 1
            continue
        assert _uids(identity) == _uids(read_instance(path.name, data)), path
        checked += 1
    assert checked > 500


def test_damaged_bytes_never_give_other_uids_than_pydicom(tmp_path: Path) -> None:
    [path] = write_series(tmp_path / "ct", n_slices=1)
    data = path.read_bytes()[:8192]
    rng = random.Random(7)
    for _ in range(2000):
        damaged = bytearray(data[: rng.randint(0, len(data))])
        for _ in range(rng.randint(1, 3)):
            if damaged:
                damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        identity = read_identity(bytes(damaged))
        if identity is None:
            continue
        try:
            instance = read_instance("damaged", bytes(damaged))
        except Exception:  # noqa: BLE001, S112 - pydicom refuses it: the intake refuses it through pydicom too
            continue
        assert _uids(identity) == _uids(instance)


def test_not_dicom_is_left_to_pydicom() -> None:
    assert read_identity(b"") is None
    assert read_identity(b"\x00" * 128 + b"DICM" + b"\xff" * 64) is None
    assert read_identity(b"PK\x03\x04" + bytes(200)) is None
