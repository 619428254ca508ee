"""The trainable parts and the sequence layout: shapes, gradients, labels on answers only."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vidchat.embed_model.config import EmbedConfig, TrainConfig, config_from_dict
from vidchat.embed_model.encoder import FrozenEncoder, video_features
from vidchat.embed_model.gmhra import GMHRA
from vidchat.embed_model.model import IGNORE, Example, VideoChatEmbed, load_llm
from vidchat.embed_model.qformer import QFormer
from vidchat.kernel.errors import ConfigError, InputError


def test_gmhra_aggregates_every_spatio_temporal_token_through_a_learnable_query():
    torch.manual_seed(0)
    g = GMHRA(in_dim=12, width=16, heads=4, layers=2, max_frames=6, n_tokens=4, queries=1)
    x = torch.randn(2, 5, 4, 12)  # [B, T, N, C]: 4 spatial tokens (a 2x2 grid) per frame
    y = g(x)
    assert y.shape == (2, 1 + 5 * 4, 16)  # the global query, then every token
    # The global query reads every token of every frame: change one spatial token of one frame.
    for t, n in [(0, 0), (4, 3), (2, 1)]:
        x2 = x.clone()
        x2[:, t, n] += 1.0
        assert not torch.allclose(g(x2)[:, 0], y[:, 0])
    # The depthwise 3-D convolution relates neighbouring frames and positions once trained.
    with torch.no_grad():
        for layer in g.layers:
            layer.dpe.weight.normal_()
    y = g(x)
    x2 = x.clone()
    x2[:, 3, 0] += 1.0
    assert not torch.allclose(g(x2)[:, 1 + 2 * 4 + 1], y[:, 1 + 2 * 4 + 1])  # frame 2, token 1
    with pytest.raises(ValueError, match="at most 6"):
        g(torch.randn(1, 7, 4, 12))
    with pytest.raises(ValueError, match="built for 4"):
        g(torch.randn(1, 5, 9, 12))


def test_qformer_cross_attends_every_other_layer_and_can_read_the_question():
    torch.manual_seed(0)
    q = QFormer(n_queries=5, width=16, heads=4, layers=4, cross_every=2)
    assert [layer.cross for layer in q.layers] == [True, False, True, False]
    assert not hasattr(q.layers[1], "cross_attn")
    tokens = torch.randn(2, 21, 16)
    out = q(tokens)
    assert out.shape == (2, 5, 16)
    out.sum().backward()
    assert q.queries.grad is not None
    # With text: the question changes the queries' output; padding is ignored.
    qt = QFormer(n_queries=5, width=16, heads=4, layers=2, text=True)
    text = torch.randn(2, 3, 16)
    pad = torch.tensor([[False, False, True], [False, False, False]])
    a = qt(tokens, text, pad)
    b = qt(tokens, text + torch.randn(2, 3, 16), pad)  # (a constant shift LayerNorm removes)
    assert not torch.allclose(a, b)
    text2 = text.clone()
    text2[0, 2] = torch.randn(16) * 10  # a padded position: no effect on row 0
    assert torch.allclose(qt(tokens, text2, pad)[0], a[0], atol=1e-5)


def test_labels_cover_answer_tokens_only(tiny_llm):
    llm, tok = load_llm(str(tiny_llm))
    cfg = EmbedConfig.tiny(llm=str(tiny_llm))
    model = VideoChatEmbed(cfg, encoder_dim=10, llm=llm, tokenizer=tok)
    feats = torch.randn(cfg.n_frames, 4, 10)
    ex = [
        Example(feats, "Answer briefly.", "How many squares?", "2"),
        Example(feats, "Answer briefly.", "When does square#1 first appear? Please say.", "00:01"),
    ]
    x, mask, y = model.build_inputs(ex)
    assert x.shape[:2] == mask.shape == y.shape
    for k, e in enumerate(ex):
        answer = tok(e.answer, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
        labelled = y[k][y[k] != IGNORE].tolist()
        assert labelled == answer
        # The video tokens sit inside the prompt, before the labelled answer.
        assert int(mask[k].sum()) == (y[k] != IGNORE).nonzero().max().item() + 1
    loss = model(ex)
    loss.backward()
    assert all(p.grad is None for p in llm.parameters())
    assert model.proj.weight.grad is not None
    assert set(model.trainable_state_dict()) == set(model.state_dict())
    assert not any("embed_tokens" in k for k in model.state_dict())
    scores = model.score_choices(ex[0], ["(A) 1", "(B) 2", "(C) 3"])
    assert len(scores) == 3 and all(s < 0 for s in scores)


def test_video_tokens_right_before_the_answer(tiny_llm):
    """``video_at="answer"``: the whole prompt, then the video tokens, then the answer, so the
    last video token is the position that predicts the answer's first token."""
    llm, tok = load_llm(str(tiny_llm))
    cfg = EmbedConfig.tiny(llm=str(tiny_llm), video_at="answer")
    model = VideoChatEmbed(cfg, encoder_dim=10, llm=llm, tokenizer=tok)
    ex = [Example(torch.randn(cfg.n_frames, 4, 10), "Answer briefly.", "How many squares?", "2")]
    x, mask, y = model.build_inputs(ex)
    answer = tok("2", add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    first = (y[0] != IGNORE).nonzero().min().item()
    assert y[0, first:].tolist() == answer and first == int(mask[0].sum()) - len(answer)
    feats = torch.stack([e.features for e in ex])
    vid = model.video_embeds(feats, ["Answer briefly.\nHow many squares?"])
    assert torch.allclose(x[0, first - cfg.n_queries : first], vid[0], atol=1e-6)
    prompt = tok.decode(model._prompt_parts("Answer briefly.", "How many squares?")[0])
    assert prompt.endswith("assistant\n") and "How many squares?" in prompt
    model(ex).backward()
    assert model.proj.weight.grad is not None
    # Options are scored on their own tokens; the eos only where it tells them apart.
    assert model.ends_matter(["1", "10"]) and not model.ends_matter(["red", "blue", "green"])
    with_eos = model.score_choices(ex[0], ["red", "blue"], with_eos=True)
    without = model.score_choices(ex[0], ["red", "blue"])
    assert without == model.score_choices(ex[0], ["red", "blue"], with_eos=False)
    assert with_eos != without and all(s < 0 for s in with_eos + without)
    with pytest.raises(ConfigError, match="video_at"):
        EmbedConfig(video_at="middle")


def test_encoder_shipped_weights_and_feature_cache(tmp_path, feature_cache):
    from vidchat.embed_model.synthetic import Square, make_squares_video

    enc = FrozenEncoder("tags:efficientnet-lite0", image_size=64, spatial_tokens=2)
    frames = np.zeros((3, 50, 70, 3), np.uint8)
    frames[1] = 255
    f = enc.encode(frames)
    assert f.shape == (3, 4, 1280) and enc.out_dim == 1280
    assert not torch.allclose(f[0], f[1]) and torch.allclose(f[0], f[2])
    path, _ = make_squares_video(tmp_path / "v.mp4", [Square("red", 0.5, 1.5, 0, 0, 100, 80)], 2.0)
    a = video_features(path, enc, n_frames=3)
    assert a.shape == (3, 4, 1280)
    assert len(list((feature_cache / "embed_features").glob("*.pt"))) == 1
    assert torch.equal(video_features(path, enc, n_frames=3), a)
    with pytest.raises(InputError, match=r"\[T, H, W, 3\]"):
        enc.encode(np.zeros((4, 4, 3), np.uint8))


def test_features_from_frames_decoded_elsewhere_fill_the_same_cache_entry(tmp_path, feature_cache):
    """A machine without ffmpeg (a lent GPU) encodes frames decoded here: given the frames
    `sample_frames` returns, `video_features` caches exactly what decoding would have."""
    from vidchat.embed_model.encoder import frame_side, sample_frames
    from vidchat.embed_model.synthetic import Square, make_squares_video

    enc = FrozenEncoder("tags:efficientnet-lite0", image_size=64, spatial_tokens=2)
    path, _ = make_squares_video(tmp_path / "v.mp4", [Square("red", 0.5, 1.5, 0, 0, 100, 80)], 2.0)
    frames = sample_frames(path, 3, max_side=frame_side(enc.image_size))
    given = video_features(path, enc, n_frames=3, frames=frames)
    assert len(list((feature_cache / "embed_features").glob("*.pt"))) == 1
    assert torch.equal(video_features(path, enc, n_frames=3, cache=False), given)
    assert torch.equal(video_features(path, enc, n_frames=3), given)  # read from the cache
    with pytest.raises(InputError, match="expected 4 sampled frames"):
        video_features(path, enc, n_frames=4, frames=frames)


def test_encoder_from_a_transformers_folder(tmp_path):
    """Any transformers image model by path: a tiny ViT built and saved here."""
    from vidchat.llm.local import import_transformers

    transformers = import_transformers()
    cfg = transformers.ViTConfig(
        image_size=32, patch_size=8, hidden_size=24, num_hidden_layers=1,
        num_attention_heads=2, intermediate_size=32,
    )  # fmt: skip
    transformers.ViTModel(cfg).save_pretrained(tmp_path / "vit")
    enc = FrozenEncoder(f"hf:{tmp_path / 'vit'}", image_size=32, spatial_tokens=2)
    out = enc.encode(np.zeros((2, 40, 40, 3), np.uint8))
    assert out.shape == (2, 4, 24)  # 16 patches + CLS pooled to 4 tokens
    assert enc.identity.startswith("hf:")


def test_config_errors():
    with pytest.raises(ConfigError, match="divisible"):
        EmbedConfig(width=30, heads=4)
    with pytest.raises(ConfigError, match="unknown encoder"):
        FrozenEncoder("clip:foo").load()
    with pytest.raises(ConfigError, match=r"unknown key\(s\) depth"):
        config_from_dict(EmbedConfig, {"depth": 3})
    with pytest.raises(ConfigError, match="steps must be >= 1"):
        TrainConfig(steps=0)
    with pytest.raises(ConfigError, match="align_steps"):
        TrainConfig(steps=10, align_steps=10)
    with pytest.raises(ConfigError, match="exclude each other"):
        TrainConfig(mc_only=True, open_only=True)
    full = EmbedConfig.full()
    assert full.n_queries == 32 and full.qformer_layers == 6 and full.width % full.heads == 0
    assert full.llm_layers == 0 and not full.qformer_text  # VideoChat-Embed's layout on a GPU
    cpu = EmbedConfig.cpu()
    assert cpu.spatial_tokens == 0 and cpu.qformer_cross_every == 2
    assert TrainConfig.cpu().align_steps > 0 and TrainConfig.cpu().attr_steps > 0
    assert cpu.aux_weight > 0 and EmbedConfig.full().aux_weight == 0
    # LoRA on the one kept LLM layer on CPU; the GPU preset keeps VideoChat-Embed's frozen LLM.
    assert cpu.llm_lora_rank > 0 and full.llm_lora_rank == 0


def test_batches_never_stall_on_a_set_smaller_than_a_batch():
    from vidchat.embed_model.data import InstructionDataset

    ds = InstructionDataset.__new__(InstructionDataset)  # no encoder needed for batching
    ds.items = [None, None]  # type: ignore[list-item]
    ds.example = lambda k: k  # type: ignore[method-assign]
    batches = ds.batches(8, torch.Generator().manual_seed(0))
    assert sorted(next(batches)) == [0, 1] and sorted(next(batches)) == [0, 1]


def test_feature_norm_standardises_channels_and_is_saved(tiny_llm):
    llm, tok = load_llm(str(tiny_llm))
    cfg = EmbedConfig.tiny(llm=str(tiny_llm), feature_norm=True)
    model = VideoChatEmbed(cfg, encoder_dim=6, llm=llm, tokenizer=tok)
    torch.manual_seed(0)
    # A large shared component and a small per-video one, as with small shapes on a background.
    feats = [torch.randn(cfg.n_frames, 4, 6) * 0.1 + torch.arange(6.0) * 10 for _ in range(20)]
    model.set_feature_stats(feats)
    flat = torch.cat([f.reshape(-1, 6) for f in feats])
    assert torch.allclose(model.feat_mean, flat.mean(0), atol=1e-4)
    normed = (flat - model.feat_mean) / model.feat_std
    assert torch.allclose(normed.mean(0), torch.zeros(6), atol=1e-4)
    assert torch.allclose(normed.std(0, unbiased=False), torch.ones(6), atol=1e-3)
    # The statistics travel with the weights (checkpoints hold the state dict).
    state = model.trainable_state_dict()
    assert {"feat_mean", "feat_std"} <= set(state)
    again = VideoChatEmbed(cfg, encoder_dim=6, llm=llm, tokenizer=tok)
    again.load_state_dict(state)
    assert torch.equal(again.feat_std, model.feat_std)
    # GMHRA reads the standardised features.
    a = torch.stack([feats[0]])
    with torch.no_grad():
        direct = model.proj(model.qformer(model.gmhra((a - model.feat_mean) / model.feat_std)))
        assert torch.allclose(model.video_embeds(a), direct, atol=1e-6)
    plain = VideoChatEmbed(EmbedConfig.tiny(llm=str(tiny_llm)), 6, llm, tok)
    assert "feat_mean" not in plain.state_dict()  # older checkpoints load unchanged
    with pytest.raises(ConfigError, match="feature_norm"):
        plain.set_feature_stats(feats)
