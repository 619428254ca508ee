"""Why animals are missed: every visible animal truth sample of the suite, put in one bucket.

    python -m bench.fidelity.animal_misses [--suite clip10:0,clip30:1,clip60:2]
        [--profile bench/fidelity/detect-only.yaml] [--keep DIR]
        [--out bench/results/animal_misses.json]

For each clip the suite's generator makes (animals on), the profile's record is made and scored
(`bench.fidelity.run.run_suite`), then the fast frames are decoded as the pipeline decodes them
(`fast_fps`, `fast_max_side`) and NanoDet-m's raw heads are read for each frame
(`NanoDetONNX.heads`, `nanodet_cells`: every cell's box and all 80 class scores, before any
threshold, NMS or tracking). For each truth animal sample (every 0.5 s, at least half visible,
as the scorer counts it) the script records the truth's label, photo, height share, whether it
moves, and, at the fast frame of that time:

- ``best_animal``: the cell with the highest animal-class score among cells whose box overlaps
  the truth at IoU >= 0.5 (its score, class, IoU, and whether that cell's best class overall is
  an animal: when a person score beats it, per-class decoding never proposes the animal box);
- ``best_any``: the same for any class (score, label);
- ``best_iou``: the highest IoU of any cell whose animal score is >= 0.1 (the box geometry).

Buckets for each sample the record misses (no animal-family record box at IoU >= 0.5):
``a_no_raw_box`` (no cell at IoU >= 0.5 with an animal score >= 0.05, and no cell at IoU
0.3-0.5 scoring >= the family threshold), ``d_geometry`` (a cell at IoU 0.3-0.5 scores at least
the family threshold but none at >= 0.5 does), ``b_below_threshold`` (a cell at IoU >= 0.5 has
an animal score in [0.05, family threshold)), ``e_other_class_wins`` (that cell's animal score
reaches the threshold but another class scores higher there, so the decoder proposes that class
instead; only when the profile's detect does not propose the animal family's runner-up class,
`second_class`), ``c_lost_in_tracking`` (an animal box at IoU >= 0.5 reaching the threshold is
proposed; the record still misses it: a track not born, dropped, or drawn elsewhere).
The sample's time is the fast frame's (the scorer's 0.5 s grid and the 2 fps stream coincide;
the script checks it and reports the largest gap).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.fidelity.run import RESULTS, parse_suite, run_suite
from bench.results_io import write_results
from vidchat.apps.fidelity.score import ScoreConfig, iou
from vidchat.apps.fidelity.truth import ANIMALS, Truth
from vidchat.kernel.record import VideoContext, track_box_at
from vidchat.kernel.video import decode_frames, probe
from vidchat.perceivers.detect import (
    ANIMAL_LABELS,
    COCO_CLASSES,
    DetectOptions,
    DetectPerceiver,
    NanoDetONNX,
    nanodet_cells,
)

_ANIMAL_IDX = np.array([i for i, n in enumerate(COCO_CLASSES) if n in ANIMAL_LABELS])
_FLOOR = 0.05  # below this an animal score is noise (every cell has some)


def _box_iou_many(box: tuple[float, ...], boxes: np.ndarray) -> np.ndarray:
    x1 = np.maximum(box[0], boxes[:, 0])
    y1 = np.maximum(box[1], boxes[:, 1])
    x2 = np.minimum(box[2], boxes[:, 2])
    y2 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    a = (box[2] - box[0]) * (box[3] - box[1])
    b = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(a + b - inter, 1e-9)


def diagnose_clip(
    video: Path, truth: Truth, ctx: VideoContext, detector: NanoDetONNX, fps: float, side: int,
    threshold: float, runner_up: bool = False,
) -> list[dict[str, Any]]:  # fmt: skip
    """One row per visible animal truth sample of `truth` (see the module docstring)."""
    cfg = ScoreConfig()
    max_gap = 3 * cfg.object_step + 1.0
    animals = [o for o in truth.objects if o.label in ANIMALS]
    info = probe(video)
    rows: list[dict[str, Any]] = []
    record = [o for o in ctx.objects if o.label in ANIMALS]
    for df in decode_frames(info, fps, side):
        t = round(df.t / cfg.object_step) * cfg.object_step
        scale = df.image.shape[1] / info.width
        boxes, scores = nanodet_cells(
            detector.heads(df.image), detector.size, (df.image.shape[1], df.image.shape[0])
        )
        boxes = boxes / scale  # full-resolution pixels, as the truth
        animal_score = scores[:, _ANIMAL_IDX].max(axis=1)
        animal_cls = _ANIMAL_IDX[scores[:, _ANIMAL_IDX].argmax(axis=1)]
        top_cls = scores.argmax(axis=1)
        for o in animals:
            tb = o.box_at(t)
            if tb is None or (o.visible_at(t) or 0.0) < cfg.min_visible:
                continue
            ious = _box_iou_many(tb, boxes)
            found = [
                r.id
                for r in record
                if (rb := track_box_at(r, t, max_gap)) is not None and iou(tb, rb) >= 0.5
            ]
            near = ious >= 0.5
            row: dict[str, Any] = {
                "clip": video.stem,
                "t": t,
                "frame_t": round(float(df.t), 3),
                "truth": o.id,
                "label": o.label,
                "photo": o.crop,
                "height_share": o.height_share,
                "moving": o.moving,
                "background": _background(truth, t),
                "found_by": found,
            }
            if near.any():
                k = int(np.flatnonzero(near)[animal_score[near].argmax()])
                row["best_animal"] = {
                    "score": round(float(animal_score[k]), 3),
                    "class": COCO_CLASSES[int(animal_cls[k])],
                    "iou": round(float(ious[k]), 3),
                    "top_class": COCO_CLASSES[int(top_cls[k])],
                    "top_score": round(float(scores[k].max()), 3),
                }
                j = int(np.flatnonzero(near)[scores[near].max(axis=1).argmax()])
                row["best_any"] = {
                    "score": round(float(scores[j].max()), 3),
                    "class": COCO_CLASSES[int(top_cls[j])],
                    "iou": round(float(ious[j]), 3),
                }
            sure = animal_score >= 0.1
            row["best_iou"] = round(float(ious[sure].max()), 3) if sure.any() else 0.0
            mid = (ious >= 0.3) & (ious < 0.5) & (animal_score >= threshold)
            row["geometry_box"] = (
                [round(float(v), 1) for v in boxes[np.flatnonzero(mid)[0]]] if mid.any() else None
            )
            row["truth_box"] = [round(float(v), 1) for v in tb]
            row["bucket"] = None if found else bucket(row, threshold, runner_up)
            rows.append(row)
    return rows


def _background(truth: Truth, t: float) -> str | None:
    return next((s.photo for s in truth.shots if s.start <= t < s.end), None)


def bucket(row: dict[str, Any], threshold: float, runner_up: bool) -> str:
    """The bucket of a missed sample's row (see the module docstring); `runner_up`: the detector
    proposes the animal family's best class where another class tops the cell."""
    best = row.get("best_animal")
    if best is None or best["score"] < _FLOOR:
        return "d_geometry" if row["geometry_box"] else "a_no_raw_box"
    if best["score"] < threshold:
        return "d_geometry" if row["geometry_box"] else "b_below_threshold"
    if best["top_class"] not in ANIMAL_LABELS and not runner_up:
        return "e_other_class_wins"
    return "c_lost_in_tracking"


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts per bucket, overall and by label, photo background, size and motion."""
    missed = [r for r in rows if r["bucket"]]
    out: dict[str, Any] = {
        "samples": len(rows),
        "found": len(rows) - len(missed),
        "missed": len(missed),
        "buckets": dict(Counter(r["bucket"] for r in missed).most_common()),
    }
    for key in ("label", "background", "height_share", "moving", "clip"):
        by: dict[str, Counter[str]] = defaultdict(Counter)
        for r in rows:
            by[str(r[key])][r["bucket"] or "found"] += 1
        out[f"by_{key}"] = {k: dict(v) for k, v in sorted(by.items())}
    wins = Counter(r["best_animal"]["top_class"] for r in missed
                   if r["bucket"] == "e_other_class_wins")  # fmt: skip
    out["other_class_that_wins"] = dict(wins.most_common())
    geo = [r for r in missed if r["bucket"] == "d_geometry"]
    if geo:
        # Does the detector box the animal systematically bigger/smaller than its opaque pixels?
        ratios = [
            (
                (g[2] - g[0]) / max(1e-6, b[2] - b[0]),
                (g[3] - g[1]) / max(1e-6, b[3] - b[1]),
            )
            for r in geo
            for g, b in [(r["geometry_box"], r["truth_box"])]
        ]
        out["geometry_width_height_ratio_median"] = [
            round(float(np.median([x[0] for x in ratios])), 3),
            round(float(np.median([x[1] for x in ratios])), 3),
        ]
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Make the records, diagnose every animal sample, print the summary, write the JSON."""
    ap = argparse.ArgumentParser(
        prog="python -m bench.fidelity.animal_misses", description=__doc__.splitlines()[0]
    )
    ap.add_argument("--suite", default="clip10:0,clip30:1,clip60:2")
    ap.add_argument("--profile", default="bench/fidelity/detect-only.yaml")
    ap.add_argument("--keep", type=Path, help="folder for videos, truths and records")
    ap.add_argument("--out", type=Path, default=RESULTS / "animal_misses.json")
    args = ap.parse_args(argv)
    from vidchat.kernel.models import resolve
    from vidchat.pipeline.profiles import load_profile

    t0 = time.perf_counter()
    profile = load_profile(args.profile)
    opts = DetectOptions(**(profile.perceivers.get("detect") or {}))
    # The score an animal box needs to start a track (family_birth when lower than family_conf).
    threshold = DetectPerceiver(opts).family_conf("animal")
    suite = parse_suite(args.suite)
    import tempfile

    with tempfile.TemporaryDirectory(prefix="vidchat-misses-") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        scores, _, _ = run_suite(suite, profile, work)
        detector = NanoDetONNX(str(resolve(opts.model).require()))
        rows: list[dict[str, Any]] = []
        for preset, seed in suite:
            name = f"{preset}-s{seed}-animals"
            rows += diagnose_clip(
                work / f"{name}.mp4",
                Truth.load(work / f"{name}.truth.json"),
                VideoContext.load(work / f"{name}.record.json"),
                detector,
                profile.sampling.fast_fps,
                profile.sampling.fast_max_side or 640,
                threshold,
                "animal" in opts.second_class,
            )
    summary = summarize(rows)
    summary["scorer_animal_recall"] = {
        s.video: (s.classes.get("animal").recall if s.classes.get("animal") else None)
        for s in scores
    }
    summary["largest_sample_vs_frame_gap_s"] = max(
        (abs(r["t"] - r["frame_t"]) for r in rows), default=0.0
    )
    print(json.dumps(summary, indent=1))
    report = {
        "profile": profile.name,
        "suite": args.suite,
        "family_threshold": threshold,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "seconds": round(time.perf_counter() - t0, 1),
        "summary": summary,
        "samples": rows,
    }
    write_results(args.out, report)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
