"""Results back to PACS: our C-STORE SCU against dcmtk's ``storescp`` as the receiving PACS."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from export_testkit import storescp
from pydicom import dcmread

from gateway.dimse.launcher import free_port
from shared.config import Settings
from shared.dicom.volume import Volume
from shared.dicom.writer import write_ct_series
from shared.export.artifacts import exported_artifact_keys
from shared.export.cstore import ExportError, send_cstore
from shared.export.destinations import CStoreDestination, parse_cstore_destinations

PACS_AE = "HOSPITALPACS"


@pytest.fixture
def pacs(tmp_path: Path) -> Iterator[tuple[CStoreDestination, Path]]:
    """dcmtk's storescp on a free port, accepting any calling AE; yields its destination and output folder."""
    port = free_port()
    with storescp(tmp_path / "pacs", port, PACS_AE) as out:
        yield CStoreDestination(PACS_AE, "127.0.0.1", port), out


def dicom_objects(folder: Path, n: int) -> list[bytes]:
    volume = Volume(hu=np.full((n, 16, 16), 40, dtype=np.int16), affine=np.eye(4))
    return [path.read_bytes() for path in write_ct_series(volume, folder)]


def test_every_object_arrives_at_the_pacs_byte_identical_in_content(pacs, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    destination, out = pacs
    objects = dicom_objects(tmp_path / "objects", 3)

    sent = send_cstore(destination=destination, objects=objects, calling_ae_title="CTRIAGE", timeout_seconds=10)

    received = sorted(str(dcmread(path).SOPInstanceUID) for path in out.iterdir())
    assert sent == 3
    assert received == sorted(str(dcmread(io.BytesIO(data)).SOPInstanceUID) for data in objects)


def test_an_object_the_pacs_refuses_is_an_export_error_not_a_silent_success(pacs, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    destination, out = pacs
    volume = Volume(hu=np.zeros((1, 8, 8), dtype=np.int16), affine=np.eye(4))
    [path] = write_ct_series(volume, tmp_path / "odd", SOPClassUID="1.2.826.0.1.3680043.8.498.999")  # no storage class
    objects = [*dicom_objects(tmp_path / "ct", 1), path.read_bytes()]
    with pytest.raises(ExportError, match="object 2 of 2 not accepted"):
        send_cstore(destination=destination, objects=objects, calling_ae_title="CTRIAGE", timeout_seconds=10)
    assert len(list(out.iterdir())) == 1  # the CT went; the refused object is reported, not dropped silently


def test_an_unreachable_pacs_fails_fast_with_an_export_error(tmp_path: Path) -> None:
    nobody = CStoreDestination("NOBODY", "127.0.0.1", free_port())
    started = time.monotonic()
    with pytest.raises(ExportError, match="association not established"):
        send_cstore(destination=nobody, objects=dicom_objects(tmp_path, 1), calling_ae_title="CTRIAGE", timeout_seconds=3)
    assert time.monotonic() - started < 30


def test_destinations_are_parsed_from_settings_and_malformed_ones_named() -> None:
    settings = Settings(_env_file=None, export_cstore_destinations="PACS1@pacs.example:104, ARCH@10.0.0.5:11112")
    assert parse_cstore_destinations(settings.export_cstore_destinations) == [
        CStoreDestination("PACS1", "pacs.example", 104), CStoreDestination("ARCH", "10.0.0.5", 11112),
    ]
    assert parse_cstore_destinations("") == []
    with pytest.raises(ValueError, match="nohost"):
        parse_cstore_destinations("PACS1@pacs:104,nohost")
    with pytest.raises(ValueError, match="70000"):
        parse_cstore_destinations("PACS1@pacs:70000")


def test_seg_sr_and_key_images_are_exported_and_nothing_else() -> None:
    artifacts = {"key_image_10": "k10", "findings_mask": "m", "sr": "s", "report_pdf": "p", "seg": "g", "key_image_2": "k2"}
    assert exported_artifact_keys(artifacts) == ["g", "s", "k2", "k10"]
