"""The auxiliary attribute loss (`EmbedConfig.aux_weight`): targets read from the generator's
truth, a head on the video tokens that learns them, and nothing at all when it is off."""

from __future__ import annotations

import math

import pytest
import torch

from vidchat.apps.instruct import write_jsonl
from vidchat.embed_model.config import EmbedConfig, TrainConfig
from vidchat.embed_model.model import IGNORE, Example, VideoChatEmbed, load_llm
from vidchat.embed_model.scenes import (
    ATTRIBUTE_HEADS,
    Scene,
    Shape,
    build_scene_dataset,
    scene_targets,
    write_scene,
)
from vidchat.embed_model.train import load_checkpoint, train
from vidchat.kernel.errors import ConfigError, InputError


def _head(name: str) -> int:
    return [h for h, _ in ATTRIBUTE_HEADS].index(name)


def test_targets_say_what_the_truth_record_says(tmp_path):
    scene = Scene(
        shapes=(
            Shape("red", "circle", "small", 10, 10, direction="left", start=1.0),
            Shape("blue", "square", "large", 50, 20, direction="down", start=0.25),
            Shape("yellow", "triangle", "small", 30, 60),
        ),
        word="TAXI",
        sentence="The train leaves at noon.",
        background=30,
        seed=7,
    )
    video, _, _ = write_scene(scene, tmp_path)
    t = scene_targets(video)
    assert t is not None and len(t) == len(ATTRIBUTE_HEADS)

    def said(name: str) -> str:
        k = _head(name)
        return ATTRIBUTE_HEADS[k][1][t[k]] if t[k] != IGNORE else "-"

    assert [said(f"red: {a}") for a in ("shape", "size", "motion")] == ["circle", "small", "left"]
    assert [said(f"blue: {a}") for a in ("shape", "size", "motion")] == ["square", "large", "down"]
    assert said("yellow: motion") == "still"
    # An absent colour: "absent" as its shape, no size or motion to learn.
    assert [said(f"green: {a}") for a in ("shape", "size", "motion")] == ["absent", "-", "-"]
    assert said("moving objects") == "2"
    assert said("first mover's colour") == "blue"  # moves at 0.25 s, the red one at 1.0 s
    # Any other video has no truth: no targets, no auxiliary loss for it.
    other = tmp_path / "other.mp4"
    other.write_bytes(b"")
    assert scene_targets(other) is None


def test_off_builds_no_head_and_adds_nothing(tiny_llm):
    llm, tok = load_llm(str(tiny_llm))
    torch.manual_seed(0)
    cfg = EmbedConfig.tiny(llm=str(tiny_llm))
    model = VideoChatEmbed(cfg, encoder_dim=12, llm=llm, tokenizer=tok)
    targets = torch.zeros(len(ATTRIBUTE_HEADS), dtype=torch.long)
    ex = [Example(torch.randn(4, 4, 12), "Answer.", "What colour?", "red", targets)]
    main, aux = model.losses(ex)
    assert aux is None and not hasattr(model, "aux_head")
    assert float(model(ex).detach()) == pytest.approx(float(main.detach()))
    with pytest.raises(ConfigError, match="aux_weight"):
        model.aux_logits(torch.zeros(1, 5, 64), torch.zeros(1, 8, 64))
    with pytest.raises(ConfigError, match="aux_weight"):
        EmbedConfig.tiny(aux_weight=-1.0)
    with pytest.raises(ConfigError, match="aux_from"):
        EmbedConfig.tiny(aux_from="llm")

    # On: the total is main + weight * aux, and examples without truth add no auxiliary loss.
    for aux_from in ("queries", "gmhra"):
        torch.manual_seed(0)
        on = VideoChatEmbed(
            EmbedConfig.tiny(llm=str(tiny_llm), aux_weight=0.5, aux_from=aux_from),
            encoder_dim=12,
            llm=llm,
            tokenizer=tok,
        )
        main, aux = on.losses(ex)
        assert aux is not None and float(aux.detach()) > 0
        total = float(on(ex).detach())
        assert total == pytest.approx(float(main.detach()) + 0.5 * float(aux.detach()), rel=1e-5)
        on(ex).backward()
        assert on.aux_head.weight.grad is not None
        # The head's gradient reaches the bridge part it reads.
        part = on.qformer.queries if aux_from == "queries" else on.gmhra.query
        assert part.grad is not None and float(part.grad.abs().sum()) > 0
        no_truth = [Example(ex[0].features, "Answer.", "What colour?", "red")]
        assert on.losses(no_truth)[1] is None


@pytest.mark.slow
def test_aux_loss_falls_when_training_and_is_kept_in_the_checkpoint(
    tiny_llm, tmp_path, feature_cache
):
    data = build_scene_dataset(tmp_path / "scenes", 6, ratios=(1.0, 0.0, 0.0), every_in=())
    for d in data:
        d.QA = [q for q in d.QA if q.type == "colour"]
    write_jsonl(data, tmp_path / "data.jsonl")
    cfg = EmbedConfig.tiny(llm=str(tiny_llm), aux_weight=1.0, spatial_tokens=0, n_frames=4)
    tcfg = TrainConfig(
        steps=60, batch_size=6, lr=1e-2, warmup_steps=5, checkpoint_every=60, open_only=True
    )
    result = train(tmp_path / "data.jsonl", tmp_path / "run", cfg, tcfg, resume=False)
    aux = result.aux_losses
    assert len(aux) == 60 and not any(math.isnan(a) for a in aux)
    first, last = sum(aux[:5]) / 5, sum(aux[-5:]) / 5
    assert last < 0.5 * first, (first, last)
    # The head has learnt the training scenes' attributes (read back from the video tokens).
    model, enc, state = load_checkpoint(result.checkpoint)
    assert state["aux_losses"] == aux
    from vidchat.embed_model.encoder import video_features

    right = asked = 0
    with torch.no_grad():
        for d in data:
            f = video_features(d.video, enc, cfg.n_frames).unsqueeze(0)
            g, q = model.bridge(f, [f"{d.QA[0].i}\n{d.QA[0].q}"])
            want = scene_targets(d.video)
            assert want is not None
            for logits, w in zip(model.aux_logits(g, q), want, strict=True):
                if w != IGNORE:
                    asked += 1
                    right += int(int(logits[0].argmax()) == w)
    assert right / asked >= 0.9, (right, asked)

    # Off: no auxiliary loss is computed at all (NaN per step), the main loss alone trains.
    off = train(
        tmp_path / "data.jsonl",
        tmp_path / "off",
        EmbedConfig.tiny(llm=str(tiny_llm), spatial_tokens=0, n_frames=4),
        TrainConfig(**{**tcfg.to_dict(), "steps": 3}),
        resume=False,
    )
    assert len(off.aux_losses) == 3 and all(math.isnan(a) for a in off.aux_losses)


@pytest.mark.slow
def test_stage_0_trains_the_attributes_alone_and_resumes(tiny_llm, tmp_path, feature_cache):
    data = build_scene_dataset(tmp_path / "scenes", 4, ratios=(1.0, 0.0, 0.0), every_in=())
    write_jsonl(data, tmp_path / "data.jsonl")
    cfg = EmbedConfig.tiny(llm=str(tiny_llm), aux_weight=1.0, n_frames=4)
    tcfg = TrainConfig(
        steps=1,
        attr_steps=30,
        attr_batch_size=8,
        lr=1e-2,
        warmup_steps=3,
        checkpoint_every=10,
        open_only=True,
    )
    result = train(tmp_path / "data.jsonl", tmp_path / "run", cfg, tcfg, resume=False)
    assert result.attr_steps == 30 and len(result.attr_losses) == 30 and result.steps == 1
    first, last = sum(result.attr_losses[:5]) / 5, sum(result.attr_losses[-5:]) / 5
    assert last < 0.7 * first, (first, last)
    _, _, state = load_checkpoint(result.checkpoint)
    assert state["attr_step"] == 30 and state["attr_losses"] == result.attr_losses

    # A run stopped inside stage 0 continues it where it stopped, with the same curve.
    (tmp_path / "run2").mkdir()
    stop = TrainConfig(**{**tcfg.to_dict(), "attr_steps": 20})
    part = train(tmp_path / "data.jsonl", tmp_path / "run2", cfg, stop, resume=False)
    assert part.attr_steps == 20
    state = torch.load(tmp_path / "run2" / "checkpoint.pt", weights_only=False)
    state["step"], state["attr_step"] = 0, 10  # as if killed after the checkpoint at step 10
    state["attr_losses"] = state["attr_losses"][:10]
    torch.save(state, tmp_path / "run2" / "checkpoint.pt")
    more = train(tmp_path / "data.jsonl", tmp_path / "run2", train_config=stop)
    assert more.attr_steps == 20 and len(more.attr_losses) == 20

    # Stage 0 without an attribute head is a configuration error, said before any step.
    with pytest.raises(InputError, match="aux_weight"):
        train(
            tmp_path / "data.jsonl",
            tmp_path / "run3",
            EmbedConfig.tiny(llm=str(tiny_llm), n_frames=4),
            tcfg,
            resume=False,
        )
