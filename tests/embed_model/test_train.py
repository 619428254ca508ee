"""Training end to end on CPU: tiny config, tiny local LLM (random weights, real loading path),
the real shipped EfficientNet-Lite0 encoder, synthetic videos with exact records."""

from __future__ import annotations

import json

import torch

from vidchat.apps.evaluate import chance_report, comparison_table, evaluate_embed, mc_items
from vidchat.apps.instruct import build_dataset, write_jsonl
from vidchat.cli.main import main as cli_main
from vidchat.embed_model.config import EmbedConfig, TrainConfig
from vidchat.embed_model.infer import answer_with_embed
from vidchat.embed_model.train import CHECKPOINT, load_checkpoint, main, train


def _data(scenes, path):
    records = [ctx for _, ctx in scenes]
    write_jsonl(build_dataset(records, ratios=(0.34, 0.0, 0.66)), path)
    return path


def test_tiny_model_loss_falls_checkpoints_and_resumes(
    tiny_llm, scenes, tmp_path, feature_cache, capsys
):
    data = _data(scenes, tmp_path / "data.jsonl")
    cfg = EmbedConfig.tiny(llm=str(tiny_llm))
    tcfg = TrainConfig(
        steps=40, batch_size=8, lr=1e-2, warmup_steps=3, checkpoint_every=20, split="train"
    )
    result = train(data, tmp_path / "run", cfg, tcfg, resume=False)

    assert result.steps == 40 and len(result.losses) == 40
    first, last = sum(result.losses[:5]) / 5, sum(result.losses[-5:]) / 5
    assert last < first - 1.0, (first, last)
    # Only the bridge trains: GMHRA + Q-Former + projection, nothing of the LLM.
    model, _, state = load_checkpoint(result.checkpoint)
    assert state["config"] == cfg.to_dict()
    assert state["train"]["steps"] == 40
    assert not any(k.startswith("_llm") for k in state["model"])
    assert all(not p.requires_grad for p in model.llm.parameters())
    assert result.trainable_params == sum(p.numel() for p in model.parameters())
    assert result.steps_per_s > 0

    # Resume: continues at step 40 with the same optimizer state and loss history.
    more = train(
        data, tmp_path / "run", train_config=TrainConfig(**{**tcfg.to_dict(), "steps": 44})
    )
    assert more.resumed_from == 40 and more.steps == 44
    assert more.losses[:40] == result.losses and len(more.losses) == 44
    assert torch.load(tmp_path / "run" / CHECKPOINT, weights_only=False)["step"] == 44

    # Inference through the same checkpoint: a choice among options, and free text.
    video, ctx = scenes[0]
    ans = answer_with_embed(
        video, "How many different squares appear in the video?", tmp_path / "run",
        choices=["0", "1", "2", "3"],
    )  # fmt: skip
    assert ans.choice_index in range(4) and len(ans.scores) == 4 and ans.seconds > 0
    free = answer_with_embed(ctx, "When does square#1 first appear?", tmp_path / "run")
    assert isinstance(free.text, str) and free.model.startswith("embed:")
    # ... and through `vidchat ask --path embed`, the same interface as the text path.
    rc = cli_main(
        [
            "ask",
            str(video),
            "When does square#1 first appear?",
            "--path",
            "embed",
            "--checkpoint",
            str(tmp_path / "run"),
            "--format",
            "json",
        ]
    )
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["model"].startswith("embed:") and isinstance(out["text"], str)

    # The harness on held-out videos: every test question scored, one row per type.
    items = mc_items(data, "test")
    report = evaluate_embed(items, tmp_path / "run")
    assert report.overall.n == len(items) and report.overall.unparsed == 0
    assert all(r.predicted is not None for r in report.items)
    table = comparison_table([report, chance_report(items)])
    assert "embed acc" in table and "| **all** |" in table


def test_train_command_line_reports_bad_input(tmp_path, capsys):
    assert main([str(tmp_path / "none.jsonl"), str(tmp_path / "run"), "--steps", "1"]) == 2
    assert "no such instruction file" in capsys.readouterr().err
