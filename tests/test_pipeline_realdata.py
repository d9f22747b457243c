"""``ctriage analyze`` on the team's real CT: a real chest CT goes through all three stages, real
non-chest series are refused at the gate with the right reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from shared.pipeline.cli import analyze_command

pytestmark = pytest.mark.realdata


def _analyze(path: Path, *extra: str) -> dict:
    result = CliRunner().invoke(analyze_command, [str(path), "--json", *extra])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.parametrize("series", ["dicom_5mm_kernelL", "dicom_5mm_kernelB"])
def test_a_real_chest_ct_is_analyzed_to_a_done_report(shared_ct: Path, tmp_path: Path, series: str):
    report = _analyze(shared_ct / "lungdx_A0001_adenocarcinoma" / series, "--out", str(tmp_path / "out"))

    assert report["status"] == "done"
    assert report["verdict"] in ("normal", "pathology")
    checks = {check["name"]: check for check in report["gate"]["checks"]}
    assert all(check["passed"] for check in checks.values())
    assert 1500 < checks["lung_left_ml"]["value"] < 4000 and 1500 < checks["lung_right_ml"]["value"] < 4500
    assert report["study_instance_uid"] == "1.3.6.1.4.1.14519.5.2.1.6655.2359.165554066086145834377508507990"
    written = {path.name for path in (tmp_path / "out").iterdir()}
    assert {"report.json", "organs.npz", "anomaly.npz", "sr.dcm", "report.pdf"} <= written
    assert ("seg.dcm" in written) == bool(report["findings"])  # a SEG only when there is something to show


@pytest.mark.parametrize(("case", "reason"), [
    ("nonchest_mr_brain_t1_sag_siemens", "not_ct"),
    ("nonchest_ct_headneck_hnc_0522c0001_every2nd", "not_chest"),
    ("nonchest_ct_abdomen_totalseg_example_dicom", "insufficient_coverage"),
    ("chest_ct_partial_apex_lungfcp_0001_every2nd", "insufficient_coverage"),
])
def test_real_series_that_are_not_a_whole_chest_ct_are_refused(shared_ct: Path, case: str, reason: str):
    report = _analyze(shared_ct / case)

    assert report["status"] == "rejected"
    assert report["reason"] == reason
    assert report["findings"] == []
