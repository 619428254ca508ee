"""The ``faces`` perceiver: OpenCV's Haar cascade on real photographs, faces attached to persons."""

from __future__ import annotations

import numpy as np
import pytest

from tests.media import ListMedia, video_info
from vidchat.kernel.errors import ConfigError
from vidchat.kernel.record import ObjectTrack, TrackPoint, VideoContext
from vidchat.perceivers.base import Frame
from vidchat.perceivers.faces import FacesPerceiver, owner_of

skimage_data = pytest.importorskip("skimage.data")


def _person(pid: str, box: tuple[float, float, float, float], t1: float = 2.0) -> ObjectTrack:
    return ObjectTrack(
        id=pid, label="person", first_seen=0.0, last_seen=t1, source="detect",
        trajectory=[TrackPoint(t=0.0, box=box), TrackPoint(t=t1, box=box)],
    )  # fmt: skip


def test_owner_is_the_person_whose_upper_half_holds_the_face() -> None:
    near = _person("person#1", (100, 100, 200, 400))
    big = _person("person#2", (0, 0, 600, 600))
    face = (130.0, 120.0, 170.0, 160.0)
    assert owner_of(face, 1.0, [big, near]) == "person#1"  # the smaller box holding it
    assert owner_of((130.0, 350.0, 170.0, 390.0), 1.0, [near]) is None  # lower half: not a face
    assert owner_of(face, 5.0, [near]) is None  # the person has left


def test_astronaut_face_belongs_to_the_astronaut() -> None:
    image = np.ascontiguousarray(skimage_data.astronaut())  # 512x512 RGB
    coffee = np.ascontiguousarray(skimage_data.coffee()[:512, :512])
    frames = [
        Frame(index=0, t=0.0, image=image, scale=1.0),
        Frame(index=1, t=1.0, image=coffee, scale=1.0),
    ]
    info = video_info(width=512, height=512, duration=2.0)
    ctx = VideoContext(video=info, objects=[_person("person#1", (0, 0, 360, 512))])
    events = list(FacesPerceiver().perceive(ListMedia(info=info, slow=frames, context=ctx)))
    assert len(events) == 1, events  # one face on the astronaut, none on the coffee cup
    (face,) = events
    assert face.kind == "face" and face.objects == ["person#1"] and face.text == "face visible"
    assert face.start == 0.0 and face.end < 1.0
    # Her face is near (180-230, 70-140) in the photograph.
    cx = (float(face.data["x1"]) + float(face.data["x2"])) / 2  # type: ignore[arg-type]
    cy = (float(face.data["y1"]) + float(face.data["y2"])) / 2  # type: ignore[arg-type]
    assert 150 < cx < 260 and 50 < cy < 170, face.data


def test_missing_cascade_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="not found"):
        FacesPerceiver({"model": "./no_such_cascade.xml"}).ensure_loaded()
    with pytest.raises(ConfigError, match="not an OpenCV cascade"):
        FacesPerceiver({"model": __file__}).ensure_loaded()
