"""The embed path's answers come from the video: trained on generated scenes, its accuracy on
colour questions falls when the frames are blanked (nothing to see), and shuffling keeps the
frames but loses their order.

Scored on the videos it trained on, with a tiny model and a random 2-layer LLM: the claim here
is dependence on the frames, not generalization. bench/embed_bench.py measures both
perturbations on every visual question type of held-out videos with the CPU preset."""

from __future__ import annotations

import pytest

from vidchat.apps.evaluate import evaluate_embed, mc_items
from vidchat.apps.instruct import read_jsonl, write_jsonl
from vidchat.embed_model.config import EmbedConfig, TrainConfig
from vidchat.embed_model.encoder import video_features
from vidchat.embed_model.scenes import build_scene_dataset
from vidchat.embed_model.train import train


@pytest.mark.slow
def test_blank_or_shuffled_frames_drop_visual_accuracy(tiny_llm, tmp_path, feature_cache):
    data = build_scene_dataset(tmp_path / "scenes", 10, ratios=(1.0, 0.0, 0.0))
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
    plain = evaluate_embed(items, tmp_path / "run")
    blank = evaluate_embed(items, tmp_path / "run", perturb="blank")
    # Blank frames leave only the question, which never says the colour.
    assert plain.overall.accuracy >= 0.7, plain.overall
    assert blank.overall.accuracy <= plain.overall.accuracy - 0.3, blank.overall
    assert blank.model.endswith("[frames blank]")

    # Shuffling is the same frames in another order; blanking is a constant video.
    rec = read_jsonl(tmp_path / "data.jsonl")[0]
    from vidchat.embed_model.encoder import FrozenEncoder

    enc = FrozenEncoder(cfg.encoder, cfg.image_size, cfg.spatial_tokens)
    f = video_features(rec.video, enc, cfg.n_frames)
    s = video_features(rec.video, enc, cfg.n_frames, perturb="shuffled")
    assert sorted(f.sum((1, 2)).tolist()) == pytest.approx(sorted(s.sum((1, 2)).tolist()))
    assert not bool((f == s).all())
    b = video_features(rec.video, enc, cfg.n_frames, perturb="blank")
    assert bool((b == b[0]).all())
