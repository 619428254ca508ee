"""bench/perception_bench.py: the two profiles it compares, and the JSON it writes."""

from __future__ import annotations

import json

from bench import perception_bench
from vidchat.pipeline.profiles import load_profile


def test_baseline_is_the_offline_profile_without_ocr_and_tags():
    baseline, shipped = perception_bench.rtf_profiles()
    assert shipped == load_profile("offline")
    assert {"ocr", "tags"} <= set(shipped.perceivers)
    assert list(baseline.perceivers) == [n for n in shipped.perceivers if n not in ("ocr", "tags")]
    for name, opts in baseline.perceivers.items():
        assert opts == shipped.perceivers[name]
    assert baseline.sampling == shipped.sampling


def test_results_keep_the_per_keyframe_rows_beside_the_rtf_table(tmp_path, monkeypatch, capsys):
    rows = [{"perceiver": "ocr", "status": "ok", "s_per_keyframe": 0.9, "load_s": 0.1,
             "outputs_per_keyframe": 1.0, "model": "m"}]  # fmt: skip

    def run(name):
        return {"profile": name, "seconds": 10.0, "rtf": 0.125,
                "perceivers": {"detect": {"seconds": 9.0, "items": 3}}}  # fmt: skip

    rtf = {"video": "vtest", "offline_without_ocr_tags": run("offline-ocr-tags"),
           "offline": run("offline"), "ratio_to_offline": 1.0, "target_met": True}  # fmt: skip
    monkeypatch.setattr(perception_bench, "keyframe_counts", lambda names: [])
    monkeypatch.setattr(perception_bench, "per_keyframe", lambda video, n: rows)
    monkeypatch.setattr(perception_bench, "rtf_with_ocr_and_tags", lambda video: rtf)
    out = tmp_path / "perception.json"
    perception_bench.main(["--out", str(out)])
    written = json.loads(out.read_text())
    assert written["per_keyframe"] == rows  # not overwritten by the RTF table's text
    assert written["rtf"] == rtf and written["measured_at"].endswith("UTC")
    printed = " ".join(capsys.readouterr().out.split())
    assert "offline-ocr-tags 10.0 s RTF 0.125 detect 9.0s/3" in printed
