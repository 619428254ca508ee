from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from tests.media import video_info
from vidchat.kernel.record import (
    RLE,
    SCHEMA_VERSION,
    Event,
    ObjectMask,
    ObjectTrack,
    Provenance,
    SpeechSegment,
    TrackPoint,
    VideoContext,
    Word,
    ZoomRun,
    attach_mask,
    track_masks,
)


def sample_record() -> VideoContext:
    return VideoContext(
        video=video_info(duration=30.0, has_audio=True, audio_codec="aac"),
        profile="offline",
        objects=[
            ObjectTrack(
                id="person#1",
                label="person",
                first_seen=1.0,
                last_seen=9.5,
                source="detect",
                trajectory=[
                    TrackPoint(t=1.0, box=(10, 20, 50, 120), score=0.9),
                    TrackPoint(
                        t=9.5,
                        box=(200, 20, 240, 120),
                        score=0.8,
                        mask=RLE(size=(2, 3), counts=[1, 4, 1]),
                    ),
                ],
                attributes={"posture": "standing", "frames_seen": 30},
            )
        ],
        speech=[
            SpeechSegment(
                start=2.0,
                end=4.5,
                text="hello there",
                language="en",
                words=[Word(start=2.0, end=2.5, text="hello", probability=0.9)],
            )
        ],
        events=[
            Event(
                start=5.0, end=5.0, kind="shot", text="shot cut", source="shots", data={"shot": 1}
            )
        ],
        provenance=[
            Provenance(
                name="asr",
                version="1",
                status="ok",
                seconds=1.2,
                items=1,
                options={"model": "whisper:tiny.en"},
                model="package:x",
            )
        ],
    )


def test_json_round_trip(tmp_path):
    ctx = sample_record()
    path = ctx.save(tmp_path / "r.json")
    back = VideoContext.load(path)
    assert back == ctx
    assert json.loads(path.read_text())["schema_version"] == SCHEMA_VERSION
    assert not list(tmp_path.glob(".*.tmp"))  # atomic write leaves no temp file


def test_object_lookup_names_known_ids():
    ctx = sample_record()
    assert ctx.object("person#1").label == "person"
    with pytest.raises(KeyError, match="person#1"):
        ctx.object("car#2")


@pytest.mark.parametrize("bad", ["person", "person#0", "Person#1", "#3"])
def test_object_ids_are_validated(bad):
    with pytest.raises(ValidationError, match="label#N"):
        ObjectTrack(id=bad, label="person", first_seen=0, last_seen=1, source="x")


def test_invalid_values_are_rejected():
    with pytest.raises(ValidationError, match="x1<=x2"):
        TrackPoint(t=0, box=(10, 0, 5, 5))
    with pytest.raises(ValidationError, match="RLE counts sum"):
        RLE(size=(2, 2), counts=[1, 1])
    with pytest.raises(ValidationError, match="last_seen"):
        ObjectTrack(id="a#1", label="a", first_seen=5, last_seen=1, source="x")
    with pytest.raises(ValidationError):
        Event(start=0, end=0, kind="Bad Kind", text="", source="x")


def test_other_major_version_is_refused(tmp_path):
    data = json.loads(sample_record().to_json())
    data["schema_version"] = "2.0"
    (tmp_path / "r.json").write_text(json.dumps(data))
    with pytest.raises(ValidationError, match=r"schema 2\.0 is not readable"):
        VideoContext.load(tmp_path / "r.json")


def test_load_non_record_says_so(tmp_path):
    (tmp_path / "x.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="not a vidchat record"):
        VideoContext.load(tmp_path / "x.json")
    (tmp_path / "y.json").write_text("{nope")
    with pytest.raises(ValueError, match="invalid JSON"):
        VideoContext.load(tmp_path / "y.json")


def test_events_and_masks_naming_unknown_objects_are_refused(tmp_path):
    ctx = sample_record()
    ok = Event(start=2, end=2, kind="mask", text="mask", source="sam2", objects=["person#1"])
    ctx.events.append(ok)
    assert VideoContext.model_validate(ctx.model_dump()).events[-1].objects == ["person#1"]

    data = json.loads(ctx.to_json())
    data["events"].append(
        {"start": 3, "end": 3, "kind": "mask", "text": "mask", "source": "sam2",
         "objects": ["person#1", "person#7"], "data": {"rle": "3 4"}}
    )  # fmt: skip
    (tmp_path / "r.json").write_text(json.dumps(data))
    with pytest.raises(ValidationError) as e:
        VideoContext.load(tmp_path / "r.json")
    msg = str(e.value)
    assert "event 2 (kind 'mask' from 'sam2' at 3 s) names object ids not in the record" in msg
    assert "person#7; expected ids of its objects (person#1)" in msg
    with pytest.raises(ValidationError, match="not in the record: dog#2"):
        VideoContext(
            video=video_info(duration=5.0),
            events=[Event(start=0, end=1, kind="caption", text="a dog", source="caption",
                          objects=["dog#2"])],
        )  # fmt: skip


# ------------------------------------------------------------------ 1.2: masks on the tracks


def _legacy_mask_event(oid: str, t: float, mask, **data) -> dict:
    """A mask event as sam2 wrote it into records of schema 1.0/1.1 (fast-frame pixels)."""
    rle = RLE.from_mask(mask)
    return {
        "start": t,
        "end": t,
        "kind": "mask",
        "text": f"{oid} mask",
        "source": "sam2",
        "objects": [oid],
        "data": {
            "rle": json.dumps(rle.counts),
            "height": mask.shape[0],
            "width": mask.shape[1],
            "area_frac": 0.1,
            **data,
        },
    }


def _old_record(version: str, events: list[dict]) -> dict:
    ctx = VideoContext(
        video=video_info(width=320, height=240),
        objects=[
            ObjectTrack(
                id="person#1",
                label="person",
                first_seen=1.0,
                last_seen=3.0,
                source="detect",
                trajectory=[
                    TrackPoint(t=1.0, box=(10, 20, 50, 120), score=0.9),
                    TrackPoint(t=3.0, box=(30, 20, 70, 120), score=0.8),
                ],
            )
        ],
    )
    data = json.loads(ctx.to_json())
    data["schema_version"] = version
    data["events"] = events
    return data


def test_a_saved_1_1_record_with_mask_events_loads_as_1_2_with_track_masks(tmp_path):
    import numpy as np

    small = np.zeros((6, 8), bool)  # the fast frame: 8x6, the video 320x240 (40x scale)
    small[1:3, 2:4] = True
    empty = np.zeros((6, 8), bool)
    events = [
        _legacy_mask_event("person#1", 1.0, small),  # on the detector's point at 1.0 s
        _legacy_mask_event("person#1", 2.0, small),  # no point at 2.0 s: one is added
        _legacy_mask_event("person#1", 2.5, empty),  # SAM-2 lost it, no point: dropped
        {
            "start": 1.0,
            "end": 3.0,
            "kind": "mask_track",
            "text": "person#1 segmented",
            "source": "sam2",
            "objects": ["person#1"],
            "data": {"frames": 3},
        },
    ]
    path = tmp_path / "old.json"
    path.write_text(json.dumps(_old_record("1.1", events)))
    ctx = VideoContext.load(path)
    assert ctx.schema_version == SCHEMA_VERSION == "1.2"
    assert [e.kind for e in ctx.events] == ["mask_track"]  # the summary stays an event
    track = ctx.object("person#1")
    assert [(p.t, p.score) for p in track.trajectory] == [(1.0, 0.9), (2.0, None), (3.0, 0.8)]
    first, added, last = track.trajectory
    assert first.box == (10, 20, 50, 120)  # the detector's box is kept under its mask
    assert added.box == (20.0, 20.0, 60.0, 120.0)  # the detector's path, interpolated
    assert added.mask.box() == (80.0, 40.0, 160.0, 120.0)  # full-resolution pixels
    assert last.mask is None
    for p in (first, added):
        assert p.mask is not None and p.mask.size == (240, 320)
        assert np.array_equal(p.mask.to_mask(), np.kron(small, np.ones((40, 40), bool)))
    assert [t for t, _ in track_masks(track)] == [1.0, 2.0]
    # Saved again it is a 1.2 record, and reads back identical.
    again = VideoContext.load(ctx.save(tmp_path / "new.json"))
    assert (
        again == ctx
        and json.loads((tmp_path / "new.json").read_text())["events"][0]["kind"] == "mask_track"
    )


@pytest.mark.parametrize("version", ["1.0", "1.1"])
def test_older_records_without_masks_load_unchanged(tmp_path, version):
    data = _old_record(version, [])
    data["events"] = [json.loads(e.model_dump_json()) for e in sample_record().events]
    (tmp_path / "r.json").write_text(json.dumps(data))
    ctx = VideoContext.load(tmp_path / "r.json")
    assert ctx.schema_version == SCHEMA_VERSION
    back = json.loads(ctx.to_json())
    back["schema_version"] = version
    assert back == data  # nothing but the version differs


def test_a_broken_legacy_mask_event_is_a_clear_error(tmp_path):
    import numpy as np

    bad = _legacy_mask_event("person#1", 2.0, np.ones((6, 8), bool))
    bad["data"]["height"] = 7  # counts no longer fill 7 x 8
    (tmp_path / "r.json").write_text(json.dumps(_old_record("1.1", [bad])))
    with pytest.raises(ValidationError) as e:
        VideoContext.load(tmp_path / "r.json")
    assert "mask event of person#1 at 2 s: data rle is not a 7x8 mask's run lengths" in str(e.value)
    # A 1.2 record is never "upgraded": a mask event there stays what it is.
    ok = _old_record("1.2", [_legacy_mask_event("person#1", 2.0, np.ones((6, 8), bool))])
    assert [e.kind for e in VideoContext.model_validate(ok).events] == ["mask"]


def test_rle_resize_box_and_area():
    import numpy as np

    m = np.zeros((3, 4), bool)
    m[1, 1:3] = True
    rle = RLE.from_mask(m)
    assert rle.area() == 2 and rle.area_fraction() == pytest.approx(2 / 12)
    assert rle.box() == (1.0, 1.0, 3.0, 2.0)
    big = rle.resized(6, 8)
    assert big.size == (6, 8) and big.box() == (2.0, 2.0, 6.0, 4.0) and big.area() == 8
    assert np.array_equal(big.resized(3, 4).to_mask(), m)  # back down: the same mask
    assert rle.resized(3, 4) is rle
    assert RLE.from_mask(np.zeros((2, 2), bool)).box() is None
    with pytest.raises(ValueError, match="mask size must be positive, got 0x4"):
        rle.resized(0, 4)


def test_attach_mask_to_a_track():
    import numpy as np

    track = ObjectTrack(
        id="car#1",
        label="car",
        first_seen=0,
        last_seen=2,
        source="detect",
        trajectory=[
            TrackPoint(t=0.0, box=(0, 0, 4, 4), score=0.5),
            TrackPoint(t=2.0, box=(4, 0, 8, 4), score=0.5),
        ],
    )
    m = np.zeros((4, 8), bool)
    m[0:2, 5:7] = True
    rle = RLE.from_mask(m)
    p = attach_mask(track, 2.0 + 1e-4, rle)  # the same frame's time, rounded elsewhere
    assert p is track.trajectory[1] and p.mask == rle and p.box == (4, 0, 8, 4)
    p = attach_mask(track, 1.0, rle)  # between the samples: the box interpolated, not the mask's
    assert p is track.trajectory[1] and p.score is None and p.box == (2.0, 0.0, 6.0, 4.0)
    bare = ObjectTrack(id="car#2", label="car", first_seen=0, last_seen=2, source="x")
    assert attach_mask(bare, 1.0, rle).box == (5.0, 0.0, 7.0, 2.0)  # no samples: the mask's
    assert attach_mask(track, 1.5, RLE.from_mask(np.zeros((4, 8), bool))) is None
    assert [q.t for q in track.trajectory] == [0.0, 1.0, 2.0]
    with pytest.raises(ValidationError, match="object id must look like 'label#N'"):
        ObjectMask(object_id="car", t=1.0, mask=rle)


# ----------------------------------------------------------------------- end >= start, always


def test_spans_must_not_end_before_they_start():
    with pytest.raises(ValidationError) as e:
        Event(start=3.5, end=3.0, kind="ocr", text="EXIT", source="ocr")
    assert "event (kind 'ocr' from 'ocr'): end 3 is before start 3.5 (expected end >= start)" in (
        str(e.value)
    )
    with pytest.raises(
        ValidationError,
        match=r"speech segment 'hello there' from 'asr': end 1 is "
        r"before start 2",
    ):
        SpeechSegment(start=2.0, end=1.0, text="hello there")
    with pytest.raises(ValidationError, match=r"word 'hello': end 2\.1 is before start 2\.5"):
        Word(start=2.5, end=2.1, text="hello")
    with pytest.raises(ValidationError, match=r"zoom zoom1: end 4 is before start 6"):
        ZoomRun(id="zoom1", start=6, end=4, fps=10, perceivers=["detect"])
    # Equal ends are instants (a shot cut, a mask): fine.
    assert Event(start=3, end=3, kind="shot", text="cut", source="shots").end == 3
    # In a saved record the error names where it is.
    data = json.loads(sample_record().to_json())
    data["speech"][0]["words"][0]["end"] = 1.0
    with pytest.raises(ValidationError) as e:
        VideoContext.model_validate(data)
    assert "speech.0.words.0" in str(e.value) and "word 'hello': end 1 is before start 2" in str(
        e.value
    )
