"""The ``ocr`` perceiver: RapidOCR's shipped PP-OCR models on keyframes of a known-text video."""

from __future__ import annotations

import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from tests.media import ListMedia, video_info
from vidchat.kernel.errors import ConfigError
from vidchat.perceivers import get_perceiver
from vidchat.perceivers.base import Frame
from vidchat.perceivers.ocr import OCRLine, OCROptions, OCRPerceiver, merge_lines, normalize_text
from vidchat.testing.videos import decode_frames

FONT_CANDIDATES = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Bold.ttf",
]


@dataclass(frozen=True)
class Caption:
    text: str
    start: float
    end: float
    x: int
    y: int


# Known on-screen text of the synthetic video: what, when (seconds), where (top-left pixel).
CAPTIONS = [
    Caption("WELCOME TO VIDCHAT", 0.0, 12.0, 40, 30),
    Caption("Exit 42 North", 2.5, 7.5, 60, 200),
    Caption("Coffee break at noon", 6.5, 12.0, 200, 300),
]
DURATION = 12.0
KEYFRAMES = {"max_interval_s": 2.0}  # one keyframe interval = 2 s (+ one slow frame)


def font_file() -> str:
    """A TrueType font for ffmpeg drawtext (Debian: fonts-dejavu-core)."""
    for f in FONT_CANDIDATES:
        if Path(f).is_file():
            return f
    if shutil.which("fc-match"):
        out = subprocess.run(
            ["fc-match", "-f", "%{file}", "sans:bold"], capture_output=True, text=True
        ).stdout.strip()
        if out.endswith((".ttf", ".otf")) and Path(out).is_file():
            return out
    pytest.fail("no TrueType font found; install one: apt-get install fonts-dejavu-core")


def text_video(dest: Path) -> Path:
    """640x400, 10 fps, 12 s: a noisy dark background with the CAPTIONS drawn at their times."""
    font = font_file()
    draws = [
        f"drawtext=fontfile={font}:text='{c.text}':x={c.x}:y={c.y}:fontsize=34:"
        f"fontcolor=white:enable='between(t,{c.start},{c.end})'"
        for c in CAPTIONS
    ]
    vf = ",".join(["noise=alls=6:allf=t", *draws])
    cmd = [
        "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
        "-f", "lavfi", "-i", f"color=c=0x203a5a:s=640x400:r=10:d={DURATION}",
        "-vf", vf, "-c:v", "libx264", "-pix_fmt", "yuv420p", str(dest),
    ]  # fmt: skip
    subprocess.run(cmd, check=True, capture_output=True)
    return dest


@pytest.fixture(scope="module")
def perceiver() -> OCRPerceiver:
    p = OCRPerceiver({"keyframes": KEYFRAMES})
    p.ensure_loaded()
    return p


@pytest.fixture(scope="module")
def text_frames(tmp_path_factory) -> list[Frame]:
    path = text_video(tmp_path_factory.mktemp("ocr") / "text.mp4")
    return decode_frames(path, 1.0)


# ------------------------------------------------------------------------------ contract


def test_registered_and_available():
    assert get_perceiver("ocr") is OCRPerceiver
    p = OCRPerceiver()
    assert p.inputs == frozenset({"slow"}) and p.requires == ()
    assert p.availability().ok, p.availability().reason
    assert OCRPerceiver({"use_shots": True}).requires == ("shots",)
    ident = p.model_identity()
    assert ident and ident.startswith("rapidocr==3.10.0;") and "det:" in ident


def test_options_are_validated(tmp_path):
    with pytest.raises(ConfigError, match="unknown key 'language'"):
        OCRPerceiver({"language": "en"})
    with pytest.raises(ConfigError, match=r"keyframes\.hash_distanc"):
        OCRPerceiver({"keyframes": {"hash_distanc": 3}})
    with pytest.raises(ConfigError, match="min_score"):
        OCRPerceiver({"min_score": 2})
    missing = OCRPerceiver({"det_model": str(tmp_path / "nope.onnx")})
    avail = missing.availability()
    assert not avail.ok and "model path not found" in (avail.reason or "")
    assert isinstance(OCRPerceiver().options, OCROptions)


def test_loads_shipped_models_without_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError(f"OCR tried to reach the network: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    from rapidocr.utils.download_file import DownloadFile

    monkeypatch.setattr(DownloadFile, "run", classmethod(refuse))
    p = OCRPerceiver()
    p.ensure_loaded()
    image = np.full((120, 400, 3), 30, np.uint8)
    import cv2

    cv2.putText(image, "OFFLINE", (20, 80), cv2.FONT_HERSHEY_SIMPLEX, 1.6, (255,) * 3, 3)
    lines = p.read(Frame(0, 0.0, image, scale=0.5))
    assert [normalize_text(ln.text) for ln in lines] == ["offline"]
    x1, y1, x2, y2 = lines[0].box
    # the box is in full-resolution pixels: twice the coordinates seen on the half-size frame
    assert 0 <= x1 <= 60 and 20 <= y1 <= 110 and 400 <= x2 <= 560 and 150 <= y2 <= 240, lines


# ------------------------------------------------------------------------------ merging


def line(t: float, text: str, score: float = 0.9) -> OCRLine:
    return OCRLine(t, text, score, (0.0, 0.0, 10.0, 10.0))


def test_normalize_text():
    assert normalize_text("  Exit\t42   NORTH ") == "exit 42 north"
    assert normalize_text("ＡＢＣ") == "abc"  # full-width forms


def extent(frames: list[list[OCRLine]], step: float) -> list[tuple[list[OCRLine], float]]:
    """Pair each keyframe's lines with the last time it stands for: just before the next."""
    return [
        (lines, (lines[0].t if lines else i * step) + step - 1) for i, lines in enumerate(frames)
    ]


def test_merge_follows_text_across_consecutive_keyframes():
    frames = [
        [line(0, "WELCOME"), line(0, "Exit 42 North", 0.8)],
        [line(2, "welcome"), line(2, "Exit 42 Nort", 0.95)],  # a fuzzy reading continues it
        [line(4, "WELCOME")],  # exit sign gone
        [line(6, "WELCOME"), line(6, "Exit 42 North")],  # back: a new span
    ]
    spans = sorted(merge_lines(extent(frames, 2)), key=lambda s: (s.start, s.key))
    got = [(s.key, s.start, s.end, s.keyframes) for s in spans]
    # a span ends at the last frame its last keyframe stood for (one before the next keyframe)
    assert got == [
        ("exit 42 north", 0, 3, 2),
        ("welcome", 0, 7, 4),
        ("exit 42 north", 6, 7, 1),
    ]
    assert spans[0].best.text == "Exit 42 Nort"  # the most confident reading is reported
    event = spans[0].event("ocr")
    assert event.kind == "ocr" and event.data["keyframes"] == 2 and event.data["box"] == "0,0,10,10"
    assert event.confidence == pytest.approx((0.8 + 0.95) / 2)


def test_merge_tolerates_misses_when_asked_and_keeps_duplicates_apart():
    frames = extent([[line(0, "SALE")], [], [line(2, "SALE")]], 1)
    assert [s.keyframes for s in merge_lines(frames)] == [1, 1]
    assert [(s.start, s.end) for s in merge_lines(frames, max_missed=1)] == [(0, 2)]
    # the same text twice in one frame is two spans (two signs), each continued separately
    twice = [[line(0, "STOP"), line(0, "STOP")], [line(1, "STOP"), line(1, "STOP")]]
    assert [s.keyframes for s in merge_lines(extent(twice, 1))] == [2, 2]


def test_unrelated_texts_do_not_merge():
    frames = extent([[line(0, "Exit 42 North")], [line(1, "Exit 24 South")]], 1)
    assert len(list(merge_lines(frames, merge_ratio=0.8))) == 2


# ------------------------------------------------------------------------------ real OCR


@pytest.mark.slow
def test_known_text_video(perceiver, text_frames):
    media = ListMedia(info=video_info(width=640, height=400, duration=DURATION), slow=text_frames)
    events = list(perceiver.perceive(media))
    assert events and all(e.kind == "ocr" and e.source == "ocr" for e in events)

    truth_words = [w for c in CAPTIONS for w in normalize_text(c.text).split()]
    seen_words = {w for e in events for w in normalize_text(e.text).split()}
    recall = sum(w in seen_words for w in truth_words) / len(truth_words)
    assert recall >= 0.9, (recall, [e.text for e in events])

    interval = KEYFRAMES["max_interval_s"] + 1.0  # the rule's interval plus one slow frame
    last_frame = text_frames[-1].t
    for c in CAPTIONS:
        key = normalize_text(c.text)
        matches = [e for e in events if normalize_text(e.text) == key]
        assert len(matches) == 1, f"{c.text!r} should be one merged span, got {matches}"
        e = matches[0]
        assert c.start - 1e-6 <= e.start <= c.start + interval, (c, e)
        assert min(c.end, last_frame) - interval <= e.end <= c.end + 1e-6, (c, e)
        assert e.data["keyframes"] >= 2  # seen in several keyframes, merged into one event
        x1, y1, x2, _ = (int(v) for v in str(e.data["box"]).split(","))
        assert abs(x1 - c.x) <= 12 and abs(y1 - c.y) <= 12 and x2 > x1 + 100, (c, e.data)


@pytest.mark.slow
def test_pipeline_runs_ocr_after_shots_when_asked(tmp_path):
    """Through the real pipeline: `use_shots` makes ocr depend on shots (an earlier decode
    level), and its events land in the record with full-resolution boxes."""
    from vidchat.pipeline.core import Pipeline
    from vidchat.pipeline.profiles import parse_profile

    video = text_video(tmp_path / "text.mp4")
    profile = parse_profile(
        {
            "name": "ocr-test",
            "perceivers": {"shots": None, "ocr": {"use_shots": True, "keyframes": KEYFRAMES}},
            "sampling": {"slow_max_side": 320},  # OCR reads half-size frames here
        }
    )
    pipe = Pipeline(profile, cache=False, strict=True)
    assert [[p.name for p in level] for level in pipe.levels] == [["shots"], ["ocr"]]
    ctx = pipe.run(video)
    texts = {normalize_text(e.text): e for e in ctx.events if e.kind == "ocr"}
    assert "welcome to vidchat" in texts, sorted(texts)
    x1, y1, _, _ = (int(v) for v in str(texts["welcome to vidchat"].data["box"]).split(","))
    assert abs(x1 - 40) <= 16 and abs(y1 - 30) <= 16  # mapped back to 640x400 pixels
    prov = {p.name: p for p in ctx.provenance}
    assert prov["ocr"].status == "ok" and prov["ocr"].model.startswith("rapidocr==")
