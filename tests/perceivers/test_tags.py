"""The ``tags`` perceiver: shipped EfficientNet-Lite0 on real photos, tiny timm/transformers models
built here, saved and loaded back through the perceiver's own loading path."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.media import ListMedia, video_info
from vidchat.kernel.errors import ConfigError
from vidchat.perceivers import get_perceiver
from vidchat.perceivers.base import Frame
from vidchat.perceivers.tags import Tag, TagsOptions, TagsPerceiver, merge_tags, preprocess
from vidchat.testing.videos import decode_frames

COFFEE_OK = {"espresso", "cup", "coffee mug"}
CAT_OK = {"tabby", "tiger cat", "Egyptian cat"}
SECONDS_EACH = 3


def photo_video(dest: Path) -> Path:
    """scikit-image's coffee then chelsea, 3 s each, letterboxed into a 640x480 10 fps video."""
    import cv2
    import skimage.data

    parts = []
    for name in ["coffee", "chelsea"]:
        png = dest.parent / f"{name}.png"
        cv2.imwrite(str(png), cv2.cvtColor(getattr(skimage.data, name)(), cv2.COLOR_RGB2BGR))
        parts += ["-loop", "1", "-t", str(SECONDS_EACH), "-framerate", "10", "-i", str(png)]
    fit = "scale=640:480:force_original_aspect_ratio=decrease,pad=640:480:(ow-iw)/2:(oh-ih)/2"
    graph = f"[0:v]{fit},setsar=1[a];[1:v]{fit},setsar=1[b];[a][b]concat=n=2:v=1[v]"
    cmd = [
        "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *parts,
        "-filter_complex", graph, "-map", "[v]", "-c:v", "libx264", "-pix_fmt", "yuv420p",
        str(dest),
    ]  # fmt: skip
    subprocess.run(cmd, check=True, capture_output=True)
    return dest


def frames(images: list[np.ndarray]) -> list[Frame]:
    return [Frame(i, float(i), im) for i, im in enumerate(images)]


# ------------------------------------------------------------------------------ contract


def test_registered_and_options():
    assert get_perceiver("tags") is TagsPerceiver
    p = TagsPerceiver()
    assert p.inputs == frozenset({"slow"}) and p.requires == ()
    assert p.backend == "efficientnet-lite" and p.availability().ok, p.availability().reason
    assert TagsPerceiver({"use_shots": True}).requires == ("shots",)
    assert TagsPerceiver({"model": "timm:resnet18"}).backend == "timm"
    assert TagsPerceiver({"model": "google/vit-base-patch16-224"}).backend == "transformers"
    with pytest.raises(ConfigError, match="unknown key 'topk'"):
        TagsPerceiver({"topk": 3})
    with pytest.raises(ConfigError, match="top_k"):
        TagsPerceiver({"top_k": 0})
    assert isinstance(p.options, TagsOptions)


def test_unavailable_models_say_why(tmp_path):
    no_ckpt = TagsPerceiver({"model": "timm:resnet18"}).availability()
    assert not no_ckpt.ok and "needs `checkpoint`" in (no_ckpt.reason or "")
    missing = TagsPerceiver({"model": str(tmp_path / "nothing-here")}).availability()
    assert not missing.ok and "model path not found" in (missing.reason or "")


def test_merge_tags_joins_consecutive_keyframes():
    kfs = [
        ([Tag(0, "cat", 0.6, 1), Tag(0, "dog", 0.2, 2)], 1.0),
        ([Tag(2, "cat", 0.8, 1)], 3.0),
        ([Tag(4, "dog", 0.5, 1)], 5.0),
    ]
    spans = sorted(merge_tags(kfs), key=lambda s: (s.start, s.label))
    got = [(s.label, s.start, s.end, s.keyframes, s.best_rank, s.best_score) for s in spans]
    assert got == [
        ("cat", 0, 3.0, 2, 1, 0.8),
        ("dog", 0, 1.0, 1, 2, 0.2),
        ("dog", 4, 5.0, 1, 1, 0.5),
    ]
    e = spans[0].event("tags")
    assert (e.kind, e.text, e.confidence, e.data) == (
        "tag",
        "cat",
        0.8,
        {"rank": 1, "score": 0.8, "keyframes": 2},
    )


def test_preprocess_shape_and_range():
    img = np.zeros((300, 451, 3), np.uint8)
    img[..., 0] = 255
    x = preprocess(img, 224, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), 0.875)
    assert x.shape == (3, 224, 224) and x.dtype == np.float32
    assert np.allclose(x[0], 1.0) and np.allclose(x[1], -1.0)


# ------------------------------------------------------------------------------ shipped model


@pytest.mark.slow
def test_efficientnet_lite0_on_real_photos(tmp_path):
    video = photo_video(tmp_path / "photos.mp4")
    slow = decode_frames(video, 1.0)
    p = TagsPerceiver()
    p.ensure_loaded()
    events = list(p.perceive(ListMedia(info=video_info(width=640, height=480), slow=slow)))
    assert all(e.kind == "tag" and e.source == "tags" for e in events)
    assert all(1 <= e.data["rank"] <= 3 and e.confidence >= 0.1 for e in events)

    def labels_during(a: float, b: float) -> set[str]:
        return {e.text for e in events if e.start < b and e.end >= a}

    coffee = labels_during(0, SECONDS_EACH - 0.01)
    cat = labels_during(SECONDS_EACH, 2 * SECONDS_EACH)
    assert coffee & COFFEE_OK, coffee
    assert cat & CAT_OK, cat
    # the coffee photo is on screen for 3 slow frames and seen in ONE keyframe: one span each
    espresso = [e for e in events if e.text == "espresso"]
    assert len(espresso) == 1 and espresso[0].start == 0 and espresso[0].end >= 2
    assert p.model_identity().startswith("efficientnet-lite:package:tags:efficientnet-lite0:")


# ------------------------------------------------------------------------------ tiny models


def test_transformers_classifier_from_a_local_folder(tmp_path):
    from vidchat.kernel.compat import import_transformers

    tf = import_transformers()
    import torch

    torch.manual_seed(0)
    labels = {0: "red thing", 1: "green thing", 2: "blue thing"}
    config = tf.ViTConfig(
        image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, num_labels=3, id2label=labels,
        label2id={v: k for k, v in labels.items()},
    )  # fmt: skip
    folder = tmp_path / "tiny-vit"
    tf.ViTForImageClassification(config).save_pretrained(folder)
    tf.ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)

    p = TagsPerceiver({"model": str(folder), "top_k": 2, "min_score": 0.0})
    assert p.backend == "transformers" and p.availability().ok
    assert p.model_identity().startswith("transformers:local:")
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (48, 64, 3), dtype=np.uint8) for _ in range(3)]
    tags = p.classify(frames(images)[0])
    assert [t.rank for t in tags] == [1, 2] and {t.label for t in tags} <= set(labels.values())
    # the perceiver's answer is the model's own: same processor, same weights, same argmax
    ref = tf.ViTForImageClassification.from_pretrained(folder).eval()
    pixels = tf.ViTImageProcessor.from_pretrained(folder)(images=images[0], return_tensors="pt")
    with torch.inference_mode():
        probs = ref(**pixels).logits.softmax(-1)[0]
    assert tags[0].label == labels[int(probs.argmax())]
    assert tags[0].score == pytest.approx(float(probs.max()), abs=1e-5)

    events = list(p.perceive(ListMedia(info=video_info(), slow=frames(images))))
    assert events and {e.text for e in events} <= set(labels.values())


def test_timm_classifier_from_a_checkpoint(tmp_path):
    from vidchat.kernel.compat import ensure_torchvision

    ensure_torchvision()
    import timm
    import torch

    torch.manual_seed(0)
    ckpt = tmp_path / "tiny.pth"
    torch.save(timm.create_model("test_vit", pretrained=False, num_classes=4).state_dict(), ckpt)
    names = tmp_path / "labels.txt"
    names.write_text("ant\nbee\ncat\ndog\n", encoding="utf-8")

    p = TagsPerceiver(
        {"model": "timm:test_vit", "checkpoint": str(ckpt), "labels": str(names), "top_k": 4}
        | {"min_score": 0.0}
    )
    assert p.backend == "timm" and p.availability().ok
    tags = p.classify(Frame(0, 0.0, np.full((90, 120, 3), 128, np.uint8)))
    assert sorted(t.label for t in tags) == ["ant", "bee", "cat", "dog"]
    assert sum(t.score for t in tags) == pytest.approx(1.0, abs=1e-4)
    assert [t.rank for t in tags] == [1, 2, 3, 4]

    wrong = TagsPerceiver(
        {"model": "timm:test_vit", "checkpoint": str(ckpt), "labels": str(tmp_path / "x.txt")}
    )
    with pytest.raises(ConfigError, match="model path not found"):
        wrong.ensure_loaded()
    unknown = TagsPerceiver({"model": "timm:no_such_net", "checkpoint": str(ckpt)})
    with pytest.raises(ConfigError, match="timm has no architecture 'no_such_net'"):
        unknown.ensure_loaded()
    misfit = TagsPerceiver({"model": "timm:resnet18", "checkpoint": str(ckpt)})
    with pytest.raises(ConfigError, match="does not fit timm:resnet18"):
        misfit.ensure_loaded()
