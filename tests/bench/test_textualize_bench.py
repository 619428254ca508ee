"""bench/textualize_bench.py: its three modes really are three ways of running, side by side."""

from __future__ import annotations

import json

from bench import textualize_bench
from vidchat import perceivers
from vidchat.testing import toys as toy_perceivers


def test_three_modes_and_their_ratios_on_a_short_video(tmp_path, monkeypatch):
    real = perceivers.available_perceivers
    monkeypatch.setattr(
        perceivers, "available_perceivers", lambda: {**real(), **toy_perceivers.entry_points()}
    )
    import vidchat.pipeline.core as pl

    decodes: list[object] = []
    real_decode = pl.decode_frames

    def counting(*a, **kw):
        decodes.append(a)
        return real_decode(*a, **kw)

    monkeypatch.setattr(pl, "decode_frames", counting)
    prof = tmp_path / "toy.yaml"
    prof.write_text(
        "name: toy\nsampling: {slow_fps: 1.0, fast_fps: 2.0}\n"
        "perceivers: {brightness: null, counter: null, marker: null, loudness: null}\n"
    )
    out = tmp_path / "textualize.json"
    result = textualize_bench.main(
        ["--video", "bigbuckbunny", "--profile", str(prof), "--out", str(out)]
    )
    assert json.loads(out.read_text()) == result
    runs, summary = result["runs"], result["summary"]
    assert {m: len(r) for m, r in runs.items()} == dict.fromkeys(textualize_bench.MODES, 1) | {
        "warm": 1
    }
    # Frame decodes: brightness is the only frame perceiver, so one per cold run (the throwaway
    # first run included) and none on the warm cache.
    assert len(decodes) == 4
    for mode in ("naive", "in_turn", "shared"):
        (run,) = runs[mode]
        assert all(p["status"] == "ok" for p in run["perceivers"].values()), mode
        assert run["events"] == runs["shared"][0]["events"]  # same record in every mode
    assert all(p["cached"] for p in runs["warm"][0]["perceivers"].values())
    s = {m: r[0]["seconds"] for m, r in runs.items()}
    assert summary["speedup_decode_sharing"] == round(s["naive"] / s["in_turn"], 3)
    assert summary["speedup_parallel_perceivers"] == round(s["in_turn"] / s["shared"], 3)
    assert summary["speedup_shared_vs_naive"] == round(s["naive"] / s["shared"], 3)
    assert summary["measured_at"].endswith("UTC") and summary["repeats"] == 1


def test_modes_alternate_their_order_between_repeats():
    assert textualize_bench.order_of(0) == ("naive", "in_turn", "shared")
    assert textualize_bench.order_of(1) == ("shared", "in_turn", "naive")
