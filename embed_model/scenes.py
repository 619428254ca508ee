"""Generated scenes where each path has something to win: the embed-vs-text comparison task.

Every scene is a short video of one to three coloured shapes on a plain background, some still
and some moving in a straight line, with one word shown at the bottom and one sentence said.
Frames are drawn with numpy (text with OpenCV) and written by one ffmpeg call per video, small
(112 px, 8 fps, 4 s) so a few hundred videos take a couple of minutes here.

Two records come with each video, both exact:

- the **truth** record: every shape as an object (``circle#1``) with its colour, shape, size and
  trajectory, the on-screen word (an ``ocr`` event) and the sentence (a speech segment);
- the **text-path** record: what vidchat's shipped perceivers give the text path on such a
  video — the sentence (as ASR would transcribe it) and the word (as OCR would read it), and no
  objects: the shipped detectors find people and COCO objects, not coloured shapes, and nothing
  shipped names colours, sizes or directions. It is a perfect-perception record (ASR and OCR
  never wrong), so the text path's rows are its upper bound on these videos.

Questions (`scene_questions`), multiple choice, options always the whole answer set of the
type in a shuffled order, answers drawn uniformly so nothing can be guessed from the wording:

==============  ========================================  ===========================  ========
type            question                                  options                      needs
==============  ========================================  ===========================  ========
colour          What colour is the circle?                red, green, blue, yellow     pixels
shape           What shape is the red object?             circle, square, triangle     pixels
size            Is the red circle small or large?         small, large                 pixels
direction       Which way does the red circle move?       left, right, up, down        pixels
first_move      Which object starts moving first?         the moving objects           pixels
count_moving    How many objects move?                    0, 1, 2, 3                   pixels
speech          What is said in the video?                4 of the sentences           audio
ocr             What word is shown on screen?             4 of the words               pixels*
==============  ========================================  ===========================  ========

(*) the word is in the pixels, but 5 px high at 112 px: the text path reads it from OCR.

Held-out videos are asked one question of each type (about a randomly chosen object); training
videos are asked everything (`scene_questions(every=True)`: every object's colour, shape and
size, every mover's direction, the count and first-move questions in several phrasings), about
15 questions a video instead of 8. (With one question per type on 300 videos the embed path
stayed at chance on new scenes, bench/results/embed_r3.json; with every question on 1,600 videos
it still did, bench/results/embed_r4.json: the data volume was not what limited it. With the
auxiliary attribute loss on the video tokens, colour, size and moving-count beat the trained
blind twin by >= 0.20 on the test split; shape, direction and first move do not yet,
bench/results/embed.json.)

Alignment data (stage 1 of training) is a description of each video written from its truth
record by `describe_scene` (what is visible: shapes, colours, sizes, motion, the word).
"""

from __future__ import annotations

import hashlib
import random
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vidchat.apps.instruct import (
    OPEN_INSTRUCTION,
    QA,
    InstructionRecord,
    assign_splits,
    mc_qa,
)
from vidchat.kernel.errors import InputError
from vidchat.kernel.record import (
    Event,
    ObjectTrack,
    Provenance,
    SpeechSegment,
    TrackPoint,
    VideoContext,
    VideoInfo,
)

__all__ = [
    "ANSWER_CLASSES",
    "ATTRIBUTE_HEADS",
    "COLOURS",
    "COUNT_PHRASINGS",
    "DESCRIBE_INSTRUCTION",
    "DIRECTIONS",
    "FIRST_PHRASINGS",
    "SENTENCES",
    "SHAPES",
    "SIZES",
    "TEXT_TYPES",
    "VISUAL_TYPES",
    "WORDS",
    "Scene",
    "Shape",
    "answer_target",
    "attribute_targets",
    "build_scene_dataset",
    "describe_scene",
    "draw_frames",
    "random_scene_spec",
    "scene_questions",
    "scene_targets",
    "write_scene",
]

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (225, 40, 40),
    "green": (40, 190, 50),
    "blue": (50, 80, 245),
    "yellow": (240, 220, 40),
}
SHAPES = ("circle", "square", "triangle")
SIZES = {"small": 14, "large": 28}
DIRECTIONS = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}
WORDS = ("OPEN", "EXIT", "SALE", "STOP", "HOTEL", "TAXI", "CAFE", "BANK")
SENTENCES = (
    "The train leaves at noon.",
    "Please close the door behind you.",
    "My sister lives in Lisbon.",
    "We ran out of coffee again.",
    "The meeting moved to Friday.",
    "Turn left after the bridge.",
    "I lost my keys at the park.",
    "Dinner will be ready at eight.",
)
VISUAL_TYPES = ("colour", "shape", "size", "direction", "first_move", "count_moving")
TEXT_TYPES = ("speech", "ocr")
DESCRIBE_INSTRUCTION = "Describe what is visible in the video."

FRAME = 112  # px, square frames
FPS = 8
SECONDS = 4.0
_TEXT_BAND = 14  # px at the bottom kept free of shapes for the word
_TRAVEL = 40  # px a moving shape travels
_MOVE_S = 1.5  # seconds a move lasts
_STARTS = (0.25, 1.0, 1.75, 2.5)  # move start times: any two differ by >= 0.75 s


@dataclass(frozen=True)
class Shape:
    """One shape: top-left corner (x, y) at rest; moving ones travel `_TRAVEL` px in
    `direction` between `start` and `start + _MOVE_S` seconds."""

    colour: str
    shape: str
    size: str
    x: float
    y: float
    direction: str | None = None
    start: float = 0.0

    def at(self, t: float) -> tuple[float, float]:
        if self.direction is None:
            return self.x, self.y
        f = min(max((t - self.start) / _MOVE_S, 0.0), 1.0)
        dx, dy = DIRECTIONS[self.direction]
        return self.x + f * dx * _TRAVEL, self.y + f * dy * _TRAVEL

    @property
    def name(self) -> str:
        return f"the {self.colour} {self.shape}"


@dataclass(frozen=True)
class Scene:
    """Everything in one generated video."""

    shapes: tuple[Shape, ...]
    word: str
    sentence: str
    background: int  # grey level
    seed: int

    @property
    def moving(self) -> list[Shape]:
        return [s for s in self.shapes if s.direction is not None]


def random_scene_spec(seed: int) -> Scene:
    """A reproducible random scene. The number of moving shapes is drawn first (uniform 0-3),
    then the number of shapes (uniform among those that fit), so "how many move" is balanced;
    colours and shapes are all different within a scene (each can be named uniquely)."""
    rng = random.Random(f"scene:{seed}")
    n_moving = rng.randint(0, 3)
    n = rng.randint(max(n_moving, 1), 3)
    colours = rng.sample(sorted(COLOURS), n)
    shapes = rng.sample(SHAPES, n)
    starts = rng.sample(_STARTS, n_moving)
    movers = set(rng.sample(range(n), n_moving))
    out = []
    for k in range(n):
        size = rng.choice(sorted(SIZES))
        side = SIZES[size]
        direction = rng.choice(sorted(DIRECTIONS)) if k in movers else None
        dx, dy = DIRECTIONS[direction] if direction else (0, 0)
        # A start such that the whole path stays inside the frame (above the text band).
        lo_x = 2 + max(0, -dx * _TRAVEL)
        hi_x = FRAME - side - 2 - max(0, dx * _TRAVEL)
        lo_y = 2 + max(0, -dy * _TRAVEL)
        hi_y = FRAME - _TEXT_BAND - side - 2 - max(0, dy * _TRAVEL)
        out.append(
            Shape(
                colour=colours[k],
                shape=shapes[k],
                size=size,
                x=rng.uniform(lo_x, hi_x),
                y=rng.uniform(lo_y, hi_y),
                direction=direction,
                start=starts.pop() if direction else 0.0,
            )
        )
    return Scene(
        shapes=tuple(out),
        word=rng.choice(WORDS),
        sentence=rng.choice(SENTENCES),
        background=rng.randint(15, 70),
        seed=seed,
    )


def _draw_shape(img: np.ndarray, s: Shape, x: float, y: float) -> None:
    side = SIZES[s.size]
    colour = np.array(COLOURS[s.colour], np.uint8)
    yy, xx = np.mgrid[0 : img.shape[0], 0 : img.shape[1]].astype(np.float32)
    u, v = (xx - x) / side, (yy - y) / side  # 0..1 inside the bounding box
    inside = (u >= 0) & (u < 1) & (v >= 0) & (v < 1)
    if s.shape == "circle":
        inside &= (u - 0.5) ** 2 + (v - 0.5) ** 2 <= 0.25
    elif s.shape == "triangle":  # apex up
        inside &= np.abs(u - 0.5) <= v / 2
    img[inside] = colour


def draw_frames(scene: Scene) -> np.ndarray:
    """``uint8 [T, FRAME, FRAME, 3]`` frames of the scene (T = SECONDS * FPS)."""
    import cv2

    n = int(SECONDS * FPS)
    frames = np.empty((n, FRAME, FRAME, 3), np.uint8)
    for k in range(n):
        t = k / FPS
        img = np.full((FRAME, FRAME, 3), scene.background, np.uint8)
        for s in scene.shapes:
            _draw_shape(img, s, *s.at(t))
        cv2.putText(
            img,
            scene.word,
            (4, FRAME - 4),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.35,
            (235, 235, 235),
            1,
            cv2.LINE_AA,
        )
        frames[k] = img
    return frames


def _encode(frames: np.ndarray, dest: Path) -> None:
    _, h, w, _ = frames.shape
    args = ["ffmpeg", "-nostdin", "-y", "-loglevel", "error", "-f", "rawvideo"]
    args += ["-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-r", str(FPS), "-i", "pipe:0"]
    args += ["-c:v", "libx264", "-preset", "ultrafast", "-crf", "12", "-pix_fmt", "yuv420p"]
    args += ["-f", "mp4", "file:" + str(dest)]  # "file:": a name is never read as an option
    proc = subprocess.run(args, input=frames.tobytes(), capture_output=True)
    if proc.returncode != 0:
        msg = proc.stderr.decode(errors="replace").strip()[-300:]
        raise InputError(f"ffmpeg could not write {dest}: {msg}")


def _truth_record(scene: Scene, info: VideoInfo) -> VideoContext:
    objects = []
    for k, s in enumerate(scene.shapes):
        side = SIZES[s.size]
        points = []
        for t in np.arange(0.0, SECONDS + 1e-9, 0.25):
            x, y = s.at(float(t))
            points.append(TrackPoint(t=float(t), box=(x, y, x + side, y + side), score=1.0))
        objects.append(
            ObjectTrack(
                id=f"{s.shape}#{k + 1}",
                label=s.shape,
                first_seen=0.0,
                last_seen=SECONDS - 1 / FPS,
                source="generator",
                confidence=1.0,
                trajectory=points,
                attributes={
                    "colour": s.colour,
                    "size": s.size,
                    "direction": s.direction or "still",
                    "moves_from": s.start if s.direction else None,
                },
            )
        )
    return VideoContext(
        video=info,
        profile="generated",
        objects=objects,
        speech=_speech(scene),
        events=[_word_event(scene)],
        provenance=[Provenance(name="generator", version="1", status="ok", items=len(objects))],
    ).sort()


def _speech(scene: Scene) -> list[SpeechSegment]:
    return [SpeechSegment(start=1.0, end=2.5, text=scene.sentence, language="en")]


def _word_event(scene: Scene) -> Event:
    return Event(start=0.0, end=SECONDS, kind="ocr", text=scene.word, source="ocr")


def _text_record(scene: Scene, info: VideoInfo) -> VideoContext:
    """What the text path reads: speech and on-screen text, perfectly perceived; no objects."""
    return VideoContext(
        video=info,
        profile="generated (perfect asr + ocr; detect finds no shapes)",
        speech=_speech(scene),
        events=[_word_event(scene)],
        provenance=[
            Provenance(name="asr", version="generated", status="ok", items=1),
            Provenance(name="ocr", version="generated", status="ok", items=1),
            Provenance(name="detect", version="generated", status="ok", items=0),
        ],
    ).sort()


def write_scene(scene: Scene, folder: str | Path) -> tuple[Path, VideoContext, VideoContext]:
    """Write ``scene<seed>.mp4`` with its truth and text-path records (``.truth.json``,
    ``.json``) into `folder`; an existing complete set is reused (generation is resumable)."""
    d = Path(folder)
    d.mkdir(parents=True, exist_ok=True)
    video = d / f"scene{scene.seed:05d}.mp4"
    truth_p, text_p = video.with_suffix(".truth.json"), video.with_suffix(".json")
    if video.is_file() and truth_p.is_file() and text_p.is_file():
        return video, VideoContext.load(truth_p), VideoContext.load(text_p)
    _encode(draw_frames(scene), video)
    data = video.read_bytes()
    info = VideoInfo(
        path=str(video.resolve()),
        sha256=hashlib.sha256(data).hexdigest(),
        size_bytes=len(data),
        duration=SECONDS,
        fps=f"{FPS}/1",
        width=FRAME,
        height=FRAME,
        codec="h264",
    )
    truth, text = _truth_record(scene, info), _text_record(scene, info)
    text.save(text_p)
    truth.save(truth_p)  # written last: its presence marks the set complete
    return video, truth, text


def describe_scene(truth: VideoContext) -> str:
    """A description of what is visible, written from the truth record (alignment data)."""
    parts = []
    for o in truth.objects:
        a = o.attributes
        what = f"a {a['size']} {a['colour']} {o.label}"
        if a["direction"] == "still":
            parts.append(f"{what} stays still")
        else:
            t0 = float(a["moves_from"] or 0.0)
            parts.append(f"{what} moves {a['direction']} from {t0:.2f} s")
    words = [e.text for e in truth.events if e.kind == "ocr"]
    text = "; ".join(parts).capitalize() + "."
    if words:
        text += f" The word {words[0]} is written at the bottom."
    return text


ATTRIBUTE_HEADS: tuple[tuple[str, tuple[str, ...]], ...] = (
    *(
        head
        for c in sorted(COLOURS)
        for head in (
            (f"{c}: shape", ("absent", *SHAPES)),
            (f"{c}: size", tuple(sorted(SIZES))),
            (f"{c}: motion", ("still", *sorted(DIRECTIONS))),
        )
    ),
    ("moving objects", ("0", "1", "2", "3")),
    ("first mover's colour", tuple(sorted(COLOURS))),
)
"""The scene attributes the auxiliary loss asks of the video tokens (`EmbedConfig.aux_weight`):
one slot per colour (colours are unique within a scene, so a colour names an object) with its
shape or ``absent``, its size and its motion, then how many objects move and the colour of the
one that moves first. Together they answer every visual question type of `scene_questions`."""


def attribute_targets(truth: VideoContext) -> list[int]:
    """One class index per `ATTRIBUTE_HEADS` entry from a scene's truth record; -100 where the
    attribute does not exist (the size of an absent colour, the first mover of a scene with
    fewer than two movers), which the loss ignores."""
    by_colour = {o.attributes["colour"]: o for o in truth.objects}
    out: list[int] = []
    for name, classes in ATTRIBUTE_HEADS:
        colour, _, what = name.partition(": ")
        o = by_colour.get(colour)
        if what == "shape":
            out.append(classes.index(o.label if o else "absent"))
        elif what == "size":
            out.append(classes.index(o.attributes["size"]) if o else -100)
        elif what == "motion":
            out.append(classes.index(o.attributes["direction"]) if o else -100)
        elif name == "moving objects":
            movers = [m for m in truth.objects if m.attributes["direction"] != "still"]
            out.append(len(movers))
        else:  # the first mover's colour (a question only with two movers or more)
            movers = [m for m in truth.objects if m.attributes["direction"] != "still"]
            if len(movers) < 2:
                out.append(-100)
                continue
            first = min(movers, key=lambda m: float(m.attributes["moves_from"] or 0.0))
            out.append(classes.index(first.attributes["colour"]))
    return out


ANSWER_CLASSES: tuple[str, ...] = (
    *sorted(COLOURS),
    *SHAPES,
    *sorted(SIZES),
    *sorted(DIRECTIONS),
    "0",
    "1",
    "2",
    "3",
    *(f"the {c} {s}" for c in sorted(COLOURS) for s in SHAPES),
)
"""Every answer of a visual question (`VISUAL_TYPES`) of `scene_questions`: the classes of the
question-conditioned auxiliary head (`EmbedConfig.aux_answer`)."""


def answer_target(qtype: str, answer: str) -> int:
    """The `ANSWER_CLASSES` index of an open answer to a visual question of `qtype`; -100 (no
    target) for any other question (speech, on-screen text, descriptions, other videos)."""
    if qtype not in VISUAL_TYPES or answer not in ANSWER_CLASSES:
        return -100
    return ANSWER_CLASSES.index(answer)


def scene_targets(video: str | Path) -> list[int] | None:
    """`attribute_targets` of a generated scene video, from the ``.truth.json`` written beside
    it by `write_scene`; None for any other video (no truth: no auxiliary loss for it)."""
    truth = Path(video).with_suffix(".truth.json")
    if not truth.is_file():
        return None
    return attribute_targets(VideoContext.load(truth))


def _open(question: str, answer: str, qtype: str) -> QA:
    return QA(i=OPEN_INSTRUCTION, q=question, a=answer, type=qtype, source="grounded")


COUNT_PHRASINGS = (
    "How many objects move?",
    "How many shapes are moving?",
    "How many of the shapes move at some point?",
)
"""Ways to ask count_moving; held-out (val/test) videos are asked the first one only."""
FIRST_PHRASINGS = ("Which object starts moving first?", "Which shape begins to move first?")
"""Ways to ask first_move; held-out videos are asked the first one only."""


def scene_questions(scene: Scene, seed: int = 0, every: bool = False) -> list[QA]:
    """Questions about the scene, open and multiple choice (same answer).

    By default one of each type the scene allows (about a randomly chosen object where the
    type is about one): the held-out form. With `every` (the training form) every object is
    asked its colour, shape and size, every moving object its direction, and count_moving and
    first_move come in each of their phrasings: the same videos teach several times as many
    facts, and no object of a scene is left to be guessed from the others.
    """
    rng = random.Random(f"q:{seed}:{scene.seed}")
    items: list[tuple[str, str, list[str], str]] = []
    pick = list(scene.shapes) if every else [rng.choice(scene.shapes)]
    for s in pick:
        items.append((f"What colour is the {s.shape}?", s.colour, sorted(COLOURS), "colour"))
    pick = list(scene.shapes) if every else [rng.choice(scene.shapes)]
    for s in pick:
        items.append((f"What shape is the {s.colour} object?", s.shape, list(SHAPES), "shape"))
    pick = list(scene.shapes) if every else [rng.choice(scene.shapes)]
    for s in pick:
        q = f"Is the {s.colour} {s.shape} small or large?"
        items.append((q, s.size, ["small", "large"], "size"))
    if scene.moving:
        pick = list(scene.moving) if every else [rng.choice(scene.moving)]
        for s in pick:
            q = f"Which way does the {s.colour} {s.shape} move?"
            items.append((q, s.direction or "", list(DIRECTIONS), "direction"))
    if len(scene.moving) >= 2:
        first = min(scene.moving, key=lambda m: m.start)
        names = [m.name for m in scene.moving]
        for q in FIRST_PHRASINGS if every else FIRST_PHRASINGS[:1]:
            items.append((q, first.name, names, "first_move"))
    n = str(len(scene.moving))
    for q in COUNT_PHRASINGS if every else COUNT_PHRASINGS[:1]:
        items.append((q, n, ["0", "1", "2", "3"], "count_moving"))
    others = [x for x in SENTENCES if x != scene.sentence]
    opts = [scene.sentence, *rng.sample(others, 3)]
    items.append(("What is said in the video?", scene.sentence, opts, "speech"))
    others = [x for x in WORDS if x != scene.word]
    opts = [scene.word, *rng.sample(others, 3)]
    items.append(("What word is shown on screen?", scene.word, opts, "ocr"))
    out = []
    for q, a, options, qtype in items:
        out.append(_open(q, a, qtype))
        out.append(mc_qa(rng, q, a, options, qtype))
    return out


def build_scene_dataset(
    folder: str | Path,
    n_videos: int,
    *,
    first_seed: int = 0,
    ratios: tuple[float, float, float] = (0.75, 0.05, 0.2),
    progress: bool = False,
    every_in: tuple[str, ...] = ("train",),
) -> list[InstructionRecord]:
    """Write `n_videos` scenes into `folder` (reusing those already there) and return their
    instruction data: per video a description (``type="description"``, stage 1) and the
    questions of `scene_questions` (stage 2), each video in one split (by content hash).
    Videos of the splits in `every_in` get every question (``scene_questions(every=True)``),
    the others one of each type (so held-out accuracy counts each video once per type)."""
    if n_videos < 1:
        raise InputError(f"n_videos must be >= 1, got {n_videos}")
    made = []
    for k in range(first_seed, first_seed + n_videos):
        scene = random_scene_spec(k)
        video, truth, text = write_scene(scene, folder)
        made.append((scene, video, truth, text))
        if progress and (k - first_seed + 1) % 50 == 0:
            print(f"scenes: {k - first_seed + 1}/{n_videos}", flush=True)
    splits = assign_splits([t.video.sha256 for _, _, t, _ in made], ratios)
    out = []
    for scene, video, truth, _text in made:
        qa = [
            QA(
                i=DESCRIBE_INSTRUCTION,
                q="",
                a=describe_scene(truth),
                type="description",
                source="grounded",
            ),
            *scene_questions(scene, every=splits[truth.video.sha256] in every_in),
        ]
        out.append(
            InstructionRecord(
                video=str(video.resolve()),
                sha256=truth.video.sha256,
                duration=SECONDS,
                record=str(video.with_suffix(".json").resolve()),
                split=splits[truth.video.sha256],
                QA=qa,
            )
        )
    return out
