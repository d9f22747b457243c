"""Shared pytest fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_CT = Path(os.environ.get("CTRIAGE_SHARED_CT", REPO.parent / "shared" / "data" / "ct"))


@pytest.fixture(scope="session")
def shared_ct() -> Path:
    """The team's real CT folder (``../shared/data/ct``); skips, saying so, when it is absent."""
    if not SHARED_CT.is_dir():
        pytest.skip(f"real CT folder {SHARED_CT} is missing (present beside the repo in CI)")
    return SHARED_CT


@pytest.fixture
def gateway(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A running gateway app on SQLite and a local store in ``tmp_path`` (see tests/gateway_testkit.py)."""
    from gateway_testkit import gateway_settings, start_gateway  # imported here: only gateway tests pay for it

    yield from start_gateway(gateway_settings(tmp_path))
