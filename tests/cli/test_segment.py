"""``vidchat segment``: object resolution, mask export (PNG / RLE JSON), and the whole command
on a real clip with the real detector and a tiny SAM-2 (see tests/perceivers/test_sam2.py)."""

from __future__ import annotations

import argparse
import io
import json

import numpy as np
import pytest
import yaml

from tests.media import video_info
from tests.perceivers.test_sam2 import build_tiny_sam2, vtest_clip
from vidchat.cli.segment import object_masks, resolve_object, run, write_png, write_rle
from vidchat.kernel.errors import InputError
from vidchat.kernel.record import Event, ObjectTrack, TrackPoint, VideoContext, attach_mask
from vidchat.perceivers.sam2_masks import decode_rle, encode_rle


def _obj(oid: str, t0: float, t1: float, **attrs) -> ObjectTrack:
    return ObjectTrack(id=oid, label=oid.split("#")[0], first_seen=t0, last_seen=t1,
                       source="detect", trajectory=[TrackPoint(t=t0, box=(0, 0, 4, 4))],
                       attributes=attrs)  # fmt: skip


def _mask_event(oid: str, t: float, mask: np.ndarray) -> Event:
    """A mask as records of schema 1.0/1.1 held it: an event with JSON counts (fast frame)."""
    rle = encode_rle(mask)
    return Event(start=t, end=t, kind="mask", text="m", source="sam2", objects=[oid],
                 data={"rle": json.dumps(rle.counts), "height": mask.shape[0],
                       "width": mask.shape[1], "area_frac": float(mask.mean())})  # fmt: skip


@pytest.fixture
def ctx() -> VideoContext:
    rng = np.random.default_rng(0)
    c = VideoContext(
        video=video_info(),
        objects=[
            _obj("person#1", 0.0, 1.0, posture="standing"),
            _obj("person#2", 0.5, 9.0, posture="fallen"),
            _obj("dog#1", 2.0, 3.0),
        ],
    )
    c.events.append(Event(start=2, end=3, kind="object_description", text="a brown dog running",
                          source="region_caption", objects=["dog#1"]))  # fmt: skip
    for t in (1.0, 0.5, 1.5):  # masks on the track, at the video's 320x240
        attach_mask(c.object("person#2"), t, encode_rle(rng.random((240, 320)) > 0.5))
    return c


def test_resolve_object_by_id_and_phrase(ctx) -> None:
    assert resolve_object(ctx, "person#2") == "person#2"
    assert resolve_object(ctx, "the brown dog") == "dog#1"  # from its region caption
    assert resolve_object(ctx, "fallen person") == "person#2"  # label + posture attribute
    assert resolve_object(ctx, "persons") == "person#2"  # the longest-lived of the matches
    with pytest.raises(InputError, match=r"no object 'person#7' .*person#1, person#2, dog#1"):
        resolve_object(ctx, "person#7")
    with pytest.raises(InputError, match="no object matches 'a red car'"):
        resolve_object(ctx, "a red car")


def test_export_png_and_rle(ctx, tmp_path) -> None:
    masks = object_masks(ctx, "person#2")
    assert [t for t, _ in masks.masks] == [0.5, 1.0, 1.5]  # time order
    files = write_png(masks, tmp_path / "png")
    assert [f.name for f in files] == ["00000.png", "00001.png", "00002.png"]
    from PIL import Image

    for f, (_, rle) in zip(files, masks.masks, strict=True):
        assert np.array_equal(np.asarray(Image.open(f)) > 127, decode_rle(rle))
    index = json.loads((tmp_path / "png" / "index.json").read_text())
    assert [x["t"] for x in index["frames"]] == [0.5, 1.0, 1.5]
    path = write_rle(masks, tmp_path / "m.json", "v.mp4")
    data = json.loads(path.read_text())
    assert data["object"] == "person#2" and len(data["frames"]) == 3
    assert data["frames"][0]["rle"]["counts"] == masks.masks[0][1].counts
    with pytest.raises(InputError, match=r"no masks of dog#1 .*sam2 did not run"):
        object_masks(ctx, "dog#1")
    with pytest.raises(InputError, match=r"no object 'cat#1' in the record"):
        object_masks(ctx, "cat#1")


def test_segment_reads_an_older_record_with_mask_events(tmp_path) -> None:
    """A 1.1 record (masks as events, 8x6 fast-frame pixels) saved before the upgrade: the
    command reads it and exports full-resolution (320x240) masks from the tracks."""
    rng = np.random.default_rng(1)
    small = {t: rng.random((6, 8)) > 0.5 for t in (0.5, 1.0)}
    old = VideoContext(video=video_info(), objects=[_obj("person#2", 0.5, 9.0)])
    data = json.loads(old.to_json())
    data["schema_version"] = "1.1"
    data["events"] = [
        json.loads(_mask_event("person#2", t, m).model_dump_json()) for t, m in small.items()
    ]
    path = tmp_path / "old.json"
    path.write_text(json.dumps(data))
    out = tmp_path / "png"
    args = argparse.Namespace(
        video=str(path), object="person#2", output=str(out), format="png", profile=None,
        sam2_model=None, sam2_config=None, quiet=True,
    )  # fmt: skip
    assert run(args) == 0
    from PIL import Image

    index = json.loads((out / "index.json").read_text())["frames"]
    assert [f["t"] for f in index] == [0.5, 1.0]
    for f, m in zip(index, small.values(), strict=True):
        full = np.asarray(Image.open(out / f["file"])) > 127
        assert full.shape == (240, 320)
        # every full-resolution pixel takes its fast-frame pixel's value (40x40 blocks)
        assert np.array_equal(full, np.kron(m, np.ones((40, 40), bool)))


@pytest.mark.slow
def test_segment_command_on_a_real_clip(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("VIDCHAT_CACHE", str(tmp_path / "cache"))
    config, ckpt = build_tiny_sam2(tmp_path / "sam2")
    clip = vtest_clip(tmp_path)
    profile = tmp_path / "p.yaml"
    profile.write_text(yaml.safe_dump({
        "name": "seg", "sampling": {"fast_fps": 2.0, "fast_max_side": 384},
        "perceivers": {"detect": None, "sam2": {"chunk_frames": 6}},
    }))  # fmt: skip

    def args(**kw) -> argparse.Namespace:
        base = dict(video=str(clip), object="person#1", output=None, format="png",
                    profile=str(profile), sam2_model=str(ckpt), sam2_config=str(config),
                    quiet=True)  # fmt: skip
        return argparse.Namespace(**{**base, **kw})

    out = tmp_path / "png"
    assert run(args(output=str(out))) == 0
    index = json.loads((out / "index.json").read_text())["frames"]
    assert len(index) >= 2 and len(list(out.glob("*.png"))) == len(index)
    rle_path = tmp_path / "p1.json"
    assert run(args(output=str(rle_path), format="rle")) == 0  # cached: no second SAM-2 run
    frames = json.loads(rle_path.read_text())["frames"]
    assert [f["t"] for f in frames] == [x["t"] for x in index]
    err = io.StringIO()
    with pytest.raises(InputError, match=r"no object 'person#99'.*person#1"):
        run(args(object="person#99"), err)
    assert run(args(object="person", output=str(tmp_path / "x")), err) == 0
    assert "'person' -> person#" in err.getvalue()
