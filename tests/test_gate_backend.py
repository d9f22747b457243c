"""Gate backend selection: built-in by default, the baseline yardstick on request, a clear error for
a backend that cannot run here."""

from __future__ import annotations


import pytest

from shared.config import get_settings
from worker_gate.backend import (
    BackendUnavailable,
    describe_active_backend,
    select_backend,
)


@pytest.fixture
def settings_env(monkeypatch):
    """Set ``CTRIAGE_*`` variables for one test; the cached settings are re-read before and after."""
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


def test_the_builtin_backend_is_the_default_and_logged(settings_env):
    settings_env.delenv("CTRIAGE_GATE_BACKEND", raising=False)
    assert select_backend().name == "builtin"
    assert describe_active_backend().startswith("gate backend: builtin")


def test_the_baseline_lung_mask_is_selected_by_the_environment(settings_env):
    settings_env.setenv("CTRIAGE_GATE_BACKEND", "baseline")
    backend = select_backend()
    assert backend.name == "baseline" and not backend.finds_heart


def test_an_unknown_backend_names_the_choices():
    with pytest.raises(BackendUnavailable, match="builtin, baseline, totalsegmentator"):
        select_backend("nnunet")
