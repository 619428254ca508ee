from __future__ import annotations

import json

import pytest
from pydantic import ValidationError
from vidchat.kernel.record import (
    RLE,
    SCHEMA_VERSION,
    Event,
    ObjectTrack,
    Provenance,
    SpeechSegment,
    TrackPoint,
    VideoContext,
    Word,
)

from tests.media import video_info


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
