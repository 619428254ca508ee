"""Compose videos whose facts are known by construction, and write their ground truth.

A video is planned from a seed (`plan`), then rendered (`render_video`):

- **shots**: real photographs (scikit-image's astronaut, coffee, chelsea, rocket) fill the frame,
  one per shot; consecutive shots never reuse a photograph, so every shot start is a hard cut.
- **persons**: three pedestrians cut (as tight rectangles) from a frame of vtest.avi, scaled up
  and pasted at positions that move linearly over time; their boxes are sampled into the truth.
- **objects**: the COCO objects inside the shot photographs (the astronaut is a person, the
  coffee a cup, chelsea a cat; boxes set by eye in the photographs' own pixels and mapped through
  the same cover-and-crop), static for their shot; and sprites cut from real photos (the parked
  van of vtest.avi, the chelsea cat, the coffee cup) moving linearly, one at a time, from their
  own seeded random stream (so adding them left the persons, texts and speech of every seed as
  they were).
- **animals** (``animals=True``, the fidelity bench's suite): cut-out photographs of whole animals
  (dog, horse, zebra, sheep, cow, elephant, bear, giraffe, birds; Debian's
  tuxpaint-stamps-default, see `vidchat.apps.fidelity.photos`), one at a time, each either static
  for a stretch of one shot or moving along a straight line, at 0.25, 0.35 or 0.5 of the frame
  height, alpha-blended (the photo's outline, not a rectangle); the truth box is the bounding box
  of the animal's opaque pixels. They come from a third seeded stream, after the other sprites,
  so a seed's persons, texts, speech and other objects are the same with or without them (what
  changes is what an animal covers: the truth's `visible` shares say so).
- **on-screen text**: ffmpeg ``drawtext`` (DejaVu Sans, white box behind black letters) in the
  top band, one phrase at a time, at known times and places.
- **audio** (16 kHz mono): espeak-ng sentences, synthetic music (sine notes with harmonics) and
  silence, laid end to end; speech start/end are measured by frame energy after placement.

Frames are composed in numpy and piped to one ffmpeg process (libx264 ultrafast, one thread), so
even the one-hour preset (320x180, 5 fps, mostly static) takes about a minute or two.

Needs ffmpeg (with libfreetype's drawtext), espeak-ng, a TrueType font (Debian fonts-dejavu-core),
scikit-image (the photographs) and Pillow, and vtest.avi (``vidchat sample vtest``).
"""

from __future__ import annotations

import argparse
import hashlib
import random
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Literal

import numpy as np

from vidchat.apps.fidelity.photos import ANIMAL_PHOTOS, photo_path
from vidchat.apps.fidelity.truth import (
    AudioStretch,
    Box,
    ObjectTruth,
    PathPoint,
    PersonTruth,
    ShotTruth,
    SpeechTruth,
    TextTruth,
    Truth,
)
from vidchat.kernel.errors import InputError

SAMPLE_RATE = 16_000

# Sentences in plain words (no digits, no names) that Whisper tiny.en writes back verbatim from
# espeak-ng's en-us voice at 150 wpm, so a WER measures the ASR, not espeak's diction.
SENTENCES = (
    "The weather today is sunny and warm with a light breeze from the west",
    "Please open the window and let the fresh air into the room",
    "The train to the city leaves early in the morning",
    "My brother likes to read books about history and science",
    "We will meet at the library after lunch on Friday",
    "The children are playing football in the park near the river",
    "She bought some apples and bread at the market yesterday",
    "The meeting has been moved to the large room on the top floor",
)

# Short upper-case phrases: plain dictionary words so an OCR's spelling is checkable.
PHRASES = (
    "GRAND OPENING",
    "NORTH STATION",
    "COFFEE BREAK",
    "MUSEUM TICKETS",
    "GARDEN PARTY",
    "SUMMER SALE",
    "PARKING LEVEL",
    "WELCOME HOME",
    "FRESH BREAD",
    "CITY LIBRARY",
    "RIVER VIEW",
    "GOLDEN HOUR",
)

# Photographs and the ImageNet-1k labels that are right for each (any one counts).
PHOTOS: dict[str, tuple[str, ...]] = {
    "astronaut": ("space shuttle", "military uniform", "suit", "crash helmet", "bulletproof vest"),
    "coffee": ("espresso", "cup", "coffee mug", "eggnog", "saucer"),
    "chelsea": ("tabby", "tiger cat", "Egyptian cat", "lynx"),
    "rocket": ("missile", "projectile", "space shuttle"),
}

# Pedestrians in vtest.avi at t=2 s: (crop rectangle, the person's own box), frame pixels.
VTEST_TIME = 2.0
VTEST_PERSONS: dict[str, tuple[tuple[int, int, int, int], tuple[int, int, int, int]]] = {
    "dark-jacket": ((358, 188, 404, 280), (364, 193, 400, 276)),
    "black-coat": ((434, 228, 486, 322), (438, 233, 481, 319)),
    "red-jacket": ((682, 266, 728, 382), (687, 272, 722, 378)),
}

# COCO objects in the shot photographs: (label, box in the photograph's own pixels), set by eye.
PHOTO_OBJECTS: dict[str, tuple[tuple[str, tuple[int, int, int, int]], ...]] = {
    "astronaut": (("person", (0, 0, 360, 512)),),
    "coffee": (("cup", (170, 10, 415, 300)),),
    "chelsea": (("cat", (0, 0, 451, 300)),),
    "rocket": (),  # a rocket on a launch pad: no COCO class
}

# Moving sprites: (COCO label, source image, crop rectangle, the object's box), source pixels.
# "vtest" is vtest.avi's frame at VTEST_TIME (its parked white van); the rest are skimage photos.
SPRITES: dict[str, tuple[str, str, tuple[int, int, int, int], tuple[int, int, int, int]]] = {
    "van": ("truck", "vtest", (640, 34, 735, 106), (652, 44, 723, 100)),
    "cat": ("cat", "chelsea", (0, 0, 451, 300), (0, 0, 451, 300)),
    "cup": ("cup", "coffee", (150, 0, 440, 320), (170, 10, 415, 300)),
}

FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
)


class GeneratorError(InputError):
    """A tool or resource the generator needs is missing or failed."""


@dataclass(frozen=True)
class Preset:
    """Size and density of a generated video."""

    duration: float
    width: int = 640
    height: int = 360
    fps: int = 10
    shot_range: tuple[float, float] = (4.0, 8.0)  # seconds per shot
    silence_range: tuple[float, float] = (1.0, 2.5)  # between sounds
    music_range: tuple[float, float] = (3.0, 5.0)
    text_range: tuple[float, float] = (2.5, 4.0)  # seconds a phrase stays
    text_gap: tuple[float, float] = (1.0, 3.0)
    person_range: tuple[float, float] = (6.0, 14.0)  # seconds a pedestrian walks
    person_gap: tuple[float, float] = (0.5, 2.0)
    crf: int = 23


PRESETS: dict[str, Preset] = {
    "clip10": Preset(10.0, shot_range=(2.5, 4.5), music_range=(1.5, 2.5), text_range=(2.0, 3.0)),
    "clip30": Preset(30.0),
    "clip60": Preset(60.0),
    # The hour is cheap: small, 5 fps, long static shots, sparse speech and text.
    "hour": Preset(
        3600.0,
        320,
        180,
        5,
        shot_range=(60.0, 120.0),
        silence_range=(20.0, 60.0),
        music_range=(10.0, 30.0),
        text_range=(4.0, 8.0),
        text_gap=(30.0, 90.0),
        person_range=(20.0, 40.0),
        person_gap=(60.0, 180.0),
        crf=30,
    ),
}


# ---------------------------------------------------------------------------------------------
# Tools


def _run(cmd: Sequence[str], stdin: bytes | None = None) -> bytes:
    try:
        proc = subprocess.run(list(cmd), input=stdin, capture_output=True, check=False)
    except FileNotFoundError:
        raise GeneratorError(f"{cmd[0]} is not installed (apt-get install {cmd[0]})") from None
    if proc.returncode != 0:
        tail = " | ".join(proc.stderr.decode(errors="replace").strip().splitlines()[-4:])
        raise GeneratorError(f"{cmd[0]} failed (exit {proc.returncode}): {tail}")
    return proc.stdout


def find_font() -> Path:
    """A TrueType font for drawtext; GeneratorError says how to install one."""
    for c in FONT_CANDIDATES:
        if Path(c).is_file():
            return Path(c)
    if shutil.which("fc-match"):
        out = _run(["fc-match", "-f", "%{file}", "sans:bold"]).decode().strip()
        if out.endswith((".ttf", ".otf")) and Path(out).is_file():
            return Path(out)
    raise GeneratorError(
        "no TrueType font found (expected DejaVu: apt-get install fonts-dejavu-core)"
    )


def decode_audio(path: str | Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """The first audio track of `path` as mono float32 at `sample_rate`."""
    raw = _run(
        [
            "ffmpeg",
            "-nostdin",
            "-v",
            "error",
            "-i",
            str(path),
            "-vn",
            "-ac",
            "1",
            "-ar",
            str(sample_rate),
            "-f",
            "f32le",
            "-",
        ]
    )
    return np.frombuffer(raw, dtype=np.float32).copy()


def sound_bounds(
    samples: np.ndarray, sample_rate: int = SAMPLE_RATE, rel_threshold: float = 0.05
) -> tuple[float, float]:
    """(start, end) seconds of the sound in `samples`: 10 ms frames whose RMS exceeds
    `rel_threshold` times the loudest frame's. ValueError when all is silent."""
    hop = sample_rate // 100
    n = len(samples) // hop
    if n == 0:
        raise ValueError(f"need at least {hop} samples, got {len(samples)}")
    rms = np.sqrt(np.mean(samples[: n * hop].reshape(n, hop).astype(np.float64) ** 2, axis=1))
    if rms.max() < 1e-6:
        raise ValueError("no sound: every 10 ms frame is silent")
    loud = np.flatnonzero(rms > rel_threshold * rms.max())
    return loud[0] * hop / sample_rate, (loud[-1] + 1) * hop / sample_rate


@cache
def _espeak(sentence: str, voice: str = "en-us", wpm: int = 150) -> np.ndarray:
    """`sentence` spoken by espeak-ng, trimmed to its sound, 16 kHz mono float32."""
    with tempfile.TemporaryDirectory(prefix="vidchat-fid-") as tmp:
        wav = Path(tmp) / "s.wav"
        _run(["espeak-ng", "-v", voice, "-s", str(wpm), "-w", str(wav), sentence])
        x = decode_audio(wav)
    a, b = sound_bounds(x)
    return x[int(a * SAMPLE_RATE) : int(b * SAMPLE_RATE)]


def music(seconds: float, rng: random.Random) -> np.ndarray:
    """A seeded melody: notes of a pentatonic scale, each with two harmonics and a soft envelope."""
    n = int(seconds * SAMPLE_RATE)
    out = np.zeros(n, dtype=np.float32)
    note_len = int(0.25 * SAMPLE_RATE)
    scale = [261.6, 293.7, 329.6, 392.0, 440.0, 523.3]
    env = np.hanning(note_len).astype(np.float32)
    tt = np.arange(note_len) / SAMPLE_RATE
    for i in range(0, n - note_len + 1, note_len):
        f = rng.choice(scale)
        note = np.sin(2 * np.pi * f * tt) + 0.4 * np.sin(4 * np.pi * f * tt)
        out[i : i + note_len] = 0.15 * env * note.astype(np.float32)
    return out


@cache
def photo(name: str, width: int, height: int) -> np.ndarray:
    """A scikit-image sample photograph scaled to cover (width, height), centre-cropped, RGB."""
    try:
        import skimage.data
    except ImportError:
        raise GeneratorError("photographs need scikit-image: pip install scikit-image") from None
    from PIL import Image

    img = Image.fromarray(np.asarray(getattr(skimage.data, name)())).convert("RGB")
    s = max(width / img.width, height / img.height)
    img = img.resize((max(width, round(img.width * s)), max(height, round(img.height * s))))
    x0, y0 = (img.width - width) // 2, (img.height - height) // 2
    return np.asarray(img.crop((x0, y0, x0 + width, y0 + height)))


@cache
def vtest_frame() -> np.ndarray:
    """vtest.avi's frame at `VTEST_TIME` (768x576 RGB)."""
    from vidchat.kernel.samples import sample_path

    raw = _run(
        [
            "ffmpeg",
            "-nostdin",
            "-v",
            "error",
            "-ss",
            str(VTEST_TIME),
            "-i",
            str(sample_path("vtest")),
            "-frames:v",
            "1",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-",
        ]
    )
    return np.frombuffer(raw, dtype=np.uint8).reshape(576, 768, 3)


@cache
def person_sprite(name: str, height: int) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """The pedestrian's crop scaled so the crop is `height` px tall, and the person's box in it."""
    from PIL import Image

    (cx1, cy1, cx2, cy2), (px1, py1, px2, py2) = VTEST_PERSONS[name]
    crop = Image.fromarray(vtest_frame()[cy1:cy2, cx1:cx2])
    s = height / crop.height
    size = (max(1, round(crop.width * s)), height)
    sprite = np.asarray(crop.resize(size, Image.Resampling.LANCZOS))
    inner = ((px1 - cx1) * s, (py1 - cy1) * s, (px2 - cx1) * s, (py2 - cy1) * s)
    return sprite, inner


def photo_box(name: str, box: tuple[int, int, int, int], width: int, height: int) -> Box | None:
    """`box` of photograph `name` in the frame `photo(name, width, height)` draws (cover, centre
    crop), clipped; None when less than half of it stays in the frame."""
    import skimage.data

    ih, iw = np.asarray(getattr(skimage.data, name)()).shape[:2]
    s = max(width / iw, height / ih)
    nw, nh = max(width, round(iw * s)), max(height, round(ih * s))
    sx, sy = nw / iw, nh / ih
    x0, y0 = (nw - width) // 2, (nh - height) // 2
    x1, y1, x2, y2 = box[0] * sx - x0, box[1] * sy - y0, box[2] * sx - x0, box[3] * sy - y0
    cx1, cy1, cx2, cy2 = max(0.0, x1), max(0.0, y1), min(float(width), x2), min(float(height), y2)
    if cx2 <= cx1 or cy2 <= cy1 or (cx2 - cx1) * (cy2 - cy1) < 0.5 * (x2 - x1) * (y2 - y1):
        return None
    return (round(cx1, 1), round(cy1, 1), round(cx2, 1), round(cy2, 1))


# Sizes an animal is drawn at (share of the frame height) and how long it stays (seconds).
ANIMAL_HEIGHTS = (0.25, 0.35, 0.5)
ANIMAL_STATIC_S = (3.0, 6.0)
ANIMAL_MOVING_S = (4.0, 8.0)
ANIMAL_GAP_S = (0.5, 2.0)
# An alpha value at or above this is the animal (the truth box's pixels); below, background.
ALPHA_OPAQUE = 128


def sprite_label(name: str) -> str:
    """The COCO label of sprite `name` (a `SPRITES` key or an animal photo name)."""
    return ANIMAL_PHOTOS[name].label if name in ANIMAL_PHOTOS else SPRITES[name][0]


@cache
def animal_sprite(name: str, height: int) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """The cut-out animal photograph `name` as RGBA, cropped to its opaque pixels and scaled to
    `height` px, and the animal's box in it (the bounding box of alpha >= `ALPHA_OPAQUE`)."""
    from PIL import Image

    try:
        img = Image.open(photo_path(name)).convert("RGBA")
    except OSError as e:
        raise GeneratorError(f"animal photo {name!r}: {e}") from None
    alpha = np.asarray(img)[:, :, 3]
    ys, xs = np.nonzero(alpha >= ALPHA_OPAQUE)
    if not len(xs):
        raise GeneratorError(f"animal photo {name!r} has no opaque pixels")
    img = img.crop((int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1))
    size = (max(1, round(img.width * height / img.height)), height)
    sprite = np.asarray(img.resize(size, Image.Resampling.LANCZOS))
    ys, xs = np.nonzero(sprite[:, :, 3] >= ALPHA_OPAQUE)
    return sprite, (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))


def paste(frame: np.ndarray, sprite: np.ndarray, x: int, y: int) -> None:
    """Draw `sprite` (RGB: opaque; RGBA: alpha-blended) into `frame` at (x, y), clipped."""
    fh, fw = frame.shape[:2]
    sh, sw = sprite.shape[:2]
    x1, y1, x2, y2 = max(0, x), max(0, y), min(fw, x + sw), min(fh, y + sh)
    if x2 <= x1 or y2 <= y1:
        return
    part = sprite[y1 - y : y2 - y, x1 - x : x2 - x]
    if part.shape[2] == 3:
        frame[y1:y2, x1:x2] = part
        return
    a = part[:, :, 3:4].astype(np.float32) / 255.0
    under = frame[y1:y2, x1:x2].astype(np.float32)
    frame[y1:y2, x1:x2] = (a * part[:, :, :3] + (1.0 - a) * under + 0.5).astype(np.uint8)


@cache
def object_sprite(name: str, height: int) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """The object sprite `name` scaled to `height` px, and the object's box inside it (an
    animal photo name gives an RGBA cut-out, see `animal_sprite`)."""
    from PIL import Image

    if name in ANIMAL_PHOTOS:
        return animal_sprite(name, height)
    _label, source, (cx1, cy1, cx2, cy2), (ox1, oy1, ox2, oy2) = SPRITES[name]
    if source == "vtest":
        image = vtest_frame()
    else:
        import skimage.data

        image = np.asarray(getattr(skimage.data, source)())[:, :, :3]
    crop = Image.fromarray(np.ascontiguousarray(image[cy1:cy2, cx1:cx2]))
    s = height / crop.height
    size = (max(1, round(crop.width * s)), height)
    sprite = np.asarray(crop.resize(size, Image.Resampling.LANCZOS))
    inner = ((ox1 - cx1) * s, (oy1 - cy1) * s, (ox2 - cx1) * s, (oy2 - cy1) * s)
    return sprite, inner


# ---------------------------------------------------------------------------------------------
# Planning


@dataclass
class _PersonPlan:
    id: str
    crop: str
    start: float
    end: float
    xy0: tuple[int, int]  # sprite top-left at start
    xy1: tuple[int, int]  # and at end
    height: float = 0.35  # objects: sprite height as a share of the frame height

    def xy(self, t: float) -> tuple[int, int]:
        f = (t - self.start) / max(1e-9, self.end - self.start)
        return (
            round(self.xy0[0] + f * (self.xy1[0] - self.xy0[0])),
            round(self.xy0[1] + f * (self.xy1[1] - self.xy0[1])),
        )


@dataclass
class Plan:
    """What the generator will draw and play; becomes the `Truth` once rendered."""

    name: str
    seed: int
    preset: Preset
    shots: list[ShotTruth] = field(default_factory=list)
    texts: list[TextTruth] = field(default_factory=list)
    persons: list[_PersonPlan] = field(default_factory=list)
    # moving sprites (crop = SPRITES key), then animals (crop = ANIMAL_PHOTOS key) when asked for
    objects: list[_PersonPlan] = field(default_factory=list)
    # (offset, kind, payload)
    audio: list[tuple[float, Literal["speech", "music"], str]] = field(default_factory=list)


def _q(t: float, fps: int) -> float:
    """Round a time onto the frame grid so every fact starts on a frame."""
    return round(t * fps) / fps


def plan(name: str, seed: int, preset: Preset, animals: bool = False) -> Plan:
    """A seeded plan: the same (seed, preset, animals) always gives the same video and truth."""
    rng = random.Random(seed)
    p = Plan(name, seed, preset)
    d, fps, w, h = preset.duration, preset.fps, preset.width, preset.height

    t, prev = 0.0, None
    while t < d:
        length = rng.uniform(*preset.shot_range)
        end = d if d - (t + length) < preset.shot_range[0] else _q(t + length, fps)
        choice = rng.choice([n for n in PHOTOS if n != prev])
        p.shots.append(ShotTruth(start=t, end=end, photo=choice, tags=list(PHOTOS[choice])))
        t, prev = end, choice

    font = find_font()
    size = max(14, h // 12)
    phrases = list(PHRASES)
    rng.shuffle(phrases)
    t = _q(rng.uniform(0.5, 1.5), fps)
    i = 0
    while True:
        length = rng.uniform(*preset.text_range)
        if t + length > d - 0.5:
            break
        text = phrases[i % len(phrases)]
        tw, th = _text_size(font, size, text)
        x = rng.randrange(8, max(9, w - tw - 8))
        y = rng.randrange(6, max(7, h // 5 - th))
        box = (float(x), float(y), float(x + tw), float(y + th))
        p.texts.append(TextTruth(start=t, end=_q(t + length, fps), text=text, box=box))
        t = _q(t + length + rng.uniform(*preset.text_gap), fps)
        i += 1

    sprite_h = int(h * 0.45)
    crops = list(VTEST_PERSONS)
    t = _q(rng.uniform(0.0, 1.0), fps)
    k = 0
    while t < d - 2.0:
        length = min(rng.uniform(*preset.person_range), d - t)
        sprite, _ = person_sprite(crops[k % len(crops)], sprite_h)
        sw = sprite.shape[1]
        y_lo, y_hi = h // 4, h - sprite_h - 2
        left_to_right = rng.random() < 0.5
        xa, xb = rng.randrange(2, w // 3), rng.randrange(2 * w // 3 - sw, w - sw - 2)
        xy0 = (xa, rng.randrange(y_lo, y_hi)) if left_to_right else (xb, rng.randrange(y_lo, y_hi))
        xy1 = (xb, rng.randrange(y_lo, y_hi)) if left_to_right else (xa, rng.randrange(y_lo, y_hi))
        end = _q(t + length, fps)
        p.persons.append(_PersonPlan(f"person#{k + 1}", crops[k % len(crops)], t, end, xy0, xy1))
        k += 1
        # Two walkers share the screen part of the time: the next starts before this one ends
        # (at most two at once, never the same sprite together).
        overlap = rng.uniform(0.3, 0.6) * length
        t = _q(max(t + 1.0, end - overlap + rng.uniform(*preset.person_gap)), fps)

    _plan_objects(p, random.Random(seed + 7919))
    if animals:
        _plan_animals(p, random.Random(seed + 104_729))

    t = _q(rng.uniform(0.5, 1.5), fps)
    sentences = list(SENTENCES)
    rng.shuffle(sentences)
    j, music_next = 0, False
    while t < d:
        if music_next:
            length = rng.uniform(*preset.music_range)
            if t + length > d - 0.5:
                break
            p.audio.append((t, "music", f"{length:.3f}"))
            t += length
        else:
            s = sentences[j % len(sentences)]
            if t + len(_espeak(s)) / SAMPLE_RATE > d - 0.5:
                break
            p.audio.append((t, "speech", s))
            t += len(_espeak(s)) / SAMPLE_RATE
            j += 1
        # Music after the first sentence and every second one after; silence between all.
        music_next = not music_next and j % 2 == 1
        t = _q(t + rng.uniform(*preset.silence_range), fps)
    return p


def _plan_objects(p: Plan, rng: random.Random) -> None:
    """Moving object sprites, one at a time, crossing the lower half of the frame."""
    pre = p.preset
    d, fps, w, h = pre.duration, pre.fps, pre.width, pre.height
    sprite_h = int(h * 0.35)
    names = list(SPRITES)
    rng.shuffle(names)
    t = _q(rng.uniform(0.5, 2.0), fps)
    k = 0
    while t < d - 3.0:
        name = names[k % len(names)]
        length = min(rng.uniform(*pre.person_range) * 0.7, d - t)
        sw = object_sprite(name, sprite_h)[0].shape[1]
        y_lo, y_hi = h // 2, h - sprite_h - 2
        xa, xb = (
            rng.randrange(2, max(3, w // 3)),
            rng.randrange(max(3, 2 * w // 3 - sw), w - sw - 2),
        )
        ya, yb = rng.randrange(y_lo, y_hi), rng.randrange(y_lo, y_hi)
        xy0, xy1 = ((xa, ya), (xb, yb)) if rng.random() < 0.5 else ((xb, ya), (xa, yb))
        end = _q(t + length, fps)
        p.objects.append(_PersonPlan(f"{SPRITES[name][0]}#{k + 1}", name, t, end, xy0, xy1))
        k += 1
        t = _q(end + rng.uniform(*pre.person_gap), fps)


def _plan_animals(p: Plan, rng: random.Random) -> None:
    """Animals one at a time, each static within one shot or moving, at a seeded size."""
    pre = p.preset
    d, fps, w, h = pre.duration, pre.fps, pre.width, pre.height
    names = list(ANIMAL_PHOTOS)
    rng.shuffle(names)
    t = _q(rng.uniform(0.5, 2.0), fps)
    k = 0
    while t < d - 2.0:
        name = names[k % len(names)]
        share = rng.choice(ANIMAL_HEIGHTS)
        sprite_h = int(h * share)
        sw = min(animal_sprite(name, sprite_h)[0].shape[1], w - 4)
        y_lo = min(h // 3, h - sprite_h - 2)
        y_hi = max(y_lo + 1, h - sprite_h - 2)
        if rng.random() < 0.5:
            # Static: stands where it is until it goes or its shot ends (a cut is a new picture).
            shot_end = next(s.end for s in p.shots if s.start <= t < s.end)
            end = _q(min(t + rng.uniform(*ANIMAL_STATIC_S), shot_end - 1.0 / fps, d), fps)
            if end - t < 1.5:
                t = _q(shot_end + 0.5, fps)
                continue
            xy = (rng.randrange(2, max(3, w - sw - 2)), rng.randrange(y_lo, y_hi))
            xy0, xy1 = xy, xy
        else:
            end = _q(min(t + rng.uniform(*ANIMAL_MOVING_S), d), fps)
            xa = rng.randrange(2, max(3, w // 3))
            xb = rng.randrange(max(3, 2 * w // 3 - sw), max(4, w - sw - 2))
            ya, yb = rng.randrange(y_lo, y_hi), rng.randrange(y_lo, y_hi)
            xy0, xy1 = ((xa, ya), (xb, yb)) if rng.random() < 0.5 else ((xb, ya), (xa, yb))
        label = ANIMAL_PHOTOS[name].label
        p.objects.append(_PersonPlan(f"{label}#{k + 1}", name, t, end, xy0, xy1, share))
        k += 1
        t = _q(end + rng.uniform(*ANIMAL_GAP_S), fps)


def _text_size(font: Path, size: int, text: str) -> tuple[int, int]:
    """(width, height) of `text` as drawtext draws it: Pillow, same font file and pixel size."""
    from PIL import ImageFont

    f = ImageFont.truetype(str(font), size)
    # drawtext puts the top of the tallest glyph at y, and draws the glyphs' own extent (not the
    # font's line height): measured on its white box, within 1-2 px.
    x1, y1, x2, y2 = f.getbbox(text)
    return int(np.ceil(x2 - min(0, x1))), int(np.ceil(y2 - y1))


# ---------------------------------------------------------------------------------------------
# Rendering


def _audio_track(p: Plan) -> tuple[np.ndarray, list[SpeechTruth], list[AudioStretch]]:
    d = p.preset.duration
    track = np.zeros(int(d * SAMPLE_RATE), dtype=np.float32)
    speech: list[SpeechTruth] = []
    stretches: list[AudioStretch] = []
    rng = random.Random(p.seed + 1)
    for offset, kind, payload in p.audio:
        clip = _espeak(payload) if kind == "speech" else music(float(payload), rng)
        i = round(offset * SAMPLE_RATE)
        clip = clip[: len(track) - i]
        track[i : i + len(clip)] += clip * (0.5 / max(1e-6, float(np.abs(clip).max())))
        a, b = sound_bounds(track[i : i + len(clip)])
        stretches.append(AudioStretch(start=offset + a, end=offset + b, kind=kind))
        if kind == "speech":
            speech.append(SpeechTruth(start=offset + a, end=offset + b, text=payload))
    # Silence is whatever lies between sounds (and at both ends).
    t, gaps = 0.0, []
    for s in stretches:
        if s.start - t > 0.3:
            gaps.append(AudioStretch(start=t, end=s.start, kind="silence"))
        t = s.end
    if d - t > 0.3:
        gaps.append(AudioStretch(start=t, end=d, kind="silence"))
    return track, speech, sorted(stretches + gaps, key=lambda s: s.start)


def _drawtext_filter(p: Plan, font: Path) -> str:
    size = max(14, p.preset.height // 12)
    parts = []
    for tx in p.texts:
        x, y = int(tx.box[0]), int(tx.box[1])
        parts.append(
            f"drawtext=fontfile='{font}':text='{tx.text}':fontsize={size}:fontcolor=black"
            f":box=1:boxcolor=white@0.85:boxborderw=4:x={x}:y={y}"
            f":enable='between(t,{tx.start:.3f},{tx.end - 1e-3:.3f})'"
        )
    return ",".join(parts) or "null"


def render_video(p: Plan, out_dir: str | Path) -> Truth:
    """Render the plan to ``out_dir/<name>.mp4`` and its truth to ``out_dir/<name>.truth.json``."""
    for tool in ("ffmpeg", "espeak-ng"):
        if shutil.which(tool) is None:
            raise GeneratorError(f"{tool} is not installed (apt-get install {tool})")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    video = out_dir / f"{p.name}.mp4"
    pre = p.preset
    w, h, fps = pre.width, pre.height, pre.fps
    font = find_font()
    track, speech, stretches = _audio_track(p)
    sprite_h = int(h * 0.45)
    n_frames = round(pre.duration * fps)

    with tempfile.TemporaryDirectory(prefix="vidchat-fid-") as tmp:
        wav = Path(tmp) / "audio.f32"
        wav.write_bytes(track.tobytes())
        vf = _drawtext_filter(p, font)
        script = Path(tmp) / "vf.txt"  # a file: the hour's filter is too long for argv comfort
        script.write_text(vf)
        cmd = [
            "ffmpeg",
            "-nostdin",
            "-v",
            "error",
            "-y",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-s",
            f"{w}x{h}",
            "-r",
            str(fps),
            "-i",
            "-",
            "-f",
            "f32le",
            "-ar",
            str(SAMPLE_RATE),
            "-ac",
            "1",
            "-i",
            str(wav),
            "-filter_script:v",
            str(script),
            "-map",
            "0:v",
            "-map",
            "1:a",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-crf",
            str(pre.crf),
            "-threads",
            "1",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-b:a",
            "64k",
            "-t",
            f"{pre.duration:.3f}",
            str(video),
        ]
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
        assert proc.stdin is not None
        try:
            shot_i = 0
            for i in range(n_frames):
                t = i / fps
                while shot_i + 1 < len(p.shots) and t >= p.shots[shot_i + 1].start - 1e-9:
                    shot_i += 1
                frame = photo(p.shots[shot_i].photo, w, h).copy()
                for ob in p.objects:
                    if ob.start <= t <= ob.end:
                        sprite, _ = object_sprite(ob.crop, int(h * ob.height))
                        x, y = ob.xy(t)
                        paste(frame, sprite, x, y)
                for per in p.persons:
                    if per.start <= t <= per.end:
                        sprite, _ = person_sprite(per.crop, sprite_h)
                        x, y = per.xy(t)
                        frame[y : y + sprite.shape[0], x : x + sprite.shape[1]] = sprite
                proc.stdin.write(frame.tobytes())
            proc.stdin.close()
        except BrokenPipeError:
            pass
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        if proc.wait() != 0:
            raise GeneratorError(f"ffmpeg failed composing {video.name}: {err.strip()[-400:]}")

    persons = []
    for k, per in enumerate(p.persons):
        _, (ix1, iy1, ix2, iy2) = person_sprite(per.crop, sprite_h)
        times = sorted({*np.arange(per.start, per.end, 0.5).round(3).tolist(), per.end})
        path = []
        for t in times:
            x, y = per.xy(t)
            box = (x + ix1, y + iy1, x + ix2, y + iy2)
            vis = visible_share(box, _drawn_over(p, t, (2, k)), w, h)
            path.append(PathPoint(t=t, box=box, visible=vis))
        persons.append(
            PersonTruth(
                id=per.id, first_seen=per.start, last_seen=per.end, crop=per.crop, path=path
            )
        )
    objects = _object_truth(p)
    digest = hashlib.sha256()
    with video.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    truth = Truth(
        sha256=digest.hexdigest(),
        name=p.name,
        seed=p.seed,
        video=str(video),
        duration=pre.duration,
        width=w,
        height=h,
        fps=float(fps),
        shots=p.shots,
        speech=speech,
        texts=p.texts,
        persons=persons,
        objects=objects,
        audio=stretches,
    )
    truth.save(out_dir / f"{p.name}.truth.json")
    return truth


def _drawn_over(p: Plan, t: float, layer: tuple[int, int]) -> list[Box]:
    """Rectangles drawn at time `t` over the thing at `layer`, in `render_video`'s order:
    (0, 0) the photograph, (1, k) object k (moving sprites, then animals), (2, k) walker k, then
    the on-screen text (white box, 4 px border, over everything). Sprites are opaque rectangles;
    an animal cut-out covers its opaque pixels' bounding box (so its cover is over-counted
    between legs and around the outline: conservative, the scorer's "hidden" is then early)."""
    h = p.preset.height
    out: list[Box] = []
    for k, ob in enumerate(p.objects):
        if (1, k) > layer and ob.start <= t <= ob.end:
            sprite, (ix1, iy1, ix2, iy2) = object_sprite(ob.crop, int(h * ob.height))
            x, y = ob.xy(t)
            if ob.crop in ANIMAL_PHOTOS:
                out.append((x + ix1, y + iy1, x + ix2, y + iy2))
            else:
                out.append((x, y, x + sprite.shape[1], y + sprite.shape[0]))
    for k, per in enumerate(p.persons):
        if (2, k) > layer and per.start <= t <= per.end:
            sprite, _ = person_sprite(per.crop, int(h * 0.45))
            x, y = per.xy(t)
            out.append((x, y, x + sprite.shape[1], y + sprite.shape[0]))
    for tx in p.texts:
        if tx.start <= t < tx.end:
            x1, y1, x2, y2 = tx.box
            out.append((x1 - 4, y1 - 4, x2 + 4, y2 + 4))
    return out


def visible_share(box: Box, covers: Sequence[Box], width: int, height: int) -> float:
    """Share of `box` (clipped to the frame) that no rectangle of `covers` overlaps, 0..1."""
    x1, y1 = max(0, int(np.floor(box[0]))), max(0, int(np.floor(box[1])))
    x2, y2 = min(width, int(np.ceil(box[2]))), min(height, int(np.ceil(box[3])))
    if x2 <= x1 or y2 <= y1:
        return 0.0
    covered = np.zeros((y2 - y1, x2 - x1), dtype=bool)
    for c in covers:
        cx1, cy1 = max(x1, int(np.floor(c[0]))), max(y1, int(np.floor(c[1])))
        cx2, cy2 = min(x2, int(np.ceil(c[2]))), min(y2, int(np.ceil(c[3])))
        if cx2 > cx1 and cy2 > cy1:
            covered[cy1 - y1 : cy2 - y1, cx1 - x1 : cx2 - x1] = True
    return round(1.0 - float(covered.mean()), 3)


def _object_truth(p: Plan) -> list[ObjectTruth]:
    """Static objects of every shot's photograph and the moving sprites, numbered per label;
    boxes every 0.5 s with the share of each box that nothing drawn later covers."""
    w, h = p.preset.width, p.preset.height
    found: list[tuple[float, str, ObjectTruth]] = []
    for shot in p.shots:
        for label, box in PHOTO_OBJECTS.get(shot.photo, ()):
            b = photo_box(shot.photo, box, w, h)
            if b is None:
                continue
            times = sorted({*np.arange(shot.start, shot.end, 0.5).round(3).tolist(), shot.end})
            path = [
                PathPoint(t=t, box=b, visible=visible_share(b, _drawn_over(p, t, (0, 0)), w, h))
                for t in times
            ]
            found.append((shot.start, label, ObjectTruth(
                id="", label=label, first_seen=shot.start, last_seen=shot.end,
                crop=shot.photo, path=path, moving=False,
            )))  # fmt: skip
    for k, ob in enumerate(p.objects):
        label = sprite_label(ob.crop)
        _, (ix1, iy1, ix2, iy2) = object_sprite(ob.crop, int(h * ob.height))
        times = sorted({*np.arange(ob.start, ob.end, 0.5).round(3).tolist(), ob.end})
        path = []
        for t in times:
            x, y = ob.xy(t)
            at = (x + ix1, y + iy1, x + ix2, y + iy2)
            vis = visible_share(at, _drawn_over(p, t, (1, k)), w, h)
            path.append(PathPoint(t=t, box=at, visible=vis))
        found.append((ob.start, label, ObjectTruth(
            id="", label=label, first_seen=ob.start, last_seen=ob.end, crop=ob.crop,
            path=path, moving=ob.xy0 != ob.xy1, height_share=ob.height,
        )))  # fmt: skip
    found.sort(key=lambda x: x[0])
    counts: dict[str, int] = {}
    out = []
    for _, label, o in found:
        counts[label] = counts.get(label, 0) + 1
        # Photo persons are numbered after the walkers' person#1..n ids (distinct truth ids).
        prefix = "photo-person" if label == "person" else label
        out.append(o.model_copy(update={"id": f"{prefix}#{counts[label]}"}))
    return out


def generate(
    name: str,
    out_dir: str | Path,
    *,
    preset: str | Preset = "clip10",
    seed: int = 0,
    animals: bool = False,
) -> Truth:
    """Plan and render one video; returns its `Truth` (also saved beside the video).

    `animals` adds the cut-out animal photographs (needs them installed: `.ci/setup`)."""
    if isinstance(preset, str):
        if preset not in PRESETS:
            raise GeneratorError(
                f"unknown preset {preset!r} (expected one of: {', '.join(PRESETS)})"
            )
        preset = PRESETS[preset]
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise GeneratorError(f"video name must be letters, digits, _ . - (got {name!r})")
    return render_video(plan(name, seed, preset, animals), out_dir)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m vidchat.apps.fidelity.generate OUT_DIR [--preset clip10] [--seed 0]``

    (``--name N`` names the clip.)
    """
    ap = argparse.ArgumentParser(prog="fidelity-gen", description=__doc__.splitlines()[0])
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--preset", default="clip10", choices=sorted(PRESETS))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--name", help="file stem (default: PRESET-sSEED, -animals with --animals)")
    ap.add_argument(
        "--animals", action="store_true", help="add cut-out animal photographs (static, moving)"
    )
    args = ap.parse_args(argv)
    stem = f"{args.preset}-s{args.seed}" + ("-animals" if args.animals else "")
    try:
        truth = generate(
            args.name or stem, args.out_dir, preset=args.preset, seed=args.seed,
            animals=args.animals,
        )  # fmt: skip
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(
        f"{truth.video} ({truth.duration:g} s, {len(truth.cuts)} cuts, {len(truth.speech)} "
        f"sentences, {len(truth.texts)} texts, {len(truth.persons)} persons, "
        f"{len(truth.objects)} other objects)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
