"""LoRA on the frozen LLM's kept layers (`EmbedConfig.llm_lora_rank`), starting a run from
another run's weights (`train(init_from=…)`) and the answer head switched off after stage 0
(`TrainConfig.answer_head_in_answers`), on the tiny local LLM."""

from __future__ import annotations

import pytest
import torch

from vidchat.apps.instruct import build_dataset, write_jsonl
from vidchat.embed_model.config import EmbedConfig, TrainConfig
from vidchat.embed_model.encoder import video_features
from vidchat.embed_model.lora import LoRALinear
from vidchat.embed_model.model import IGNORE, Example, VideoChatEmbed, load_llm
from vidchat.embed_model.scenes import ANSWER_CLASSES, ATTRIBUTE_HEADS
from vidchat.embed_model.train import load_checkpoint, train
from vidchat.kernel.errors import ConfigError, InputError


def _example(answer: str = "red") -> Example:
    torch.manual_seed(1)
    return Example(torch.randn(4, 4, 12), "Answer.", "What colour is the circle?", answer)


def test_fresh_adapters_change_nothing_and_only_they_train_in_the_llm(tiny_llm):
    llm, tok = load_llm(str(tiny_llm))
    frozen = {k: v.clone() for k, v in llm.state_dict().items()}
    torch.manual_seed(0)
    plain = VideoChatEmbed(EmbedConfig.tiny(llm=str(tiny_llm)), 12, llm, tok)
    ex = _example()
    before = plain.score_choices(ex, ["red", "blue", "green"])

    torch.manual_seed(0)  # the same bridge weights, now with adapters on the same LLM
    lora = VideoChatEmbed(EmbedConfig.tiny(llm=str(tiny_llm), llm_lora_rank=4), 12, llm, tok)
    wrapped = [m for m in llm.modules() if isinstance(m, LoRALinear)]
    layers = len(llm.get_decoder().layers)
    assert len(wrapped) == 7 * layers  # q, k, v, o, gate, up, down of every kept layer
    assert lora.score_choices(ex, ["red", "blue", "green"]) == pytest.approx(before, abs=1e-5)

    keys = [k for k in lora.state_dict() if k.startswith("llm_lora.")]
    assert len(keys) == 2 * 7 * layers  # a and b of each adapter; nothing else of the LLM
    assert not any(k.startswith("_llm") for k in lora.state_dict())
    opt = torch.optim.AdamW([p for p in lora.parameters() if p.requires_grad], lr=1e-2)
    b0 = lora.llm_lora.adapters["0_self_attn_q_proj"].b.detach().clone()
    for _ in range(3):
        opt.zero_grad()
        lora([ex]).backward()
        opt.step()
    assert not torch.equal(lora.llm_lora.adapters["0_self_attn_q_proj"].b, b0)
    # The LLM's own weights did not move; only the adapters beside them did.
    after = {k.replace(".base.", "."): v for k, v in llm.state_dict().items()}
    assert after.keys() == frozen.keys()
    assert all(torch.equal(after[k], v) for k, v in frozen.items())
    assert all(not p.requires_grad for p in llm.parameters())
    # A second bridge on the same LLM points its layers at its own adapters (no stacking).
    again = VideoChatEmbed(EmbedConfig.tiny(llm=str(tiny_llm), llm_lora_rank=4), 12, llm, tok)
    assert len([m for m in llm.modules() if isinstance(m, LoRALinear)]) == 7 * layers
    assert wrapped[0].adapter is again.llm_lora.adapters["0_self_attn_q_proj"]

    with pytest.raises(ConfigError, match="llm_lora_rank"):
        EmbedConfig.tiny(llm_lora_rank=-1)


def test_answer_head_can_be_left_out_of_the_answer_steps(tiny_llm):
    llm, tok = load_llm(str(tiny_llm))
    torch.manual_seed(0)
    cfg = EmbedConfig.tiny(llm=str(tiny_llm), aux_weight=1.0, aux_answer=True)
    model = VideoChatEmbed(cfg, 12, llm, tok)
    ex = _example()
    only_answer = torch.full((len(ATTRIBUTE_HEADS) + 1,), IGNORE, dtype=torch.long)
    only_answer[-1] = ANSWER_CLASSES.index("red")
    ex.targets = only_answer
    main, aux = model.losses([ex])
    assert aux is not None and float(aux.detach()) > 0
    main_off, aux_off = model.losses([ex], answer_head=False)
    assert float(main_off.detach()) == pytest.approx(float(main.detach()))
    assert aux_off is not None and float(aux_off.detach()) == 0.0  # no target left


def _data(scenes, path):
    write_jsonl(build_dataset([ctx for _, ctx in scenes], ratios=(0.34, 0.0, 0.66)), path)
    return path


def test_a_lora_run_round_trips_and_starts_from_another_runs_weights(
    tiny_llm, scenes, tmp_path, feature_cache
):
    data = _data(scenes, tmp_path / "data.jsonl")
    tcfg = TrainConfig(steps=6, batch_size=4, lr=1e-2, warmup_steps=1, checkpoint_every=3)
    base = train(data, tmp_path / "base", EmbedConfig.tiny(llm=str(tiny_llm)), tcfg)

    cfg = EmbedConfig.tiny(llm=str(tiny_llm), llm_lora_rank=4)
    run = train(data, tmp_path / "lora", cfg, tcfg, init_from=tmp_path / "base")
    model, enc, state = load_checkpoint(run.checkpoint)
    assert state["config"]["llm_lora_rank"] == 4
    assert any(float(v.abs().sum()) > 0 for k, v in state["model"].items()
               if k.startswith("llm_lora.") and k.endswith(".b"))  # fmt: skip
    # The checkpoint round-trips: the reloaded model answers exactly as the saved weights say.
    again, _, _ = load_checkpoint(run.checkpoint)
    feats = video_features(scenes[0][0], enc, cfg.n_frames)
    ex = Example(feats, "Answer.", "What colour is the circle?")
    assert model.score_choices(ex, ["red", "blue"]) == pytest.approx(
        again.score_choices(ex, ["red", "blue"])
    )
    for k, v in again.trainable_state_dict().items():
        assert torch.equal(v, state["model"][k]), k

    # init_from copies every weight the base run has: one step at a negligible learning rate
    # from it still holds them, where a fresh run does not.
    fresh = train(data, tmp_path / "fresh", cfg, TrainConfig(**{**tcfg.to_dict(), "steps": 1,
                  "lr": 1e-8}), resume=False)  # fmt: skip
    init = train(data, tmp_path / "init", cfg, TrainConfig(**{**tcfg.to_dict(), "steps": 1,
                 "lr": 1e-8}), init_from=tmp_path / "base")  # fmt: skip
    b = torch.load(base.checkpoint, weights_only=False)["model"]
    f = torch.load(fresh.checkpoint, weights_only=False)["model"]
    i = torch.load(init.checkpoint, weights_only=False)["model"]
    for k in b:
        assert torch.allclose(i[k], b[k], atol=1e-5), k
    assert any(not torch.allclose(f[k], b[k], atol=1e-5) for k in b)

    # A source with weights this model does not have (another shape) is a clear error.
    with pytest.raises(InputError, match="init_from"):
        train(data, tmp_path / "bad", EmbedConfig.tiny(llm=str(tiny_llm), width=32, heads=4),
              tcfg, init_from=tmp_path / "lora")  # fmt: skip
    with pytest.raises(InputError, match="no embed-model checkpoint"):
        train(data, tmp_path / "bad2", cfg, tcfg, init_from=tmp_path / "nowhere")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="not an embed-model checkpoint"):
        train(data, tmp_path / "bad3", cfg, tcfg, init_from=tmp_path / "junk.pt")
