"""The ``action`` perceiver with a tiny VideoMAE built locally (random weights).

No action-recognition weights ship in any registry package: the test builds a VideoMAE video
classifier with transformers' own classes and a real `VideoMAEImageProcessor`, saves the folder
and loads it back through the perceiver's path (resolver -> AutoModelForVideoClassification,
AutoVideoProcessor). Random weights give arbitrary labels, so the tests check the windows, times,
labels and scores. Real models the code targets: MCG-NJU/videomae-base-finetuned-kinetics,
facebook/timesformer-base-finetuned-k400.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from tests.media import ListMedia, video_info
from vidchat.kernel.errors import ConfigError
from vidchat.kernel.samples import sample_path
from vidchat.perceivers.action import ActionPerceiver, window_starts
from vidchat.perceivers.caption import import_transformers
from vidchat.testing.videos import decode_frames

LABELS = ["walking", "riding a bike", "dancing", "cooking"]


def build_tiny_videomae(folder: Path) -> Path:
    import torch

    T = import_transformers()
    config = T.VideoMAEConfig(
        image_size=32, patch_size=8, num_frames=4, tubelet_size=2, hidden_size=16,
        num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
        num_labels=len(LABELS), id2label=dict(enumerate(LABELS)),
        label2id={v: k for k, v in enumerate(LABELS)},
    )  # fmt: skip
    torch.manual_seed(0)
    out = folder / "videomae-tiny"
    T.VideoMAEForVideoClassification(config).save_pretrained(out)
    T.VideoMAEImageProcessor(
        size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
    ).save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def tiny_videomae(tmp_path_factory) -> Path:
    return build_tiny_videomae(tmp_path_factory.mktemp("videomae"))


@pytest.fixture(scope="module")
def bikes_frames():
    return decode_frames(sample_path("bikes"), fps=4.0, max_side=320)


def test_window_starts() -> None:
    assert window_starts(0.0, 2.0, 2.0) == [0]
    assert window_starts(1.99, 2.0, 2.0) == [0]
    assert window_starts(2.0, 2.0, 2.0) == [1]
    assert window_starts(2.5, 2.0, 1.0) == [1, 2]
    assert window_starts(0.5, 2.0, 1.0) == [0]


def test_options() -> None:
    with pytest.raises(ConfigError, match=r"stride_s .* must not exceed window_s"):
        ActionPerceiver({"window_s": 1.0, "stride_s": 2.0})
    with pytest.raises(ConfigError, match="action: unknown key 'topk'"):
        ActionPerceiver({"topk": 2})
    p = ActionPerceiver()
    assert p.inputs == frozenset({"fast"}) and p.availability().ok
    assert p.model_identity() == "hub:MCG-NJU/videomae-base-finetuned-kinetics"


@pytest.mark.slow
def test_windows_give_topk_labels(tiny_videomae, bikes_frames) -> None:
    frames = bikes_frames
    duration = frames[-1].t
    p = ActionPerceiver(
        {"model": str(tiny_videomae), "window_s": 2.0, "stride_s": 1.0, "top_k": 2,
         "min_score": 0.0, "merge": False}
    )  # fmt: skip
    events = list(p.perceive(ListMedia(video_info(duration=duration), fast=frames)))
    assert p._clip_frames == 4  # the model's num_frames
    # one event per window: full windows start every second; the tail needs half a window
    full = [k for k in range(20) if k + 2.0 <= duration + 1e-6 or k == 0]
    starts = [round(e.start) for e in events]
    assert starts[: len(full)] == full
    assert len(events) in (len(full), len(full) + 1)
    for e in events:
        assert e.kind == "action" and e.source == "action"
        assert e.start < e.end <= e.start + 2.0
        top = json.loads(str(e.data["top"]))
        assert len(top) == 2 and top[0][1] >= top[1][1]
        assert {lab for lab, _ in top} <= set(LABELS)
        assert e.data["label"] == top[0][0] and e.confidence == top[0][1]
    merged = list(
        ActionPerceiver({"model": str(tiny_videomae), "window_s": 2.0, "stride_s": 1.0,
                         "min_score": 0.0}).perceive(
            ListMedia(video_info(duration=duration), fast=frames)
        )
    )  # fmt: skip
    assert sum(int(e.data["windows"]) for e in merged) == len(events)
    for a, b in itertools.pairwise(merged):
        assert a.data["label"] != b.data["label"]  # equal neighbours were merged
