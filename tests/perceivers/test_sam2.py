"""The ``sam2`` perceiver: RLE helpers, options, and SAM-2 video tracking with a tiny model.

No SAM-2 weights ship in any registry package, so the tracking test builds a tiny SAM-2 (the
release's hiera-tiny config shrunk: 8-wide Hiera, 32-wide memory, 256 px input) with sam2's own
Hydra config and classes, saves a checkpoint in the release's format, and loads it back through
the perceiver's real path (`build_sam2_video_predictor`). The detector is the real shipped YOLO.
"""

from __future__ import annotations

import math
import subprocess
from pathlib import Path

import numpy as np
import pytest

from vidchat.kernel.errors import ConfigError
from vidchat.kernel.record import Event, VideoContext, track_box_at, track_masks
from vidchat.kernel.samples import sample_path
from vidchat.perceivers.sam2_masks import (
    SAM2Perceiver,
    build_video_predictor,
    decode_rle,
    encode_rle,
    mask_from_event,
)

_TINY_EDITS = [
    (
        "embed_dim: 96\n      num_heads: 1\n      stages: [1, 2, 7, 2]\n"
        "      global_att_blocks: [5, 7, 9]",
        "embed_dim: 8\n      num_heads: 1\n      stages: [1, 1, 2, 1]\n"
        "      global_att_blocks: [3]\n      window_spec: [4, 4, 4, 4]",
    ),
    ("num_pos_feats: 256", "num_pos_feats: 32"),
    (
        "d_model: 256\n      backbone_channel_list: [768, 384, 192, 96]",
        "d_model: 32\n      backbone_channel_list: [64, 32, 16, 8]",
    ),
    ("    d_model: 256\n    pos_enc_at_input", "    d_model: 32\n    pos_enc_at_input"),
    ("dim_feedforward: 2048", "dim_feedforward: 64"),
    ("feat_sizes: [64, 64]", "feat_sizes: [16, 16]"),
    ("embedding_dim: 256", "embedding_dim: 32"),
    ("kv_in_dim: 64", "kv_in_dim: 16"),
    ("      d_model: 256\n      pos_enc_at_cross", "      d_model: 32\n      pos_enc_at_cross"),
    ("num_layers: 4", "num_layers: 1"),
    ("out_dim: 64", "out_dim: 16\n      in_dim: 32"),
    ("num_pos_feats: 64", "num_pos_feats: 16"),
    ("padding: 1\n", "padding: 1\n        embed_dim: 32\n"),
    ("dim: 256\n", "dim: 32\n"),
    ("image_size: 1024", "image_size: 256"),
]


def build_tiny_sam2(folder: Path) -> tuple[Path, Path]:
    """A tiny random SAM-2.1 (config YAML, checkpoint .pt) built from the release's own config."""
    import importlib.resources

    import torch

    src = (
        importlib.resources.files("sam2") / "configs" / "sam2.1" / "sam2.1_hiera_t.yaml"
    ).read_text()
    for old, new in _TINY_EDITS:
        assert old in src, f"sam2's hiera-tiny config changed: {old!r} not found"
        src = src.replace(old, new)
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "sam2_tiny_test.yaml"
    config.write_text(src)
    torch.manual_seed(0)
    model = build_video_predictor(str(config), None, "cpu")
    ckpt = folder / "sam2_tiny_test.pt"
    torch.save({"model": model.state_dict()}, ckpt)  # the release checkpoints' layout
    return config, ckpt


@pytest.fixture
def cache_dir(tmp_path, monkeypatch) -> Path:
    d = tmp_path / "cache"
    monkeypatch.setenv("VIDCHAT_CACHE", str(d))
    return d


@pytest.fixture(scope="module")
def tiny_sam2(tmp_path_factory) -> tuple[Path, Path]:
    return build_tiny_sam2(tmp_path_factory.mktemp("sam2"))


def vtest_clip(dest: Path, seconds: float = 5.0) -> Path:
    """The first seconds of vtest.avi (pedestrians), re-encoded small."""
    out = dest / "vtest5.mp4"
    if not out.exists():
        subprocess.run(
            ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(sample_path("vtest")),
             "-t", str(seconds), "-an", "-c:v", "libx264", "-preset", "veryfast", str(out)],
            check=True,
        )  # fmt: skip
    return out


# ---------------------------------------------------------------------------------------------
# RLE


def test_rle_round_trip_and_coco_order() -> None:
    rng = np.random.default_rng(0)
    for shape in [(5, 7), (1, 1), (12, 3)]:
        m = rng.random(shape) > 0.5
        rle = encode_rle(m)
        assert rle.size == shape and sum(rle.counts) == m.size
        assert np.array_equal(decode_rle(rle), m)
    m = np.zeros((2, 3), bool)
    m[0, 0] = True  # first pixel set: COCO starts with a zero-length run of 0s
    m[1, 2] = True
    # column-major: (0,0)=1 (1,0)=0 (0,1)=0 (1,1)=0 (0,2)=0 (1,2)=1
    assert encode_rle(m).counts == [0, 1, 4, 1]
    assert encode_rle(np.zeros((2, 2), bool)).counts == [4]
    with pytest.raises(ValueError, match="2-D"):
        encode_rle(np.zeros((2, 2, 2), bool))


def test_mask_from_event_rejects_other_events() -> None:
    e = Event(start=0, end=0, kind="caption", text="x", source="caption")
    with pytest.raises(ValueError, match="expected a 'mask' event"):
        mask_from_event(e)


# ---------------------------------------------------------------------------------------------
# Options and model naming


def test_options_and_contract() -> None:
    p = SAM2Perceiver()
    assert p.requires == ("detect",) and p.inputs == frozenset({"fast"})
    assert p.options.model == "facebook/sam2.1-hiera-small"
    assert p.availability().ok  # a known hub id: available (downloads on first use)
    with pytest.raises(ConfigError, match="sam2: unknown key 'chunk'"):
        SAM2Perceiver({"chunk": 3})
    with pytest.raises(ConfigError, match="chunk_frames"):
        SAM2Perceiver({"chunk_frames": 1})


def test_unknown_hub_id_and_local_checkpoint_without_config(tmp_path) -> None:
    av = SAM2Perceiver({"model": "someone/sam-x"}).availability()
    assert not av.ok and "unknown SAM-2 hub id" in (av.reason or "")
    assert "facebook/sam2.1-hiera-small" in (av.reason or "")
    ckpt = tmp_path / "weights.pt"
    ckpt.write_bytes(b"x")
    av = SAM2Perceiver({"model": str(ckpt)}).availability()
    assert not av.ok and "set `config`" in (av.reason or "")
    # A release file name is enough to find its packaged config.
    named = tmp_path / "sam2.1_hiera_small.pt"
    named.write_bytes(b"x")
    p = SAM2Perceiver({"model": str(named)})
    assert p.availability().ok
    assert p._config_source(p._resolved()) == ("configs/sam2.1/sam2.1_hiera_s.yaml", None)


# ---------------------------------------------------------------------------------------------
# Tracking with the tiny model and the real detector


@pytest.mark.slow
def test_tiny_sam2_tracks_every_detected_object(tiny_sam2, tmp_path, cache_dir) -> None:
    from vidchat.pipeline.core import Pipeline
    from vidchat.pipeline.profiles import parse_profile

    config, ckpt = tiny_sam2
    clip = vtest_clip(tmp_path)
    profile = parse_profile(
        {
            "name": "sam2-test",
            "sampling": {"fast_fps": 2.0, "fast_max_side": 384},
            "perceivers": {
                "detect": {"min_track_frames": 2},
                # chunks of 4 frames: the clip's 10 fast frames need several chunks (carry-over)
                "sam2": {"model": str(ckpt), "config": str(config), "chunk_frames": 4},
            },
        }
    )
    ctx = Pipeline(profile, strict=True).run(clip)
    prov = {p.name: p for p in ctx.provenance}
    assert prov["sam2"].status == "ok", prov["sam2"].reason
    assert ctx.objects, "the detector found nobody in vtest's first 5 s"
    ids = {o.id for o in ctx.objects}
    assert not [e for e in ctx.events if e.kind == "mask"]  # masks live on the tracks (1.2)
    tracks = {e.objects[0]: e for e in ctx.events if e.kind == "mask_track"}
    # Ids are the detector's; every tracked object has masks on its track and one summary.
    assert sorted(tracks) == sorted(ids)
    # The clip's fast frames (5 s at 2 fps), every one a multiple of 0.5 s.
    fast_times = [i * 0.5 for i in range(10)]
    for o in ctx.objects:
        own = track_masks(o)
        assert own, f"{o.id} has no masks"
        times = [t for t, _ in own]
        assert times[0] == pytest.approx(o.first_seen)  # the prompt frame: the detector's point
        assert times[-1] <= o.last_seen + 1e-6 and times == sorted(set(times))
        lifetime = [t for t in fast_times if o.first_seen - 1e-3 <= t <= o.last_seen + 1e-3]
        assert all(any(abs(t - f) < 1e-3 for f in lifetime) for t in times)
        summary = tracks[o.id].data
        # SAM-2 saw the object on every fast frame of its lifetime (its summary counts them);
        # each visible mask is on the track, and so is every mask on a detector point.
        assert summary["frames"] == len(lifetime)
        visible = [m for _, m in own if m.area()]
        assert len(visible) == summary["visible_frames"]
        detector_only = o.model_copy(
            update={"trajectory": [p for p in o.trajectory if p.score is not None]}
        )
        for p in o.trajectory:
            if p.mask is None:
                continue
            assert p.mask.size == (576, 768)  # vtest's full resolution, not the 384 px frame
            m = decode_rle(p.mask)
            assert encode_rle(m) == p.mask  # RLE round trip
            if p.score is None:  # a point added for its mask: on the detector's path
                assert m.any()
                assert p.box == pytest.approx(track_box_at(detector_only, p.t, math.inf))
    # The record, saved and loaded, keeps the masks intact.
    path = ctx.save(tmp_path / "rec.json")
    again = VideoContext.load(path)
    assert again == ctx and again.schema_version == "1.2"
