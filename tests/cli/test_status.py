"""Truthful status: ``vidchat perceivers`` says a perceiver can run only when its weights are on
disk or can really be fetched (agreeing with ``vidchat models``), ``vidchat textualize`` warns of
a perceiver that was skipped because it cannot run here, and nothing else."""

from __future__ import annotations

import pytest

from vidchat.cli import main as cli
from vidchat.kernel import models as models_mod
from vidchat.kernel.models import locate
from vidchat.kernel.record import Provenance
from vidchat.kernel.samples import sample_path
from vidchat.pipeline.inventory import profile_models
from vidchat.pipeline.profiles import load_profile


def table_rows(capsys) -> dict[str, list[str]]:
    """``vidchat perceivers`` in this process: perceiver name -> its cells."""
    assert cli.main(["perceivers", "--width", "300"]) == 0
    rows = {}
    for line in capsys.readouterr().out.splitlines():
        cells = [c.strip() for c in line.strip("│ ").split("│")]
        if len(cells) == 5 and cells[1] not in ("", "version"):
            rows[cells[0]] = cells
    return rows


@pytest.fixture
def no_network(monkeypatch):
    asked: list[str] = []

    def unreachable(host: str, timeout_s: float = 3.0) -> bool:
        asked.append(host)
        return False

    monkeypatch.setattr(models_mod, "host_reachable", unreachable)
    return asked


def test_hub_perceivers_without_weights_or_network_cannot_run(no_network, capsys, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    rows = table_rows(capsys)
    for name in ("caption", "region_caption", "sam2", "action"):
        assert rows[name][3] == "no", rows[name]
        assert "not on disk, and huggingface.co cannot be reached" in rows[name][4]
    for name in ("asr", "detect", "tags", "shots", "ocr"):
        assert rows[name][3] == "yes", rows[name]
    assert "huggingface.co" in no_network


def test_offline_switch_says_no_without_probing(no_network, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    rows = table_rows(capsys)
    assert rows["caption"][3] == "no" and "HF_HUB_OFFLINE is set" in rows["caption"][4]
    assert no_network == []


def test_a_reachable_hub_means_it_downloads_on_first_use(capsys, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(models_mod, "host_reachable", lambda host, timeout_s=3.0: True)
    rows = table_rows(capsys)
    assert rows["sam2"][3] == "yes"
    assert "downloads from huggingface.co on first use" in rows["sam2"][4]


@pytest.mark.parametrize("profile", ["offline", "full"])
def test_perceivers_agrees_with_models(profile, no_network):
    prof = load_profile(profile)
    from vidchat.perceivers import get_perceiver

    checked = 0
    for row in profile_models(prof):
        if row.user == "llm":
            continue
        p = get_perceiver(row.user)(prof.perceivers[row.user])
        assert p.can_run_here().ok == (row.status.available and row.perceiver_ok), row.user
        assert row.status == locate(p.model_name())
        checked += 1
    assert checked >= (3 if profile == "offline" else 7)


def test_textualize_warns_of_a_perceiver_that_cannot_run_here(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("VIDCHAT_CACHE", str(tmp_path / "cache"))
    missing = tmp_path / "no-such-whisper"
    prof = tmp_path / "p.yaml"
    prof.write_text(
        f"name: p\nperceivers:\n  shots: {{detector: content}}\n  asr: {{model: '{missing}'}}\n"
    )
    out = tmp_path / "rec.json"
    code = cli.main(["textualize", str(sample_path("bigbuckbunny")), "--profile", str(prof),
                     "-o", str(out)])  # fmt: skip
    assert code == 0
    err = capsys.readouterr().err.splitlines()
    warn = [ln for ln in err if ln.startswith("vidchat: warning:")]
    assert warn == [
        f"vidchat: warning: perceivers skipped, cannot run here: asr (model path not found: "
        f"{missing})"
    ]


def test_no_warning_for_a_skip_that_loses_nothing():
    no_audio = Provenance(name="asr", version="1", status="skipped",
                          reason="video has no audio track")  # fmt: skip
    unavailable = Provenance(name="sam2", version="1", status="skipped",
                             reason="unavailable: missing Python package(s): sam2")  # fmt: skip
    failed = Provenance(name="ocr", version="1", status="failed", reason="RuntimeError: boom")
    assert not no_audio.degraded and unavailable.degraded and failed.degraded
    assert cli.provenance_warnings([no_audio]) == []
    reason = "OSError: " + "x" * 300 + "\nCheck your internet connection"
    long = Provenance(name="caption", version="1", status="failed", reason=reason)
    (line,) = cli.provenance_warnings([long])
    assert line.endswith("x…)") and "\n" not in line and len(line) < 160
    assert cli.provenance_warnings([no_audio, unavailable, failed]) == [
        "vidchat: warning: perceivers failed: ocr (RuntimeError: boom)",
        "vidchat: warning: perceivers skipped, cannot run here: sam2 (missing Python package(s): "
        "sam2)",
    ]


def test_obtainable_on_disk_missing_and_by_host(tmp_path, monkeypatch):
    up: set[str] = set()
    monkeypatch.setattr(models_mod, "host_reachable", lambda host, timeout_s=3.0: host in up)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")  # "0" is off, as huggingface_hub reads it
    assert models_mod.obtainable("whisper:tiny.en")[0]
    ok, why = models_mod.obtainable(str(tmp_path / "gone.pt"))
    assert not ok and "model path not found" in why
    assert not models_mod.obtainable("org/some-model")[0]
    up.add("huggingface.co")
    assert models_mod.obtainable("org/some-model") == (
        True, "org/some-model: not on disk; downloads from huggingface.co on first use"
    )
    assert models_mod.obtainable("small")[0]  # a library name (faster-whisper: the hub)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert not models_mod.obtainable("org/some-model")[0]
    ok, why = models_mod.obtainable("small")
    assert not ok and "github.com / openaipublic.azureedge.net cannot be reached" in why
    up.add("github.com")
    assert models_mod.obtainable("yolo11n.pt")[1].endswith("downloads from github.com on first use")
