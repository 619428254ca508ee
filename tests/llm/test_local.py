"""Local model files (`vidchat.llm.local`): the public helpers `vidchat.embed_model` and
``transformers serve`` use to get a local model's weights, as a GGUF file or a transformers
folder. The fast tests use small files made here; the slow one converts the shipped SmolLM2."""

from __future__ import annotations

import json

import pytest

from vidchat.kernel.errors import ConfigError
from vidchat.kernel.llm_config import LLMConfig
from vidchat.llm import local
from vidchat.llm.local import (
    export_transformers_folder,
    is_gguf,
    local_model_path,
    resolve_local_model,
    transformers_folder,
)


def test_resolve_local_model_refuses_what_it_cannot_load_here(tmp_path):
    with pytest.raises(ConfigError, match="expected a local LLM config, got backend openai"):
        resolve_local_model(LLMConfig(backend="openai"))
    with pytest.raises(ConfigError, match="hub downloads are not done here"):
        resolve_local_model("HuggingFaceTB/SmolLM2-135M-Instruct")
    with pytest.raises(ConfigError, match="not found"):
        resolve_local_model(tmp_path / "missing.gguf")


def test_a_local_gguf_path_resolves_to_itself(tmp_path):
    gguf = tmp_path / "tiny.GGUF"
    gguf.write_bytes(b"GGUF" + b"\0" * 60)
    resolved = resolve_local_model(str(gguf))
    assert resolved.path == gguf
    assert is_gguf(gguf) and not is_gguf(tmp_path)
    assert local_model_path(LLMConfig(model=str(gguf))) == gguf


def test_a_transformers_folder_is_used_as_it_is(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    with pytest.raises(ConfigError, match=r"config\.json missing"):
        transformers_folder(folder)
    (folder / "config.json").write_text(json.dumps({"model_type": "llama"}))
    assert transformers_folder(folder) == folder
    assert transformers_folder(resolve_local_model(folder)) == folder
    # llama.cpp needs the GGUF: a folder is for an OpenAI-compatible server instead.
    with pytest.raises(ConfigError, match=r"expected a \.gguf file \(llama\.cpp\)"):
        local_model_path(LLMConfig(model=str(folder)))


def test_export_links_the_folder_files(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "weights.bin").write_bytes(b"\1\2\3")
    out = export_transformers_folder(str(folder), tmp_path / "export")
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "weights.bin"]
    assert (out / "weights.bin").read_bytes() == b"\1\2\3"


def test_a_file_that_is_neither_is_a_config_error(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("x")
    with pytest.raises(ConfigError, match=r"expected a \.gguf file or a transformers folder"):
        transformers_folder(notes)


@pytest.mark.slow
def test_converted_folder_is_cached(tmp_path, monkeypatch):
    # For transformers serve and embed_model: the GGUF as a transformers folder, converted once.
    monkeypatch.setenv("VIDCHAT_CACHE", str(tmp_path / "cache"))
    from vidchat.kernel.models import resolve

    resolved = resolve("llm:smollm2-135m")
    folder = transformers_folder(resolved)
    assert folder == local._cached_folder_for(resolved)
    assert local._folder_matches(folder, resolved.identity)
    assert not local._folder_matches(folder, resolved.identity + "-other-weights")

    def no_conversion(*a, **k):
        raise AssertionError("converted again")

    monkeypatch.setattr(local, "_convert_gguf", no_conversion)
    assert transformers_folder(resolved) == folder
    assert transformers_folder("llm:smollm2-135m") == folder
    out = export_transformers_folder("llm:smollm2-135m", tmp_path / "export")
    assert (out / "config.json").is_file()
