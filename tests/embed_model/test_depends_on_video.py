"""The embed path's answers come from the video: trained on generated scenes, its accuracy on
visual questions falls when the frames are blanked (nothing to see) or shuffled (time gone).

Scored on the videos it trained on: the claim here is dependence on the frames, not
generalization (bench/embed_bench.py measures that on held-out videos)."""

from __future__ import annotations

import pytest

from embed_model.config import EmbedConfig, TrainConfig
from embed_model.encoder import video_features
from embed_model.scenes import build_scene_dataset
from embed_model.train import train
from orchestrator.evaluate import evaluate_embed, mc_items
from orchestrator.instruct import read_jsonl, write_jsonl


@pytest.mark.slow
def test_blank_or_shuffled_frames_drop_visual_accuracy(tiny_llm, tmp_path, feature_cache):
    data = build_scene_dataset(tmp_path / "scenes", 12, ratios=(1.0, 0.0, 0.0))
    keep = {"colour", "direction"}
    for d in data:
        d.QA = [q for q in d.QA if q.type in keep]
    write_jsonl(data, tmp_path / "data.jsonl")
    cfg = EmbedConfig.tiny(llm=str(tiny_llm), qformer_text=True, spatial_tokens=0, n_frames=8)
    tcfg = TrainConfig(
        steps=150, batch_size=8, lr=5e-3, warmup_steps=10, checkpoint_every=150, open_only=True
    )
    result = train(tmp_path / "data.jsonl", tmp_path / "run", cfg, tcfg, resume=False)
    assert sum(result.losses[-10:]) < sum(result.losses[:10])

    items = mc_items(tmp_path / "data.jsonl", "train")
    plain = evaluate_embed(items, tmp_path / "run")
    blank = evaluate_embed(items, tmp_path / "run", perturb="blank")
    shuffled = evaluate_embed(items, tmp_path / "run", perturb="shuffled")
    colour = (plain.per_type["colour"].accuracy, blank.per_type["colour"].accuracy)
    direction = (plain.per_type["direction"].accuracy, shuffled.per_type["direction"].accuracy)
    assert colour[0] >= colour[1] + 0.25, colour
    assert direction[0] >= direction[1] + 0.2, direction
    assert blank.model.endswith("[frames blank]")

    # Shuffling is the same frames in another order; blanking is a constant video.
    rec = read_jsonl(tmp_path / "data.jsonl")[0]
    from embed_model.encoder import FrozenEncoder

    enc = FrozenEncoder(cfg.encoder, cfg.image_size, cfg.spatial_tokens)
    f = video_features(rec.video, enc, cfg.n_frames)
    s = video_features(rec.video, enc, cfg.n_frames, perturb="shuffled")
    assert sorted(f.sum((1, 2)).tolist()) == pytest.approx(sorted(s.sum((1, 2)).tolist()))
    assert not bool((f == s).all())
    b = video_features(rec.video, enc, cfg.n_frames, perturb="blank")
    assert bool((b == b[0]).all())
