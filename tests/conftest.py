"""Test-wide settings: no hub downloads, GPU tests skipped where there is no GPU."""

from __future__ import annotations

import os

import pytest

from vidchat import perceivers
from vidchat.testing import toys as toy_perceivers

# Tests never reach a model hub: shipped weights, local paths or tiny models built in the test.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("YOLO_OFFLINE", "1")
# No saved LLM prefixes (`vidchat.llm.prefix_cache`): one left by an earlier test or run would
# change what a test's fresh server reads. tests/llm/test_prefix_cache.py turns them on, in a
# folder of its own.
os.environ["VIDCHAT_LLM_PREFIX_CACHE"] = "0"


def _has_cuda() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:
        return False


def pytest_collection_modifyitems(config, items):
    if _has_cuda():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True, scope="module")
def _stop_local_llm_servers():
    """A local llama.cpp server lives as long as the process that started it (it is shared by
    every question); stop those a test module started, so later modules that count child
    processes (no orphans after a killed batch) see only their own."""
    yield
    import sys

    servers = sys.modules.get("vidchat.llm.server")
    if servers is not None:
        servers.stop_all()


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
