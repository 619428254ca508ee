"""Masks through the pipeline and zoom: a perceiver yields `ObjectMask`s for objects another one
found, and they land on those objects' tracks at the video's full resolution (record 1.2).

The toy segmenter thresholds the real downscaled fast frame it receives (pixels brighter than
the frame's mean), scales the mask to the video's size like sam2 does, and names the objects
the toy ``marker`` made, so a wrong frame, size or id changes what the test sees."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from vidchat.kernel.record import RLE, ObjectMask, VideoContext, track_masks
from vidchat.perceivers import register_perceiver
from vidchat.perceivers.base import Media, Perceiver, PerceiverOptions
from vidchat.pipeline.core import Pipeline
from vidchat.pipeline.profiles import parse_profile
from vidchat.pipeline.zoom import zoom
from vidchat.testing import videos


class SegmenterOptions(PerceiverOptions):
    full_size: bool = True  # False: masks at the fast frame's size (a broken perceiver)
    object_id: str | None = None  # mask this id instead of the upstream objects'


class Segmenter(Perceiver):
    """Masks every upstream object on the fast frame nearest its first sighting."""

    name = "segmenter"
    version = "1"
    Options = SegmenterOptions
    inputs = frozenset({"fast"})
    requires = ("marker",)

    def perceive(self, media: Media) -> Iterator[ObjectMask]:
        objects = list(media.upstream.objects)
        opts = self.options
        for f in media.frames("fast"):
            gray = f.image.mean(axis=2)
            rle = RLE.from_mask(gray > gray.mean())
            if opts.full_size:
                rle = rle.resized(media.info.height, media.info.width)
            for o in objects:
                if abs(f.t - o.first_seen) < 0.01:
                    yield ObjectMask(object_id=opts.object_id or o.id, t=f.t, mask=rle)


@pytest.fixture
def segmenter(toys):
    register_perceiver("segmenter", Segmenter)
    return Segmenter


def _profile(**segmenter):
    return parse_profile({
        "name": "masks",
        "perceivers": {"brightness": None, "marker": None, "segmenter": segmenter or None},
        # fast frames at half the video's 160x96: the masks must be scaled up
        "sampling": {"slow_fps": 1.0, "fast_fps": 4.0, "fast_max_side": 80},
    })  # fmt: skip


def test_masks_land_on_the_tracks_at_full_resolution(segmenter, cache_dir, tmp_path):
    clip = videos.no_audio(tmp_path)  # 160x96, 2 s
    ctx = Pipeline(_profile()).run(clip)
    prov = {p.name: p for p in ctx.provenance}
    assert prov["segmenter"].status == "ok", prov["segmenter"].reason
    spots = [o for o in ctx.objects if o.label == "spot"]
    assert [o.first_seen for o in spots] == [0.0, 1.0]  # one per slow frame
    assert prov["segmenter"].items == 2  # masks count as the perceiver's items
    for o in spots:
        ((t, rle),) = track_masks(o)
        assert t == o.first_seen and rle.size == (96, 160)
        # A point was added for the mask (the marker's objects have no trajectory): its box is
        # the mask's, in full-resolution pixels, and it has no detector score.
        (p,) = o.trajectory
        assert p.score is None and p.box == rle.box()
        assert 0.2 < rle.area_fraction() < 0.8
    # The mask is the real frame's: 2x2 blocks of the 80x48 fast frame's threshold.
    m = track_masks(spots[0])[0][1].to_mask()
    assert np.array_equal(m, np.repeat(np.repeat(m[::2, ::2], 2, axis=0), 2, axis=1))
    # Cached: the second run serves the masks from the cache, identical.
    again = Pipeline(_profile()).run(clip)
    assert {p.name: p.cached for p in again.provenance}["segmenter"] is True
    assert again.objects == ctx.objects
    assert VideoContext.load(ctx.save(tmp_path / "r.json")) == ctx


def test_bad_masks_fail_the_result_not_the_record(segmenter, cache_dir, tmp_path):
    clip = videos.no_audio(tmp_path)
    ctx = Pipeline(_profile(full_size=False), cache=False).run(clip)
    seg = next(p for p in ctx.provenance if p.name == "segmenter")
    assert seg.status == "failed"
    assert seg.reason == (
        "mask of spot#1 at 0 s is 80x48; expected the video's full resolution 160x96"
    )
    assert not any(track_masks(o) for o in ctx.objects)  # nothing of it was merged
    assert any(e.kind == "mark" for e in ctx.events)  # the others are whole
    ctx = Pipeline(_profile(object_id="ghost#1"), cache=False).run(clip)
    seg = next(p for p in ctx.provenance if p.name == "segmenter")
    assert seg.status == "failed"
    assert seg.reason == "masks name object ids not in the record: ['ghost#1']"


def test_zoom_puts_its_masks_on_the_records_tracks(segmenter, cache_dir, tmp_path):
    clip = videos.no_audio(tmp_path)
    base = Pipeline(_profile()).run(clip)
    before = {o.id: len(o.trajectory) for o in base.objects}
    # Only the segmenter is re-run; the marker's objects it needs come from the record.
    res = zoom(base, 0.5, 1.5, ["segmenter"], fps=10, profile=_profile())
    assert res.run.provenance[0].status == "ok", res.run.provenance[0].reason
    assert res.run.masks_added == 1 and "+1 masks" in res.summary()
    spot2 = res.context.object("spot#2")  # first seen at 1.0 s, inside the window
    assert [t for t, _ in track_masks(spot2)] == [1.0]  # the same time: one point, re-masked
    assert {o.id: len(o.trajectory) for o in res.context.objects} == before
    assert track_masks(spot2)[0][1].size == (96, 160)
