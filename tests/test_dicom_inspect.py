"""``ctriage inspect PATH``: JSON report of the series and the loaded volume, or the reason code."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from pydicom.uid import MRImageStorage

from shared.cli import main
from shared.dicom import Volume, affine_from
from shared.dicom.writer import write_ct_series


def _written_series(folder, **overrides) -> Volume:
    hu = np.full((5, 32, 40), -1000, np.int16)
    hu[:, 8:24, 10:30] = 40
    hu[:, 14:18, 18:22] = 900
    volume = Volume(hu=hu, affine=affine_from(spacing=(0.75, 0.75, 2.0), origin=(-15.0, -12.0, -50.0)))
    volume.meta.patient_name, volume.meta.patient_birth_date, volume.meta.patient_id = "Doe^Jane", "19700101", "PID-42"
    volume.meta.body_part_examined = "CHEST"
    write_ct_series(volume, folder, **overrides)
    return volume


def _inspect(path) -> tuple[int, dict]:
    result = CliRunner().invoke(main, ["inspect", str(path)])
    return result.exit_code, json.loads(result.output)


def test_inspect_prints_series_and_volume_geometry_without_patient_tags(tmp_path):
    volume = _written_series(tmp_path)

    status, report = _inspect(tmp_path)

    assert status == 0
    (series,) = report["series"]
    assert (series["modality"], series["n_instances"], series["orientation"]) == ("CT", 5, "axial")
    assert series["body_part_examined"] == "CHEST"
    summary = report["volume"]
    assert summary["shape"] == [5, 32, 40]
    assert summary["spacing"] == [0.75, 0.75, 2.0]
    assert summary["origin"] == [-15.0, -12.0, -50.0]
    assert summary["direction"] == np.eye(3).tolist()
    assert (summary["hu"]["min"], summary["hu"]["max"]) == (-1000.0, 900.0)
    assert summary["hu"]["p50"] == -1000.0 and summary["hu"]["p99"] == 900.0
    assert summary["series_instance_uid"] == volume.meta.series_instance_uid
    assert summary["warnings"] == []
    text = json.dumps(report)
    assert "Doe" not in text and "19700101" not in text and "PID-42" not in text


def test_inspect_reports_the_reason_code_and_exits_2(tmp_path):
    _written_series(tmp_path, Modality="MR", SOPClassUID=MRImageStorage)

    status, report = _inspect(tmp_path)

    assert status == 2
    assert report["reason"] == "not_ct" and report["modality"] == "MR"
    assert report["series"][0]["modality"] == "MR"


def test_inspect_of_a_non_dicom_file(tmp_path):
    (tmp_path / "scan.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(500))

    status, report = _inspect(tmp_path / "scan.jpg")

    assert status == 2
    assert report["reason"] == "not_dicom" and "series" not in report


@pytest.mark.realdata
def test_inspect_of_the_real_jpeg2000_series(shared_ct):
    status, report = _inspect(shared_ct / "nonchest_ct_abdomen_totalseg_example_dicom")

    assert status == 0
    assert report["volume"]["shape"] == [20, 512, 512]
    assert report["series"][0]["transfer_syntax_uid"] == "1.2.840.10008.1.2.4.90"
    assert report["volume"]["hu"]["p1"] <= -950 and report["volume"]["hu"]["max"] >= 300
