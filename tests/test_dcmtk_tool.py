"""dcmtk's tools are found even when an activated virtual environment puts pynetdicom's same-named scripts first."""

from __future__ import annotations

from pathlib import Path

from shared.dicom.tools import dcmtk_tool


def _executable(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)
    return path


def test_a_python_script_of_the_same_name_earlier_on_path_is_skipped(tmp_path, monkeypatch):
    _executable(tmp_path / "venv" / "storescu", "#!/opt/venv/bin/python\nfrom pynetdicom.apps.storescu.storescu import main\n")
    native = _executable(tmp_path / "usr" / "storescu", "#!/bin/sh\necho dcmtk\n")
    monkeypatch.setenv("PATH", f"{tmp_path / 'venv'}:{tmp_path / 'usr'}")
    assert dcmtk_tool("storescu") == str(native)


def test_none_when_only_the_python_script_exists(tmp_path, monkeypatch):
    _executable(tmp_path / "venv" / "storescp", "#!/usr/bin/env python3\nprint('pynetdicom')\n")
    monkeypatch.setenv("PATH", str(tmp_path / "venv"))
    assert dcmtk_tool("storescp") is None
