"""The embed path's answers come from the video: trained on generated scenes, its accuracy on
colour questions falls when the frames are blanked (nothing to see), and shuffling keeps the
frames but loses their order.

The check is shown to fail where it should: the same tiny model trained on the same data with
blank frames (`EmbedConfig.blind`, the trained blind baseline) answers identically with or
without the video, so "the video matters" is False for it and its accuracy is lower.

Scored on the videos it trained on, with a tiny model and a random 2-layer LLM: the claim here
is dependence on the frames, not generalization. bench/embed_bench.py measures both
perturbations and the trained blind baseline on every visual question type of held-out videos
with the CPU preset."""

from __future__ import annotations

import pytest

from vidchat.apps.evaluate import PathReport, evaluate_embed, mc_items
from vidchat.apps.instruct import read_jsonl, write_jsonl
from vidchat.embed_model.config import EmbedConfig, TrainConfig
from vidchat.embed_model.encoder import FrozenEncoder, video_features
from vidchat.embed_model.scenes import build_scene_dataset
from vidchat.embed_model.train import train


def video_matters(plain: PathReport, without: PathReport, margin: float = 0.3) -> bool:
    """The answers use the video: taking it away costs at least `margin` accuracy."""
    return plain.overall.accuracy - without.overall.accuracy >= margin


@pytest.mark.slow
def test_blank_or_shuffled_frames_drop_visual_accuracy(tiny_llm, tmp_path, feature_cache):
    # One colour question per scene (the held-out form): with every object asked about, binding
    # a named shape to its colour takes the tiny model far more than 200 steps.
    data = build_scene_dataset(tmp_path / "scenes", 10, ratios=(1.0, 0.0, 0.0), every_in=())
    for d in data:
        d.QA = [q for q in d.QA if q.type == "colour"]
    write_jsonl(data, tmp_path / "data.jsonl")
    cfg = EmbedConfig.tiny(llm=str(tiny_llm), qformer_text=True, spatial_tokens=0, n_frames=4)
    tcfg = TrainConfig(
        steps=200, batch_size=10, lr=1e-2, warmup_steps=10, checkpoint_every=200, open_only=True
    )
    result = train(tmp_path / "data.jsonl", tmp_path / "run", cfg, tcfg, resume=False)
    assert sum(result.losses[-10:]) < sum(result.losses[:10])

    items = mc_items(tmp_path / "data.jsonl", "train")
    assert len(items) == 10
    plain = evaluate_embed(items, tmp_path / "run")
    blank = evaluate_embed(items, tmp_path / "run", perturb="blank")
    # Blank frames leave only the question, which never says the colour.
    assert plain.overall.accuracy >= 0.7, plain.overall
    assert video_matters(plain, blank), (plain.overall, blank.overall)
    assert blank.model.endswith("[frames blank]")

    # The negative control: trained blind, the model cannot use the video, and the check says
    # so (with or without frames it gives the same answers).
    blind_cfg = EmbedConfig.tiny(**{**cfg.to_dict(), "blind": True})
    train(tmp_path / "data.jsonl", tmp_path / "blind", blind_cfg, tcfg, resume=False)
    b_plain = evaluate_embed(items, tmp_path / "blind")
    b_blank = evaluate_embed(items, tmp_path / "blind", perturb="blank")
    assert "[trained blind]" in b_plain.model
    assert [r.predicted for r in b_plain.items] == [r.predicted for r in b_blank.items]
    assert not video_matters(b_plain, b_blank)
    assert b_plain.overall.accuracy <= plain.overall.accuracy - 0.2, b_plain.overall

    # Shuffling is the same frames in another order; blanking is a constant video.
    rec = read_jsonl(tmp_path / "data.jsonl")[0]
    enc = FrozenEncoder(cfg.encoder, cfg.image_size, cfg.spatial_tokens)
    f = video_features(rec.video, enc, cfg.n_frames)
    s = video_features(rec.video, enc, cfg.n_frames, perturb="shuffled")
    assert sorted(f.sum((1, 2)).tolist()) == pytest.approx(sorted(s.sum((1, 2)).tolist()))
    assert not bool((f == s).all())
    b = video_features(rec.video, enc, cfg.n_frames, perturb="blank")
    assert bool((b == b[0]).all())
