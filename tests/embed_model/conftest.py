"""Shared fixtures: a tiny causal LM built locally (random weights, the real SmolLM2 tokenizer)
saved as a transformers folder and loaded back through `embed_model.model.load_llm`, and a few
synthetic videos with exact records."""

from __future__ import annotations

import pytest

from vidchat.embed_model.synthetic import build_tiny_llm


@pytest.fixture(scope="session")
def tiny_llm(tmp_path_factory):
    return build_tiny_llm(tmp_path_factory.mktemp("tiny_llm"))


@pytest.fixture(scope="session")
def scenes(tmp_path_factory):
    """Three synthetic videos and their exact records."""
    from vidchat.embed_model.synthetic import random_scene

    d = tmp_path_factory.mktemp("scenes")
    return [random_scene(d / f"scene{k}.mp4", seed=k) for k in range(3)]


@pytest.fixture
def feature_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("VIDCHAT_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"
