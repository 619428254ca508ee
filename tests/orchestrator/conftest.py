import pytest

import perceivers
from tests.orchestrator import toy_perceivers


@pytest.fixture
def toys(monkeypatch):
    """Register the toy perceivers beside the installed ones."""
    real = perceivers.available_perceivers

    def patched():
        return {**real(), **toy_perceivers.entry_points()}

    monkeypatch.setattr(perceivers, "available_perceivers", patched)
    return toy_perceivers


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    d = tmp_path / "cache"
    monkeypatch.setenv("VIDCHAT_CACHE", str(d))
    return d
