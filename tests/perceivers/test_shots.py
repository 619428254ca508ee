"""The `shots` perceiver: PySceneDetect detectors fed the fast stream, cut times from PTS."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.media import ListMedia, video_info
from vidchat.kernel.errors import ConfigError, PerceiverSkipped
from vidchat.kernel.record import Event
from vidchat.kernel.samples import sample_path
from vidchat.perceivers import get_perceiver
from vidchat.perceivers.base import Frame
from vidchat.perceivers.shots import ShotsOptions, ShotsPerceiver
from vidchat.testing.videos import decode_frames, shot_cuts

# Megamind.avi (23.976 fps): times of the first frame of each new shot, from a full-rate run of
# PySceneDetect (ContentDetector defaults) and checked by eye on a contact sheet: woman at the
# table → man seen over her shoulder (4.129) → woman over his shoulder (6.465) → close-up of the
# man (8.383). Frame 0 is a single black frame: the "4 shots" of the clip have 3 cuts between
# them, and the black leader is not a shot (it is shorter than min_scene_len).
MEGAMIND_CUTS = [4.129, 6.465, 8.383]


def run(frames: list[Frame], **options) -> list[Event]:
    media = ListMedia(info=video_info(), fast=frames)
    perceiver = ShotsPerceiver(options)
    perceiver.ensure_loaded()
    events = list(perceiver.perceive(media))
    assert all(isinstance(e, Event) for e in events)
    return events


def solid_frames(segments: list[tuple[tuple[int, int, int], list[float]]]) -> list[Frame]:
    """Frames of solid colours (with a little noise, like real video) at the given times."""
    rng = np.random.default_rng(0)
    frames = []
    for color, times in segments:
        for t in times:
            noise = rng.integers(-4, 5, size=(72, 128, 3))
            image = np.clip(np.array(color)[None, None, :] + noise, 0, 255).astype(np.uint8)
            frames.append(Frame(index=len(frames), t=t, image=image, scale=0.5))
    return frames


def grid(start: float, stop: float, fps: float) -> list[float]:
    return [round(start + i / fps, 6) for i in range(round((stop - start) * fps))]


# ------------------------------------------------------------------------------ contract


def test_registered_under_its_name():
    assert get_perceiver("shots") is ShotsPerceiver
    assert ShotsPerceiver.inputs == frozenset({"fast"})
    assert ShotsPerceiver().availability().ok


def test_options_are_validated():
    with pytest.raises(ConfigError, match="unknown key 'min_scene_len'"):
        ShotsPerceiver({"min_scene_len": 15})
    with pytest.raises(ConfigError, match="detector"):
        ShotsPerceiver({"detector": "histogram"})
    with pytest.raises(ConfigError, match="threshold"):
        ShotsPerceiver({"threshold": 0})
    opts = ShotsPerceiver({"detector": "adaptive", "threshold": 2.5}).options
    assert isinstance(opts, ShotsOptions) and opts.threshold == 2.5


@pytest.mark.parametrize(
    ("detector", "default"),
    [("content", 27.0), ("adaptive", 3.0), ("threshold", 12.0), ("hash", 0.35)],
)
def test_threshold_default_is_the_detectors_own(detector, default):
    assert ShotsPerceiver({"detector": detector}).effective_threshold() == default
    assert ShotsPerceiver({"detector": detector, "threshold": 9.0}).effective_threshold() == 9.0


def test_model_identity_names_the_library_version():
    import scenedetect

    assert ShotsPerceiver().model_identity() == f"scenedetect=={scenedetect.__version__}"


# ------------------------------------------------------------------- synthetic frame lists


def test_cuts_between_solid_colours_at_first_frame_of_new_shot():
    frames = solid_frames(
        [
            ((200, 30, 30), grid(0.0, 2.0, 4)),
            ((30, 30, 200), grid(2.0, 4.0, 4)),
            ((30, 180, 30), grid(4.0, 6.0, 4)),
        ]
    )
    events = run(frames)
    assert [e.start for e in events] == [2.0, 4.0]
    for i, e in enumerate(events, start=1):
        assert (e.kind, e.text, e.source, e.end) == ("shot", "shot cut", "shots", e.start)
        assert e.data == {"shot": i}
        assert e.confidence is not None and 0.5 <= e.confidence <= 1.0


def test_variable_frame_rate_times_are_the_frames_own():
    # Irregular spacing: the cut must land on the real time of the first new frame (1.37),
    # not on index / nominal fps.
    frames = solid_frames(
        [
            ((220, 220, 220), [0.0, 0.1, 0.5, 0.55, 1.2]),
            ((10, 10, 10), [1.37, 1.4, 2.3, 2.31, 3.0]),
        ]
    )
    events = run(frames)
    assert [e.start for e in events] == [1.37]


def test_min_scene_len_merges_close_cuts():
    segments = [
        ((200, 30, 30), grid(0.0, 2.0, 8)),
        ((30, 30, 200), grid(2.0, 2.25, 8)),  # a 0.25 s flash
        ((30, 180, 30), grid(2.25, 4.0, 8)),
    ]
    assert len(run(solid_frames(segments))) == 1
    assert [e.start for e in run(solid_frames(segments), min_scene_len_s=0.0)] == [2.0, 2.25]


def test_threshold_detector_finds_a_fade_through_black():
    frames = solid_frames(
        [
            ((180, 180, 180), grid(0.0, 2.0, 4)),
            ((0, 0, 0), grid(2.0, 3.0, 4)),
            ((180, 180, 180), grid(3.0, 5.0, 4)),
        ]
    )
    events = run(frames, detector="threshold")
    # PySceneDetect puts a fade cut midway between fade-out (2.0) and fade-in (3.0).
    assert len(events) == 1 and 2.0 <= events[0].start <= 3.0
    assert events[0].confidence is None  # fades carry no cut score
    assert run(frames, detector="content", min_scene_len_s=0.0)  # content sees both edges


def texture_frames(times_a: list[float], times_b: list[float]) -> list[Frame]:
    """Two shots of smooth random texture (like real images; a perceptual hash of flat noise
    is itself noise), each panning one pixel a frame, with a little sensor noise."""
    import cv2

    rng = np.random.default_rng(1)
    textures = [
        cv2.resize(
            np.random.default_rng(seed).integers(0, 256, (6, 10, 3)).astype(np.uint8),
            (160, 90),
            interpolation=cv2.INTER_CUBIC,
        )
        for seed in (1, 2)
    ]
    frames = []
    for i, t in enumerate(times_a + times_b):
        texture = textures[0] if i < len(times_a) else textures[1]
        image = np.roll(texture, i, axis=1)[:72, :128].astype(int)
        image = image + rng.integers(-3, 4, size=image.shape)
        frames.append(Frame(index=i, t=t, image=np.clip(image, 0, 255).astype(np.uint8)))
    return frames


@pytest.mark.parametrize("detector", ["content", "adaptive", "hash"])
def test_every_detector_finds_a_hard_cut(detector):
    events = run(texture_frames(grid(0.0, 3.0, 4), grid(3.0, 6.0, 4)), detector=detector)
    assert [e.start for e in events] == [3.0]


def test_no_frames_is_skipped_and_one_frame_has_no_cut():
    with pytest.raises(PerceiverSkipped, match="no frames"):
        run([])
    assert run(solid_frames([((1, 2, 3), [0.0])])) == []


# ------------------------------------------------------------------------- real videos


def test_synthetic_shot_cuts_video(tmp_path: Path):
    path, true_cuts = shot_cuts(tmp_path)
    fps = 4.0
    frames = decode_frames(path, fps=fps, max_side=640)
    for detector in ("content", "adaptive"):
        found = [e.start for e in run(frames, detector=detector)]
        assert len(found) == len(true_cuts), (detector, found, true_cuts)
        for true, t in zip(true_cuts, found, strict=True):
            # The first sampled frame at or after the cut: within one fast-frame interval.
            assert true - 1e-6 <= t < true + 1 / fps + 1e-6, (detector, found, true_cuts)


@pytest.fixture(scope="module")
def megamind_full() -> list[Frame]:
    return decode_frames(sample_path("megamind"), fps=30, max_side=640)


def test_megamind_full_rate_matches_pyscenedetect(megamind_full):
    """Reference: all 270 frames through our feeding = PySceneDetect's own pipeline."""
    import scenedetect

    assert len(megamind_full) == 270
    assert megamind_full[0].image.mean() < 5  # the black leader frame
    ours = [e.start for e in run(megamind_full)]
    scenes = scenedetect.detect(str(sample_path("megamind")), scenedetect.ContentDetector())
    theirs = [start.seconds for start, _ in scenes[1:]]
    assert ours == pytest.approx(MEGAMIND_CUTS, abs=0.002)
    assert theirs == pytest.approx(MEGAMIND_CUTS, abs=0.002)


@pytest.mark.parametrize("fps", [2.0, 4.0, 8.0])
def test_megamind_fast_stream(fps):
    frames = decode_frames(sample_path("megamind"), fps=fps, max_side=640)
    assert frames[0].image.shape[1] == 640
    found = [e.start for e in run(frames)]
    assert len(found) == len(MEGAMIND_CUTS), found
    for true, t in zip(MEGAMIND_CUTS, found, strict=True):
        assert true - 1e-6 <= t < true + 1 / fps + 1e-6, found
        assert t - true < 0.5


def test_bigbuckbunny_is_one_shot():
    frames = decode_frames(sample_path("bigbuckbunny"), fps=4, max_side=640)
    assert run(frames) == []


def test_bikes_cuts_match_full_rate_within_half_a_second():
    import scenedetect

    path = sample_path("bikes")
    reference = [
        s.seconds for s, _ in scenedetect.detect(str(path), scenedetect.ContentDetector())[1:]
    ]
    assert len(reference) == 5  # pole, cyclist in traffic, van, railing, bicycles: 5 hard cuts
    found = [e.start for e in run(decode_frames(path, fps=4, max_side=640))]
    for true in reference:
        assert min(abs(t - true) for t in found) < 0.5, (reference, found)
    # Fast pans and a passing car add at most a couple of motion cuts at 4 fps.
    assert len(found) <= len(reference) + 2, (reference, found)
