"""Video I/O: probe once with ffprobe, decode once with ffmpeg, extract audio once.

Decoding follows SlowFast-LLaVA's two rates. ffmpeg selects frames by their *presentation
timestamps* (the ``select`` filter with ``prev_selected_t``), so variable-frame-rate video keeps
true times, and ``showinfo`` reports each kept frame's ``pts_time`` on stderr, read in a thread.
Every selected frame feeds the fast stream (downscaled); a subset on a ~1 fps grid feeds the slow
stream at full resolution. Frames are streamed: at most a few are alive at any moment.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import re
import subprocess
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from orchestrator.errors import InputError
from orchestrator.record import VideoInfo

AUDIO_RATE = 16000


class Sampling(BaseModel):
    """How the shared decode samples the video (part of the cache key of frame perceivers)."""

    model_config = ConfigDict(extra="forbid")

    slow_fps: float = Field(1.0, gt=0, le=30, description="slow stream: full detail, ~1 fps")
    fast_fps: float = Field(4.0, gt=0, le=60, description="fast stream: tracking and motion")
    fast_max_side: int = Field(640, ge=64, description="fast frames are downscaled to this")
    slow_max_side: int | None = Field(
        None, ge=64, description="None keeps slow frames at full resolution"
    )
    stall_timeout_s: float = Field(120.0, gt=0, description="kill ffmpeg after this long idle")


# --------------------------------------------------------------------------------------- probe


def _ffprobe(path: Path) -> dict:
    import ffmpeg  # ffmpeg-python

    try:
        return ffmpeg.probe(str(path))
    except FileNotFoundError:
        raise InputError("ffprobe not found: install ffmpeg (apt-get install ffmpeg)") from None
    except ffmpeg.Error as e:
        err = (e.stderr or b"").decode("utf-8", "replace").strip().splitlines()
        last = err[-1] if err else "unknown error"
        last = last.split(": ", 1)[-1] if str(path) in last else last
        raise InputError(f"{path}: not a readable video ({last})") from None


def _rotation(stream: dict) -> int:
    """Clockwise degrees a player rotates the stored frames (0, 90, 180, 270)."""
    for sd in stream.get("side_data_list") or []:
        if "rotation" in sd:
            # ffprobe's display-matrix rotation is counter-clockwise.
            return round(-float(sd["rotation"])) % 360
    tag = (stream.get("tags") or {}).get("rotate")
    if tag:
        try:
            return int(tag) % 360
        except ValueError:
            return 0
    return 0


def _fraction(text: str | None) -> Fraction | None:
    if not text or text in ("0/0", "N/A"):
        return None
    try:
        f = Fraction(text)
    except (ValueError, ZeroDivisionError):
        return None
    return f if f > 0 else None


def _float(x: object) -> float | None:
    try:
        v = float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return v if v == v and v >= 0 else None  # NaN check without math import


def probe(path: str | os.PathLike[str], sha256: str | None = None) -> VideoInfo:
    """Facts about a video file; InputError (one line) when it is not a usable video."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file")
    if p.is_dir():
        raise InputError(f"{p}: is a directory, expected a video file")
    if not os.access(p, os.R_OK):
        raise InputError(f"{p}: permission denied (file is not readable)")
    size = p.stat().st_size
    if size == 0:
        raise InputError(f"{p}: empty file (0 bytes), expected a video")
    meta = _ffprobe(p)
    streams = meta.get("streams") or []
    videos = [
        s
        for s in streams
        if s.get("codec_type") == "video" and not (s.get("disposition") or {}).get("attached_pic")
    ]
    audios = [s for s in streams if s.get("codec_type") == "audio"]
    if not videos:
        what = "audio-only file" if audios else "no video or audio stream"
        raise InputError(f"{p}: no video stream ({what}); expected a video")
    v = videos[0]
    fmt = meta.get("format") or {}
    avg = _fraction(v.get("avg_frame_rate"))
    real = _fraction(v.get("r_frame_rate"))
    fps = avg or real or Fraction(25)
    duration = _float(fmt.get("duration")) or _float(v.get("duration")) or 0.0
    rotation = _rotation(v)
    w, h = int(v.get("width") or 0), int(v.get("height") or 0)
    if w <= 0 or h <= 0:
        raise InputError(f"{p}: video stream has no frame size (width={w}, height={h})")
    if rotation in (90, 270):
        w, h = h, w
    return VideoInfo(
        path=str(p.resolve()),
        sha256=sha256 or file_sha256(p),
        size_bytes=size,
        duration=duration,
        fps=f"{fps.numerator}/{fps.denominator}",
        width=w,
        height=h,
        rotation=rotation,
        codec=v.get("codec_name"),
        has_audio=bool(audios),
        audio_codec=audios[0].get("codec_name") if audios else None,
        # A stream whose average rate differs from its base rate has irregular frame intervals.
        variable_frame_rate=bool(avg and real and abs(float(avg) - float(real)) > 0.01),
        start_time=_float(fmt.get("start_time")) or 0.0,
    )


# Hashing a long video costs seconds; remember digests by (path, size, mtime).
_hash_lock = threading.Lock()


def _hash_index_path() -> Path:
    from orchestrator.models import cache_dir

    return cache_dir() / "hashes.jsonl"


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, memoized on disk by (real path, size, mtime)."""
    st = path.stat()
    key = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    index = _hash_index_path()
    with _hash_lock:
        if index.exists():
            try:
                for line in index.read_text(encoding="utf-8").splitlines()[-5000:]:
                    rec = json.loads(line)
                    if rec.get("k") == key:
                        return rec["sha256"]
            except (OSError, json.JSONDecodeError, KeyError, AttributeError):
                pass  # a damaged index is only a missed shortcut
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(8 << 20):
            h.update(chunk)
    digest = h.hexdigest()
    with _hash_lock:
        try:
            index.parent.mkdir(parents=True, exist_ok=True)
            with open(index, "a", encoding="utf-8") as f:
                f.write(json.dumps({"k": key, "sha256": digest}) + "\n")
        except OSError:
            pass  # read-only cache: hashing again next time is fine
    return digest


# -------------------------------------------------------------------------------------- decode


@dataclass(frozen=True)
class DecodedFrame:
    """A frame as decoded (before the slow/fast split): time and full-size RGB image."""

    t: float
    image: np.ndarray


_PTS_RE = re.compile(r"Parsed_showinfo.*?\bn:\s*(\d+).*?\bpts_time:\s*(-?[0-9.eE+-]+|nan)")


def _even(x: float) -> int:
    return max(2, round(x / 2) * 2)


def output_size(info: VideoInfo, max_side: int | None) -> tuple[int, int]:
    """Decode size (w, h) keeping aspect ratio, even numbers, no upscaling."""
    w, h = info.width, info.height
    if max_side is None or max(w, h) <= max_side:
        return w, h
    s = max_side / max(w, h)
    return _even(w * s), _even(h * s)


def decode_frames(
    info: VideoInfo,
    fps: float,
    max_side: int | None = None,
    stall_timeout_s: float = 120.0,
    start: float = 0.0,
    end: float | None = None,
) -> Iterator[DecodedFrame]:
    """Decode frames at most `fps` per second (chosen by their PTS), at most `max_side` pixels.

    `start`/`end` (seconds) decode only that window: ffmpeg seeks to `start` before reading
    (fast on long videos) and reads up to `end`; frame times stay times of the whole video.

    One ffmpeg process; raw RGB on stdout, each kept frame's pts_time on stderr (showinfo).
    A truncated file yields the frames that decode; a file with none raises InputError.
    """
    w, h = output_size(info, max_side)
    # Keep the first frame of every 1/fps bucket of presentation time: exactly `fps` frames a
    # second on average whatever the source rate, and true times for variable frame rate.
    # (+1e-4 guards against 0.12*25 = 2.9999… dropping frames when fps equals the source rate.)
    f = f"{fps:.6f}"
    select = (
        f"select='isnan(prev_selected_t)+gt(floor(t*{f}+1e-4)\\,floor(prev_selected_t*{f}+1e-4))'"
    )
    vf = f"{select},showinfo,scale={w}:{h}:flags=area,format=rgb24"
    cmd = [
        "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "info",
        *_window_args(start, end),
        "-i", info.path, "-map", "0:v:0", "-an", "-sn", "-dn",
        "-vf", vf, "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1",
    ]  # fmt: skip
    try:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            bufsize=0,
        )
    except FileNotFoundError:
        raise InputError("ffmpeg not found: install ffmpeg (apt-get install ffmpeg)") from None
    times: queue.Queue[float | None] = queue.Queue()
    tail: deque[str] = deque(maxlen=8)
    last_activity = [time.monotonic()]

    def read_stderr() -> None:
        assert proc.stderr is not None
        for raw in iter(proc.stderr.readline, b""):
            line = raw.decode("utf-8", "replace")
            last_activity[0] = time.monotonic()
            m = _PTS_RE.search(line)
            if m:
                t = float(m.group(2)) if m.group(2) != "nan" else float("nan")
                times.put(t)
            elif "showinfo" not in line:
                tail.append(line.strip())
        times.put(None)

    def watchdog() -> None:
        # A broken file can make ffmpeg spin without output; kill it rather than hang the job.
        while proc.poll() is None:
            if time.monotonic() - last_activity[0] > stall_timeout_s:
                tail.append(f"no progress for {stall_timeout_s:.0f} s, decoding stopped")
                proc.kill()
                return
            time.sleep(0.5)

    threading.Thread(target=read_stderr, daemon=True, name="ffmpeg-stderr").start()
    threading.Thread(target=watchdog, daemon=True, name="ffmpeg-watchdog").start()
    frame_bytes = w * h * 3
    n = 0
    last_t = -1.0
    assert proc.stdout is not None
    try:
        while True:
            buf = _read_exact(proc.stdout, frame_bytes)
            if buf is None:
                break
            last_activity[0] = time.monotonic()
            try:
                t = times.get(timeout=stall_timeout_s)
            except queue.Empty:
                t = None
            if t is None or t != t:  # missing or NaN pts: continue the grid
                t = last_t + 1.0 / fps if last_t >= 0 else 0.0
            t = max(t - 0.0, 0.0)
            if t <= last_t:  # keep times strictly increasing (broken timestamps)
                t = last_t + 1e-3
            last_t = t
            n += 1
            yield DecodedFrame(t=t + start, image=np.frombuffer(buf, np.uint8).reshape(h, w, 3))
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    if n == 0:
        why = next((ln for ln in reversed(tail) if ln and not ln.startswith("[")), None)
        why = why or (tail[-1] if tail else f"ffmpeg exit code {proc.returncode}")
        raise InputError(f"{info.path}: no frame could be decoded ({why})")


def _window_args(start: float, end: float | None) -> list[str]:
    """Input options that read only [start, end): after an input seek ffmpeg's times restart at
    0, so `decode_frames` adds `start` back."""
    if start < 0 or (end is not None and end <= start):
        raise ValueError(f"decode window must have 0 <= start < end, got {start}..{end}")
    args = ["-ss", f"{start:.6f}"] if start > 0 else []
    return args + (["-t", f"{end - start:.6f}"] if end is not None else [])


def _read_exact(stream, n: int) -> bytes | None:
    """Read exactly n bytes, or None at end of stream (a partial last frame is dropped)."""
    chunks = []
    got = 0
    while got < n:
        b = stream.read(n - got)
        if not b:
            return None
        chunks.append(b)
        got += len(b)
    return b"".join(chunks) if len(chunks) > 1 else chunks[0]


def load_audio(info: VideoInfo, start: float = 0.0, end: float | None = None) -> np.ndarray | None:
    """The first audio stream as 16 kHz mono float32 in [-1, 1]; None when there is none.

    `start`/`end` (seconds) read only that window (sample 0 is at `start`)."""
    if not info.has_audio:
        return None
    cmd = [
        "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error",
        *_window_args(start, end),
        "-i", info.path,
        "-map", "0:a:0", "-vn", "-ac", "1", "-ar", str(AUDIO_RATE), "-f", "f32le", "pipe:1",
    ]  # fmt: skip
    try:
        out = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, check=False)
    except FileNotFoundError:
        raise InputError("ffmpeg not found: install ffmpeg (apt-get install ffmpeg)") from None
    if out.returncode != 0 and not out.stdout:
        err = out.stderr.decode("utf-8", "replace").strip().splitlines()
        raise InputError(f"{info.path}: audio could not be decoded ({err[-1] if err else '?'})")
    n = len(out.stdout) // 4
    return np.frombuffer(out.stdout[: n * 4], np.float32).copy()
