"""Test-wide settings: no hub downloads, GPU tests skipped where there is no GPU."""

from __future__ import annotations

import os

import pytest

# Tests never reach a model hub: shipped weights, local paths or tiny models built in the test.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("YOLO_OFFLINE", "1")


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

    servers = sys.modules.get("orchestrator.llm_server")
    if servers is not None:
        servers.stop_all()
