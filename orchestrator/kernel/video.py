"""Video I/O: probe once with ffprobe, decode once with ffmpeg, extract audio once.

Decoding follows SlowFast-LLaVA's two rates. ffmpeg selects frames by their *presentation
timestamps* (the ``select`` filter with ``prev_selected_t``), so variable-frame-rate video keeps
true times, and ``showinfo`` reports each kept frame's ``pts_time`` on stderr, read in a thread.
Every selected frame feeds the fast stream (downscaled); a subset on a ~1 fps grid feeds the slow
stream at full resolution up to `Sampling.slow_max_pixels` (so an 8K or 12K video costs what a 4K
one does). Frames are streamed: at most a few are alive at any moment.

File names are data: every path reaches ffmpeg and ffprobe as ``file:/absolute/path`` after
``-i`` (`ffmpeg_url`), so a name starting with ``-`` is never read as an option and a name like
``concat:a|b`` or ``http:x`` never selects a protocol. Times are seconds from the first presented
video frame; the displayed size follows the sample aspect ratio.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import queue
import re
import stat
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

from vidchat.kernel.errors import InputError
from vidchat.kernel.record import Provenance, VideoContext, VideoInfo

AUDIO_RATE = 16000
SLOW_MAX_PIXELS = 3840 * 2160  # the slow stream's default bound: 4K UHD, 25 MB of RGB a frame
# ffmpeg's own decoder holds about one frame per thread; above this it decodes with fewer
# threads so a 12K frame (226 MB of YUV) is not held 16 times over.
DECODER_MEMORY_BYTES = 768 << 20
# ffprobe format names of single pictures (a PNG or JPEG renamed .mp4 is not a video).
_IMAGE_FORMATS = re.compile(r"(^|,)(image2|[a-z0-9]+_pipe)(,|$)")


class Sampling(BaseModel):
    """How the shared decode samples the video (part of the cache key of frame perceivers)."""

    model_config = ConfigDict(extra="forbid")

    slow_fps: float = Field(1.0, gt=0, le=30, description="slow stream: full detail, ~1 fps")
    fast_fps: float = Field(4.0, gt=0, le=60, description="fast stream: tracking and motion")
    fast_max_side: int = Field(640, ge=64, description="fast frames are downscaled to this")
    slow_max_side: int | None = Field(
        None, ge=64, description="None keeps slow frames at full resolution (up to max pixels)"
    )
    slow_max_pixels: int = Field(
        SLOW_MAX_PIXELS,
        ge=64 * 64,
        description="slow frames larger than this many pixels are downscaled (memory bound: an "
        "8K or 12K video decodes like a 4K one); perceivers that need detail crop from them",
    )
    audio_track: int | None = Field(
        None, ge=0, description="audio track to use (0 = first); None chooses one on purpose"
    )
    stall_timeout_s: float = Field(120.0, gt=0, description="kill ffmpeg after this long idle")


# --------------------------------------------------------------------------------------- probe


def shown(path: str | os.PathLike[str]) -> str:
    """A path for a one-line message: control characters (a newline in a file name) escaped."""
    text = os.fspath(path)
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def ffmpeg_url(path: str | os.PathLike[str]) -> str:
    """`path` as ffmpeg/ffprobe must receive it: ``file:`` + the absolute path.

    The absolute path cannot start with ``-`` (never an option), and the ``file:`` protocol
    makes a name such as ``concat:x|y``, ``http:…`` or ``subfile,,…`` a plain file name.
    """
    return "file:" + os.path.abspath(os.fspath(path))


def _run_ffprobe(args: list[str], path: Path) -> subprocess.CompletedProcess[bytes]:
    cmd = ["ffprobe", "-v", "error", *args, "-i", ffmpeg_url(path)]
    try:
        return subprocess.run(
            cmd, stdin=subprocess.DEVNULL, capture_output=True, check=False, timeout=600
        )
    except FileNotFoundError:
        raise InputError("ffprobe not found: install ffmpeg (apt-get install ffmpeg)") from None
    except subprocess.TimeoutExpired:
        why = "no answer from ffprobe in 600 s"
        raise InputError(f"{shown(path)}: not a readable video ({why})") from None


def _ffprobe(path: Path) -> dict:
    out = _run_ffprobe(["-print_format", "json", "-show_format", "-show_streams"], path)
    if out.returncode != 0:
        # ffprobe prefixes the URL (which may hold a newline); the user knows which file it is.
        text = out.stderr.decode("utf-8", "replace").replace(ffmpeg_url(path) + ": ", "")
        err = text.strip().splitlines()
        last = err[-1] if err else "unknown error"
        raise InputError(f"{shown(path)}: not a readable video ({last})")
    try:
        return json.loads(out.stdout.decode("utf-8", "replace"))
    except json.JSONDecodeError:
        raise InputError(f"{shown(path)}: not a readable video (ffprobe printed no JSON)") from None


def _packet_span(path: Path) -> tuple[float, float] | None:
    """(first, last end) presentation time of the first video stream's packets, read from the
    packets themselves (no decode): for files whose headers give no duration (a Matroska or
    MPEG-TS file still being written, or written with shifted timestamps)."""
    out = _run_ffprobe(
        ["-select_streams", "v:0", "-show_entries", "packet=pts_time,duration_time",
         "-of", "csv=p=0"], path,
    )  # fmt: skip
    first = end = None
    for line in out.stdout.decode("ascii", "replace").splitlines():
        parts = line.strip().rstrip(",").split(",")
        t = _signed(parts[0]) if parts else None
        if t is None:
            continue
        d = _float(parts[1]) if len(parts) > 1 else None
        first = t if first is None else min(first, t)
        end = max(end if end is not None else t, t + (d or 0.0))
    return (first, end) if first is not None and end is not None else None


def _number(x: object) -> float | None:
    """ffprobe's JSON value (a number or its text) as a float; None if it is neither, or NaN."""
    if not isinstance(x, (str, int, float)):
        return None
    try:
        v = float(x)
    except ValueError:
        return None
    return v if v == v else None  # NaN check without math import


def _signed(x: object) -> float | None:
    v = _number(x)
    return v if v is not None and abs(v) != float("inf") else None


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
    v = _number(x)
    return v if v is not None and v >= 0 else None


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "a special file"


def check_video_file(path: str | os.PathLike[str]) -> os.stat_result:
    """The file's stat when it is an existing, readable, non-empty regular file; else InputError.

    A FIFO, ``/dev/zero`` or ``/dev/urandom`` is refused here, before any tool opens it (reading
    one would block or never end).
    """
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise InputError(f"{shown(p)}: no such file") from None
    except NotADirectoryError:
        raise InputError(f"{shown(p)}: no such file (a parent is not a folder)") from None
    except OSError as e:
        raise InputError(f"{shown(p)}: cannot be read ({e.strerror})") from None
    if stat.S_ISDIR(st.st_mode):
        raise InputError(f"{shown(p)}: is a directory, expected a video file")
    if not stat.S_ISREG(st.st_mode):
        kind = _kind(st.st_mode)
        raise InputError(f"{shown(p)}: not a regular file: {kind}, expected a video file")
    if not os.access(p, os.R_OK):
        raise InputError(f"{shown(p)}: permission denied (file is not readable)")
    if st.st_size == 0:
        raise InputError(f"{shown(p)}: empty file (0 bytes), expected a video")
    return st


def _sar(stream: dict) -> Fraction | None:
    text = str(stream.get("sample_aspect_ratio") or "").replace(":", "/")
    f = _fraction(text)
    # Absurd ratios are broken headers, not anamorphic video.
    return f if f is not None and f != 1 and Fraction(1, 8) <= f <= 8 else None


@functools.lru_cache(maxsize=64)
def _speech_share(path: str, size: int, mtime_ns: int, index: int, seconds: float) -> float:
    return _audio_has_speech(Path(path), index, seconds)


def _audio_has_speech(path: Path, index: int, seconds: float = 300.0) -> float:
    """How much of the first `seconds` of audio track `index` looks like speech (0..1).

    Silero VAD (inside faster-whisper) when it is installed, else the share of 30 ms frames
    louder than -45 dBFS (a loudness proxy, not speech detection: said so in the record's note).
    """
    audio = _decode_audio(path, index, 0.0, seconds)
    if audio is None or audio.size < AUDIO_RATE // 10:
        return 0.0
    try:
        from faster_whisper.vad import VadOptions, get_speech_timestamps

        spans = get_speech_timestamps(audio, VadOptions())
        return sum(s["end"] - s["start"] for s in spans) / audio.size
    except Exception:  # not installed or failed: fall back on loudness
        n = AUDIO_RATE * 30 // 1000
        frames = audio[: audio.size // n * n].reshape(-1, n)
        rms = np.sqrt((frames.astype(np.float64) ** 2).mean(axis=1) + 1e-12)
        return float((20 * np.log10(rms) > -45).mean())


def _choose_audio(p: Path, audios: list[dict], requested: int | None) -> tuple[int, str]:
    """(position among the audio tracks, why): the requested track, else the one marked default
    when exactly one is, else the first with speech, else the first."""
    if requested is not None:
        if requested >= len(audios):
            raise InputError(
                f"{shown(p)}: audio track {requested} requested, but the file has "
                f"{len(audios)} audio track(s) (0..{len(audios) - 1})"
            )
        return requested, "chosen by the user"
    if len(audios) == 1:
        return 0, "the only audio track"
    defaults = [i for i, a in enumerate(audios) if (a.get("disposition") or {}).get("default")]
    if len(defaults) == 1:
        return defaults[0], "marked default in the file"
    candidates = defaults or list(range(len(audios)))
    st = p.stat()
    for i in candidates:  # remembered per file version: probe runs more than once per video
        if _speech_share(str(p.resolve()), st.st_size, st.st_mtime_ns, i, 300.0) >= 0.02:
            return i, "the first track with speech"
    return candidates[0], "the first track (no track has detectable speech)"


def _track_label(i: int, a: dict) -> str:
    tags = a.get("tags") or {}
    bits = [b for b in (tags.get("language"), tags.get("title"), a.get("codec_name")) if b]
    return f"{i} ({', '.join(bits)})" if bits else str(i)


def probe(
    path: str | os.PathLike[str], sha256: str | None = None, *, audio_track: int | None = None
) -> VideoInfo:
    """Facts about a video file; InputError (one line) when it is not a usable video.

    `audio_track` picks the audio track (0 = first); by default one is chosen on purpose (see
    `_choose_audio`) and the others are noted in `VideoInfo.audio_note`.
    """
    p = Path(path)
    st = check_video_file(p)
    size = st.st_size
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
        raise InputError(f"{shown(p)}: no video stream ({what}); expected a video")
    v = videos[0]
    fmt = meta.get("format") or {}
    if _IMAGE_FORMATS.search(str(fmt.get("format_name") or "")):
        raise InputError(
            f"{shown(p)}: a still image ({v.get('codec_name') or 'picture'}), not a video; "
            "vidchat reads video files"
        )
    avg = _fraction(v.get("avg_frame_rate"))
    real = _fraction(v.get("r_frame_rate"))
    fps = avg or real or Fraction(25)
    # Times in the record count from the first presented video frame. ffmpeg's own times count
    # from the file's start (the earliest stream), so the video's offset is kept to subtract.
    fmt_start = _signed(fmt.get("start_time")) or 0.0
    v_start = _signed(v.get("start_time"))
    if v_start is None:
        v_start = fmt_start
    duration = _float(v.get("duration"))
    fmt_duration = _float(fmt.get("duration"))
    if duration is None and (fmt_duration is None or abs(v_start) + abs(fmt_start) > 1e-3):
        # No stream duration (Matroska, WebM) and the container's is missing (a file still being
        # written) or ambiguous (with shifted timestamps Matroska gives the end time, not the
        # length): measure the video's span from its packets (no decoding).
        span = _packet_span(p)
        if span is not None:
            v_start, end = span
            duration = max(0.0, end - v_start)
    if duration is None and fmt_duration is not None:
        duration = max(0.0, fmt_duration - (v_start - fmt_start))
    duration = duration or 0.0
    rotation = _rotation(v)
    w, h = int(v.get("width") or 0), int(v.get("height") or 0)
    if w <= 0 or h <= 0:
        raise InputError(f"{shown(p)}: video stream has no frame size (width={w}, height={h})")
    sar = _sar(v)
    if sar is not None:  # anamorphic: stored pixels are not square; show what a player shows
        w = max(2, round(w * sar / 2) * 2)
    if rotation in (90, 270):
        w, h = h, w
    audio_index: int | None = None
    audio_note = None
    audio_start = 0.0
    if audios:
        audio_index, why = _choose_audio(p, audios, audio_track)
        a = audios[audio_index]
        a_start = _signed(a.get("start_time"))
        audio_start = (a_start if a_start is not None else fmt_start) - v_start
        others = [_track_label(i, s) for i, s in enumerate(audios) if i != audio_index]
        audio_note = f"audio track {_track_label(audio_index, a)}: {why}" + (
            f"; other audio tracks: {', '.join(others)} (choose with --audio-track N)"
            if others
            else ""
        )
    elif audio_track is not None:
        raise InputError(
            f"{shown(p)}: audio track {audio_track} requested, but the file has no audio"
        )
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
        audio_codec=audios[audio_index].get("codec_name") if audio_index is not None else None,
        # A stream whose average rate differs from its base rate has irregular frame intervals.
        variable_frame_rate=bool(avg and real and abs(float(avg) - float(real)) > 0.01),
        start_time=v_start,
        sample_aspect_ratio=f"{sar.numerator}:{sar.denominator}" if sar is not None else None,
        audio_track=audio_index,
        audio_tracks=len(audios),
        audio_note=audio_note,
        audio_offset=round(audio_start, 6),
        video_offset=round(v_start - fmt_start, 6),
    )


# Hashing a long video costs seconds; remember digests by (path, size, mtime).
_hash_lock = threading.Lock()


def _hash_index_path() -> Path:
    from vidchat.kernel.models import cache_dir

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


def output_size(
    info: VideoInfo, max_side: int | None, max_pixels: int | None = None
) -> tuple[int, int]:
    """Decode size (w, h) keeping aspect ratio, no upscaling: the longer side at most
    `max_side` and the area at most `max_pixels` (when given); even numbers when scaled."""
    w, h = info.width, info.height
    s = 1.0
    if max_side is not None and max(w, h) > max_side:
        s = max_side / max(w, h)
    if max_pixels is not None and w * h * s * s > max_pixels:
        s = (max_pixels / (w * h)) ** 0.5
    if s >= 1.0:
        return w, h
    return _even(w * s), _even(h * s)


def decoder_threads(info: VideoInfo) -> int | None:
    """Threads for ffmpeg's decoder: None (ffmpeg's choice) unless frames are so large that one
    per thread would exceed `DECODER_MEMORY_BYTES` (a 12K frame is 226 MB of YUV 4:2:0)."""
    frame = info.width * info.height * 3 // 2
    cpus = os.cpu_count() or 1
    # frame threading holds about two frames per thread (reference + output)
    fit = DECODER_MEMORY_BYTES // max(1, 2 * frame)
    return None if fit >= cpus else max(1, int(fit))


@dataclass
class DecodeStats:
    """What one decode saw besides frames: decoder errors (corrupt data) and the last frame."""

    errors: int = 0
    examples: list[str] | None = None
    frames: int = 0
    last_t: float = 0.0

    def note(self, line: str) -> None:
        self.errors += 1
        if self.examples is None:
            self.examples = []
        if len(self.examples) < 3:
            # "[h264 @ 0x55d…] error while decoding MB 14 10" -> "h264: error while decoding …"
            self.examples.append(re.sub(r"^\[(\S+) @ 0x[0-9a-f]+\]\s*", r"\1: ", line)[:160])

    def warning(self) -> str | None:
        """One line for provenance, or None when the decode was clean."""
        if not self.errors:
            return None
        ex = f" (e.g. {self.examples[0]})" if self.examples else ""
        return (
            f"decode: {self.errors} decoder error line(s); the file has corrupted data and some "
            f"frames may be damaged or missing{ex}"
        )


# Lines of ffmpeg's decoders/demuxers that mean damaged data (not showinfo, not notices).
_DECODE_ERROR_RE = re.compile(
    r"error|corrupt|concealing|invalid|missing|non-existing|damaged|truncat|partial file",
    re.IGNORECASE,
)


def decode_frames(
    info: VideoInfo,
    fps: float,
    max_side: int | None = None,
    stall_timeout_s: float = 120.0,
    *,
    start: float = 0.0,
    end: float | None = None,
    max_pixels: int | None = None,
    stats: DecodeStats | None = None,
) -> Iterator[DecodedFrame]:
    """Decode frames at most `fps` per second (chosen by their PTS), at most `max_side` pixels
    on the longer side and `max_pixels` in area; times from the first presented frame.

    `start`/`end` (seconds) decode only that window: ffmpeg seeks to `start` before reading
    (fast on long videos) and reads up to `end`; frame times stay times of the whole video.

    One ffmpeg process; raw RGB on stdout, each kept frame's pts_time on stderr (showinfo).
    A truncated file yields the frames that decode; a file with none raises InputError.
    Decoder errors (corrupt data) are counted in `stats` when given.
    """
    w, h = output_size(info, max_side, max_pixels)
    stats = stats if stats is not None else DecodeStats()
    threads = decoder_threads(info)
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
        *(["-threads", str(threads)] if threads else []),
        "-i", ffmpeg_url(info.path), "-map", "0:v:0", "-an", "-sn", "-dn",
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
                if line.startswith("[") and _DECODE_ERROR_RE.search(line):
                    stats.note(line.strip())
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
            # Times count from the first presented frame; after an input seek (a window)
            # ffmpeg's times restart at the seek point instead.
            t = t + start if start > 0 else max(t - info.video_offset, 0.0)
            if t <= last_t:  # keep times strictly increasing (broken timestamps)
                t = last_t + 1e-3
            last_t = t
            n += 1
            stats.frames, stats.last_t = n, t
            yield DecodedFrame(t=t, image=np.frombuffer(buf, np.uint8).reshape(h, w, 3))
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    if n == 0:
        why = next((ln for ln in reversed(tail) if ln and not ln.startswith("[")), None)
        why = why or (tail[-1] if tail else f"ffmpeg exit code {proc.returncode}")
        raise InputError(f"{shown(info.path)}: no frame could be decoded ({why})")


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


def _decode_audio(
    path: str | Path, index: int, start: float = 0.0, end: float | None = None
) -> np.ndarray | None:
    cmd = [
        "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error",
        *_window_args(start, end),
        "-i", ffmpeg_url(path),
        "-map", f"0:a:{index}", "-vn", "-ac", "1", "-ar", str(AUDIO_RATE), "-f", "f32le", "pipe:1",
    ]  # fmt: skip
    try:
        out = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, check=False)
    except FileNotFoundError:
        raise InputError("ffmpeg not found: install ffmpeg (apt-get install ffmpeg)") from None
    if out.returncode != 0 and not out.stdout:
        err = out.stderr.decode("utf-8", "replace").strip().splitlines()
        raise InputError(f"{shown(path)}: audio could not be decoded ({err[-1] if err else '?'})")
    n = len(out.stdout) // 4
    return np.frombuffer(out.stdout[: n * 4], np.float32).copy()


def load_audio(info: VideoInfo, start: float = 0.0, end: float | None = None) -> np.ndarray | None:
    """The chosen audio track (`VideoInfo.audio_track`) as 16 kHz mono float32 in [-1, 1],
    aligned to the video's first presented frame (sample 0 is time 0: audio that starts later
    is preceded by silence, audio before the first frame is cut); None when there is none.

    `start`/`end` (seconds of video time) return only that window (sample 0 is at `start`)."""
    if not info.has_audio:
        return None
    windowed = start > 0 or end is not None
    if windowed and info.audio_offset == 0 and info.video_offset == 0:
        # Streams start together: seek in ffmpeg instead of decoding the whole track.
        return _decode_audio(info.path, info.audio_track or 0, start, end)
    audio = _decode_audio(info.path, info.audio_track or 0)
    if audio is None:
        return None
    shift = round(info.audio_offset * AUDIO_RATE)
    if shift > 0:
        audio = np.concatenate([np.zeros(shift, np.float32), audio])
    elif shift < 0:
        audio = audio[-shift:].copy()
    if windowed:  # offset streams: aligned above on the whole track, then cut to the window
        a = round(start * AUDIO_RATE)
        b = None if end is None else round(end * AUDIO_RATE)
        audio = audio[a:b].copy()
    return audio


def fit_times(ctx: VideoContext, provenance: dict[str, Provenance]) -> None:
    """Keep every observation inside [0, duration]: the record's times count from the first
    presented frame and end with the video. An observation more than half a second outside
    (a perceiver's bug or a lying header) is clamped and its perceiver gets a warning."""
    d = ctx.video.duration
    if d <= 0:
        return
    far: dict[str, int] = {}

    def clamp(t: float, source: str) -> float:
        if t < -0.5 or t > d + 0.5:
            far[source] = far.get(source, 0) + 1
        return min(max(t, 0.0), d)

    for o in ctx.objects:
        src = o.source
        o.first_seen, o.last_seen = clamp(o.first_seen, src), clamp(o.last_seen, src)
        for pt in o.trajectory:
            pt.t = clamp(pt.t, src)
    for seg in ctx.speech:
        seg.start, seg.end = clamp(seg.start, seg.source), clamp(seg.end, seg.source)
        for w in seg.words or []:
            w.start, w.end = clamp(w.start, seg.source), clamp(w.end, seg.source)
    for e in ctx.events:
        e.start, e.end = clamp(e.start, e.source), clamp(e.end, e.source)
    for source, n in far.items():
        prov = provenance.get(source)
        if prov is not None:
            prov.warnings.append(
                f"{n} time(s) outside the video's 0..{d:.2f} s were clamped into it"
            )
