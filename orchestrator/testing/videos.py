"""Awkward and synthetic video files for tests, made with ffmpeg's lavfi sources in a few tenths
of a second each.

Every generator takes a destination folder and returns the path it made (created afresh each
call). `AWKWARD` maps a name to each generator with that signature, so a test can run the whole
pipeline over every awkward input::

    @pytest.mark.parametrize("name", sorted(AWKWARD))
    def test_pipeline_survives(name, tmp_path):
        path = AWKWARD[name](tmp_path)
        ...

Each generator's docstring says what the file is and what a reader should make of it.
`decode_frames` turns a video into `Frame`s the way the pipeline's fast/slow streams are built
(first frame of every 1/fps bucket of presentation time, real timestamps), for perceiver tests.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import struct
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from vidchat.perceivers.base import Frame

__all__ = [
    "AWKWARD",
    "AWKWARD_NAMES",
    "COLOR_PATTERN_QUADRANTS",
    "HUGE_DURATION_UNITS",
    "SHOT_CUT_TIMES",
    "SPECIAL_FILES",
    "X264",
    "anamorphic",
    "audio_only",
    "color_pattern",
    "corrupt_middle",
    "decode_frames",
    "directory",
    "ffmpeg",
    "ffprobe",
    "frame_times",
    "growing_mkv",
    "huge_12k",
    "huge_header",
    "late_audio",
    "long_sparse",
    "named",
    "negative_start_mkv",
    "no_audio",
    "odd_size",
    "png_as_mp4",
    "rotated_90",
    "second_track_speech",
    "shot_cuts",
    "single_frame",
    "ten_bit",
    "text_as_mp4",
    "truncated_mp4",
    "truncated_no_index",
    "unicode_name",
    "unreadable",
    "vfr",
    "zero_bytes",
]

# x264 settings shared by the generators: fastest preset, one thread (the CI box has 2 cores
# shared with other jobs, and these clips are tiny).
_X264 = ["-c:v", "libx264", "-preset", "ultrafast", "-threads", "1"]


class FFmpegError(RuntimeError):
    """ffmpeg or ffprobe failed; the message carries the command and the end of its stderr."""


def _run(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
        raise FFmpegError(f"{' '.join(cmd)} exited {proc.returncode}:\n{tail}")
    return proc


def _ffmpeg(*args: str) -> None:
    _run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args])


# For tests that encode clips of their own the way the generators do.
X264 = _X264


def ffmpeg(*args: str) -> None:
    """Run ffmpeg quietly on `args` (outputs overwritten); FFmpegError with its stderr if it
    fails."""
    _ffmpeg(*args)


def _fresh(dest: Path, name: str) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / name
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.chmod(0o644)
        path.unlink()
    return path


def ffprobe(path: Path, *, frames: bool = False) -> dict[str, Any]:
    """ffprobe's JSON for `path`: format and streams, plus per-frame pts of the first video
    stream when `frames` is set."""
    cmd = ["ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams"]
    if frames:
        cmd += ["-select_streams", "v:0", "-show_entries", "frame=pts_time"]
    return json.loads(_run([*cmd, str(path)]).stdout)


def frame_times(path: Path) -> list[float]:
    """Presentation times (s) of every frame of the first video stream, in decode order."""
    frames = ffprobe(path, frames=True).get("frames", [])
    return [float(f["pts_time"]) for f in frames if f.get("pts_time") not in (None, "N/A")]


# ------------------------------------------------------------------------------ bad inputs


def zero_bytes(dest: Path) -> Path:
    """An empty file named like a video: probing must fail with a clear input error."""
    path = _fresh(dest, "empty.mp4")
    path.write_bytes(b"")
    return path


def text_as_mp4(dest: Path) -> Path:
    """A plain text file with an .mp4 name: not a video at all."""
    path = _fresh(dest, "notes.mp4")
    path.write_text("These are meeting notes, not a video.\n" * 20, encoding="utf-8")
    return path


def _small_mp4(path: Path, seconds: float = 2.0, *, faststart: bool) -> Path:
    """A real 160x96 10 fps h264 + aac mp4 (the source of the truncated fixtures)."""
    flags = ["-movflags", "+faststart"] if faststart else []
    _ffmpeg(
        "-f", "lavfi", "-i", f"testsrc=s=160x96:r=10:d={seconds}",
        "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=16000:d={seconds}",
        *_X264, "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", *flags, str(path),
    )  # fmt: skip
    return path


def truncated_mp4(dest: Path) -> Path:
    """A real 2 s mp4 whose index (moov) is at the front, cut in half: the header still says
    2 s, but only the first ~half of the frames decode (ffmpeg reports 'partial file'). A reader
    should keep what decodes rather than fail."""
    path = _fresh(dest, "truncated.mp4")
    whole = _small_mp4(dest / ".whole_faststart.mp4", faststart=True)
    data = whole.read_bytes()
    whole.unlink()
    path.write_bytes(data[: len(data) // 2])
    return path


def truncated_no_index(dest: Path) -> Path:
    """A real mp4 with its index (moov) at the end, cut in half, as an interrupted download
    leaves it: no 'moov' atom, so nothing at all can be read (an input error, not a crash)."""
    path = _fresh(dest, "truncated_no_index.mp4")
    whole = _small_mp4(dest / ".whole.mp4", faststart=False)
    data = whole.read_bytes()
    whole.unlink()
    path.write_bytes(data[: len(data) // 2])
    return path


def audio_only(dest: Path) -> Path:
    """An mp4 holding 1.5 s of AAC audio and no video stream: the video perceivers have nothing
    to see, ASR still has audio."""
    path = _fresh(dest, "audio_only.mp4")
    _ffmpeg(
        "-f", "lavfi", "-i", "sine=frequency=330:sample_rate=16000:d=1.5",
        "-c:a", "aac", str(path),
    )  # fmt: skip
    return path


def no_audio(dest: Path) -> Path:
    """A 2 s 160x96 10 fps h264 video without an audio stream."""
    path = _fresh(dest, "no_audio.mp4")
    _ffmpeg(
        "-f", "lavfi", "-i", "testsrc=s=160x96:r=10:d=2", *_X264, "-pix_fmt", "yuv420p", str(path)
    )
    return path


def single_frame(dest: Path) -> Path:
    """A video of exactly one frame (duration ~0.04 s): every stream has one frame or none."""
    path = _fresh(dest, "single_frame.mp4")
    _ffmpeg(
        "-f", "lavfi", "-i", "testsrc=s=160x96:r=25",
        "-frames:v", "1", *_X264, "-pix_fmt", "yuv420p", str(path),
    )  # fmt: skip
    return path


def vfr(dest: Path) -> Path:
    """3 s of variable frame rate: 5 fps for [0, 1), 25 fps for [1, 2), 12.5 fps for [2, 3).
    Frame intervals are 0.2, 0.04 and 0.08 s; a reader that assumes a constant rate gets the
    times wrong."""
    path = _fresh(dest, "vfr.mp4")
    # Drop frames from a 25 fps source at a rate that changes each second, keeping each kept
    # frame's own timestamp (-fps_mode vfr), so the file's frame intervals really differ.
    keep = "if(lt(t\\,1)\\,not(mod(n\\,5))\\,if(lt(t\\,2)\\,1\\,not(mod(n\\,2))))"
    _ffmpeg(
        "-f", "lavfi", "-i", "testsrc=s=160x96:r=25:d=3",
        "-vf", f"select='{keep}'", "-fps_mode", "vfr", *_X264, "-pix_fmt", "yuv420p", str(path),
    )  # fmt: skip
    return path


def rotated_90(dest: Path) -> Path:
    """160x96 stored frames with a 90° display-matrix rotation: players show it 96x160."""
    path = _fresh(dest, "rotated_90.mp4")
    plain = dest / ".unrotated.mp4"
    _ffmpeg(
        "-f", "lavfi", "-i", "testsrc=s=160x96:r=10:d=1", *_X264, "-pix_fmt", "yuv420p", str(plain)
    )
    # ffmpeg < 6 writes the display matrix from the 'rotate' tag on a stream copy; ffmpeg >= 6
    # ignores that tag and takes the -display_rotation input option instead.
    try:
        _ffmpeg("-display_rotation:v:0", "90", "-i", str(plain), "-c", "copy", str(path))
    except FFmpegError:
        _ffmpeg("-i", str(plain), "-c", "copy", "-metadata:s:v:0", "rotate=90", str(path))
    plain.unlink()
    return path


def odd_size(dest: Path) -> Path:
    """333x199 (odd width and height) in yuv444p: 4:2:0 cannot hold odd sizes, and scalers
    that assume even sizes break on it."""
    path = _fresh(dest, "odd_size.mp4")
    _ffmpeg(
        "-f", "lavfi", "-i", "testsrc=s=333x199:r=10:d=1", *_X264, "-pix_fmt", "yuv444p", str(path)
    )
    return path


def ten_bit(dest: Path) -> Path:
    """10-bit 4:2:0 h264 (High 10, yuv420p10le): decoding to 8-bit RGB needs a conversion."""
    path = _fresh(dest, "ten_bit.mp4")
    _ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc=s=160x96:r=10:d=1",
        *_X264,
        "-pix_fmt",
        "yuv420p10le",
        str(path),
    )
    return path


def unicode_name(dest: Path) -> Path:
    """A valid 1 s video whose name has spaces, accents, CJK and shell metacharacters."""
    path = _fresh(dest, "clip ünïcødé 日本語 (1) & 'q'.mp4")
    _ffmpeg(
        "-f", "lavfi", "-i", "testsrc=s=160x96:r=10:d=1", *_X264, "-pix_fmt", "yuv420p", str(path)
    )
    return path


def directory(dest: Path) -> Path:
    """A folder named like a video file."""
    path = _fresh(dest, "folder.mp4")
    path.mkdir()
    return path


def unreadable(dest: Path) -> Path:
    """A valid video with mode 000. Note: root ignores file permissions, so when tests run as
    root the file is still readable; only a non-root reader gets PermissionError."""
    path = _fresh(dest, "unreadable.mp4")
    _ffmpeg(
        "-f", "lavfi", "-i", "testsrc=s=160x96:r=10:d=1", *_X264, "-pix_fmt", "yuv420p", str(path)
    )
    path.chmod(0o000)
    return path


# mvhd duration written by `huge_header` (timescale 1000): about 49.7 days.
HUGE_DURATION_UNITS = 0xFFFFFF00


def huge_header(dest: Path) -> Path:
    """A 1 s mp4 whose movie header (mvhd) claims a duration of ~4.3 million seconds (49.7
    days). The streams still hold 1 s; a reader that trusts the header for progress, frame
    counts or buffer sizes goes wrong."""
    path = _fresh(dest, "huge_header.mp4")
    _ffmpeg(
        "-f", "lavfi", "-i", "testsrc=s=160x96:r=10:d=1", *_X264, "-pix_fmt", "yuv420p", str(path)
    )
    data = bytearray(path.read_bytes())
    at = data.find(b"mvhd")
    if at < 0 or data[at + 4] != 0:
        raise FFmpegError(f"{path}: expected a version-0 'mvhd' box, found none")
    # mvhd v0 after its type: version(1) flags(3) creation(4) modification(4) timescale(4)
    # duration(4).
    struct.pack_into(">I", data, at + 20, HUGE_DURATION_UNITS)
    path.write_bytes(bytes(data))
    return path


def long_sparse(dest: Path) -> Path:
    """10 minutes of one static 64x64 grey frame at 1 fps (600 frames, a few kB): long duration,
    almost no content. Tests that runtime follows the sampling, not the wall-clock length."""
    path = _fresh(dest, "long_sparse.mp4")
    _ffmpeg(
        "-f", "lavfi", "-i", "color=c=gray:s=64x64:r=1:d=600",
        *_X264, "-g", "600", "-pix_fmt", "yuv420p", str(path),
    )  # fmt: skip
    return path


# ------------------------------------------------------------------------ synthetic content

# Segments of `shot_cuts`: lavfi source and duration (multiples of the 25 fps frame interval, so
# each cut falls exactly on a frame). Each source looks nothing like its neighbours.
_SHOTS: list[tuple[str, float]] = [
    ("testsrc2=s=320x240:r=25", 1.6),
    ("smptebars=s=320x240:r=25", 1.2),
    ("mandelbrot=s=320x240:r=25", 1.4),
    ("color=c=navy:s=320x240:r=25", 1.0),
    ("rgbtestsrc=s=320x240:r=25", 1.2),
]
SHOT_CUT_TIMES: list[float] = [
    round(sum(d for _, d in _SHOTS[: i + 1]), 6) for i in range(len(_SHOTS) - 1)
]
"""Times (s) of the first frame of each new shot in `shot_cuts`: 1.6, 2.8, 4.2, 5.2."""


def shot_cuts(dest: Path) -> tuple[Path, list[float]]:
    """6.4 s, 320x240, 25 fps: five distinct lavfi sources back to back (hard cuts, no audio).
    Returns the path and the cut times (`SHOT_CUT_TIMES`)."""
    path = _fresh(dest, "shot_cuts.mp4")
    inputs: list[str] = []
    for source, seconds in _SHOTS:
        # -t on the input: not every lavfi source has a duration option (mandelbrot has none).
        inputs += ["-t", f"{seconds}", "-f", "lavfi", "-i", source]
    labels = "".join(f"[{i}:v]" for i in range(len(_SHOTS)))
    _ffmpeg(
        *inputs,
        "-filter_complex", f"{labels}concat=n={len(_SHOTS)}:v=1:a=0,format=yuv420p[v]",
        "-map", "[v]", *_X264, str(path),
    )  # fmt: skip
    return path, list(SHOT_CUT_TIMES)


COLOR_PATTERN_QUADRANTS: dict[str, tuple[int, int, int]] = {
    "top_left": (255, 0, 0),
    "top_right": (0, 255, 0),
    "bottom_left": (0, 0, 255),
    "bottom_right": (255, 255, 255),
}
"""RGB of each quadrant of `color_pattern` (a decoder that swaps channels or flips shows it)."""


def color_pattern(dest: Path) -> Path:
    """1 s, 128x96, 10 fps, four solid quadrants (`COLOR_PATTERN_QUADRANTS`), yuv444p so the
    colours are not smeared by chroma subsampling."""
    path = _fresh(dest, "color_pattern.mp4")
    boxes = ",".join(
        f"drawbox=x={x}:y={y}:w=64:h=48:color={c}:t=fill"
        for x, y, c in [(64, 0, "0x00FF00"), (0, 48, "0x0000FF"), (64, 48, "0xFFFFFF")]
    )
    _ffmpeg(
        "-f", "lavfi", "-i", "color=c=0xFF0000:s=128x96:r=10:d=1",
        "-vf", boxes, *_X264, "-qp", "0", "-pix_fmt", "yuv444p", str(path),
    )  # fmt: skip
    return path


def _shot_cuts_path(dest: Path) -> Path:
    return shot_cuts(dest)[0]


# ------------------------------------------------------------------ issue 17 / 11: more awkward


def _tiny(path: Path, seconds: float = 1.0, size: str = "160x96") -> Path:
    _ffmpeg(
        "-f", "lavfi", "-i", f"testsrc=s={size}:r=10:d={seconds}",
        *_X264, "-pix_fmt", "yuv420p", str(path),
    )  # fmt: skip
    return path


# File names that a careless tool reads as options, shell code or protocols. Each must work as
# a plain file name (given as ./NAME, or after --, or as an absolute path).
AWKWARD_NAMES: dict[str, str] = {
    "dash_rf": "-rf.mp4",
    "dash_i": "-i.mp4",
    "spaces_quotes": "my clip 'single' \"double\".mp4",
    "shell": "$(touch PWNED) `id` ; echo x.mp4",
    "newline": "first line\nsecond line.mp4",
    "protocol": "concat:a.mp4|b.mp4",
    "percent": "clip%03d.mp4",
}


def named(dest: Path, key: str) -> Path:
    """A valid 1 s video named `AWKWARD_NAMES[key]`."""
    return _tiny(_fresh(dest, AWKWARD_NAMES[key]))


def negative_start_mkv(dest: Path) -> Path:
    """5 s of 10 fps VP8 whose timestamps start one second before zero (Matroska keeps them:
    ffprobe says start -1.0 s), while the header's duration, 4.0 s, counts only from zero. A
    reader that trusts the header records 4 s and observations up to 4.9 s."""
    path = _fresh(dest, "negative_start.mkv")
    _ffmpeg(
        "-f", "lavfi", "-i", "testsrc=s=160x96:r=10:d=5", "-c:v", "libvpx",
        "-deadline", "realtime", "-threads", "1", "-output_ts_offset", "-1",
        "-avoid_negative_ts", "disabled", str(path),
    )  # fmt: skip
    return path


def growing_mkv(dest: Path) -> Path:
    """A Matroska file as a recorder leaves it while still writing: streamed (no duration, no
    cues in the header) and cut at 70 %. ffprobe gives no duration at all."""
    path = _fresh(dest, "growing.mkv")
    proc = subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi",
         "-i", "testsrc=s=160x96:r=10:d=5", *_X264, "-pix_fmt", "yuv420p", "-f", "matroska", "-"],
        capture_output=True, check=True,
    )  # fmt: skip
    path.write_bytes(proc.stdout[: len(proc.stdout) * 7 // 10])
    return path


def anamorphic(dest: Path) -> Path:
    """160x96 stored pixels with a 2:1 sample aspect ratio: players show it 320x96."""
    path = _fresh(dest, "anamorphic.mp4")
    _ffmpeg(
        "-f", "lavfi", "-i", "testsrc=s=160x96:r=10:d=1", "-vf", "setsar=2/1",
        *_X264, "-pix_fmt", "yuv420p", str(path),
    )  # fmt: skip
    return path


def late_audio(dest: Path) -> Path:
    """3 s of video whose only audio (a 2 s tone) starts 1 s after the first frame: sample 0
    of the audio a perceiver hears must be time 0 of the video."""
    path = _fresh(dest, "late_audio.mp4")
    _ffmpeg(
        "-f", "lavfi", "-i", "testsrc=s=160x96:r=10:d=3",
        "-itsoffset", "1", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=16000:d=2",
        *_X264, "-pix_fmt", "yuv420p", "-c:a", "aac", str(path),
    )  # fmt: skip
    return path


def second_track_speech(dest: Path) -> Path:
    """Two audio tracks, neither marked default: track 0 is silence, track 1 is loud (espeak
    speech when espeak-ng is installed, else a warbling tone). The reader must choose track 1
    on purpose and note track 0."""
    path = _fresh(dest, "second_track_speech.mkv")
    wav = dest / ".speech.wav"
    if shutil.which("espeak-ng"):
        _run(["espeak-ng", "-w", str(wav), "Hello there, this is the second audio track."])
        second = ["-i", str(wav)]
    else:
        second = ["-f", "lavfi", "-i", "sine=frequency=300:beep_factor=4:sample_rate=16000:d=3"]
    _ffmpeg(
        "-f", "lavfi", "-i", "testsrc=s=160x96:r=10:d=3",
        "-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono:d=3", *second,
        "-map", "0:v", "-map", "1:a", "-map", "2:a", "-t", "3",
        *_X264, "-pix_fmt", "yuv420p", "-c:a", "aac",
        "-disposition:a:0", "0", "-disposition:a:1", "0", str(path),
    )  # fmt: skip
    wav.unlink(missing_ok=True)
    return path


def png_as_mp4(dest: Path) -> Path:
    """A PNG picture renamed .mp4: a still image, not a video."""
    path = _fresh(dest, "picture.mp4")
    _ffmpeg("-f", "lavfi", "-i", "testsrc=s=160x96", "-frames:v", "1", "-f", "image2",
            "-c:v", "png", str(path))  # fmt: skip
    return path


def corrupt_middle(dest: Path) -> Path:
    """4 s of 320x240 video (a keyframe a second) with 4 kB of random bytes in the middle of
    its data: it decodes, with decoder errors the record must warn about."""
    path = _fresh(dest, "corrupt_middle.mp4")
    _ffmpeg(
        "-f", "lavfi", "-i", "testsrc2=s=320x240:r=10:d=4", *_X264, "-g", "10",
        "-pix_fmt", "yuv420p", str(path),
    )  # fmt: skip
    data = bytearray(path.read_bytes())
    rng = np.random.default_rng(1)
    mid = len(data) // 2
    data[mid : mid + 4000] = rng.integers(0, 256, 4000, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))
    return path


def huge_12k(dest: Path, seconds: float = 2.0) -> Path:
    """12288x12288 (151 megapixels), 2 fps, a solid colour: under 1 MB on disk, 453 MB a frame
    as RGB. Not in `AWKWARD` (about 10 s to make): the memory test uses it."""
    path = _fresh(dest, "huge_12k.mp4")
    _ffmpeg(
        "-f", "lavfi", "-i", f"color=c=0x3366cc:s=12288x12288:r=2:d={seconds}",
        *_X264, "-pix_fmt", "yuv420p", str(path),
    )  # fmt: skip
    return path


def _special(kind: str) -> Callable[[Path], Path]:
    def make(dest: Path) -> Path:
        if kind == "fifo":
            path = _fresh(dest, "pipe.mp4")
            os.mkfifo(path)
            return path
        return Path(kind)

    make.__doc__ = f"{kind}: not a regular file; must be refused without being opened"
    return make


SPECIAL_FILES: dict[str, Callable[[Path], Path]] = {
    "fifo": _special("fifo"),
    "dev_zero": _special("/dev/zero"),
    "dev_urandom": _special("/dev/urandom"),
}
"""Inputs that are not regular files (reading one blocks or never ends): each must be refused
as "not a regular file" before any tool opens it."""


AWKWARD: dict[str, Callable[[Path], Path]] = {
    "zero_bytes": zero_bytes,
    "text_as_mp4": text_as_mp4,
    "truncated_mp4": truncated_mp4,
    "truncated_no_index": truncated_no_index,
    "audio_only": audio_only,
    "no_audio": no_audio,
    "single_frame": single_frame,
    "vfr": vfr,
    "rotated_90": rotated_90,
    "odd_size": odd_size,
    "ten_bit": ten_bit,
    "unicode_name": unicode_name,
    "directory": directory,
    "unreadable": unreadable,
    "huge_header": huge_header,
    "long_sparse": long_sparse,
    "shot_cuts": _shot_cuts_path,
    "color_pattern": color_pattern,
    "negative_start_mkv": negative_start_mkv,
    "growing_mkv": growing_mkv,
    "anamorphic": anamorphic,
    "late_audio": late_audio,
    "second_track_speech": second_track_speech,
    "png_as_mp4": png_as_mp4,
    "corrupt_middle": corrupt_middle,
    **{f"name_{k}": functools.partial(named, key=k) for k in AWKWARD_NAMES},
    **SPECIAL_FILES,
}
"""Every generator by name; each takes a destination folder and returns the path it made."""


# ---------------------------------------------------------------------------- frame decoding

_SHOWINFO_PTS = re.compile(r"Parsed_showinfo.*?\bn:\s*\d+.*?\bpts_time:\s*(\S+)")


def decode_frames(path: Path, fps: float, max_side: int | None = None) -> list[Frame]:
    """Decode `path` into RGB `Frame`s like the pipeline's streams: the first frame of every
    1/`fps` bucket of presentation time, downscaled (area) so the longer side is at most
    `max_side`, each with its real presentation time and `scale` = decoded / full size."""
    info = ffprobe(path)
    video = next((s for s in info["streams"] if s.get("codec_type") == "video"), None)
    if video is None:
        raise FFmpegError(f"{path}: expected a video stream, found none")
    full_w, full_h = int(video["width"]), int(video["height"])
    if abs(_rotation(video)) % 180 == 90:
        # ffmpeg auto-rotates while decoding: the frames come out in display orientation.
        full_w, full_h = full_h, full_w
    w, h = full_w, full_h
    if max_side is not None and max(w, h) > max_side:
        s = max_side / max(w, h)
        w, h = (max(2, round(w * s / 2) * 2), max(2, round(h * s / 2) * 2))

    # Bucket index of a time; the epsilon keeps a frame that sits exactly on a boundary in its
    # own bucket (0.12 * 25 is 2.9999999999999996 in floating point, and would be dropped).
    def bucket(var: str) -> str:
        return f"floor({var}*{fps:.6f}+1e-6)"

    select = f"select='isnan(prev_selected_t)+gt({bucket('t')}\\,{bucket('prev_selected_t')})'"
    cmd = [
        "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "info", "-i", os.fspath(path),
        "-map", "0:v:0", "-an", "-vf", f"{select},showinfo,scale={w}:{h}:flags=area",
        "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1",
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        tail = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-3:]
        raise FFmpegError(f"decoding {path} failed: {' | '.join(tail)}")
    times = [float(m) for m in _SHOWINFO_PTS.findall(proc.stderr.decode("utf-8", "replace"))]
    images = np.frombuffer(proc.stdout, np.uint8)
    n = images.size // (w * h * 3)
    if n != len(times):
        raise FFmpegError(f"{path}: decoded {n} frames but ffmpeg reported {len(times)} times")
    images = images[: n * w * h * 3].reshape(n, h, w, 3)
    return [Frame(index=i, t=t, image=images[i], scale=w / full_w) for i, t in enumerate(times)]


def _rotation(stream: dict[str, Any]) -> int:
    """Display rotation (degrees) of an ffprobe stream: display matrix, or the old rotate tag."""
    for side in stream.get("side_data_list") or []:
        if "rotation" in side:
            return int(float(side["rotation"]))
    return int(float((stream.get("tags") or {}).get("rotate", 0)))
