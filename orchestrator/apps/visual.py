"""Pictures of a record: the annotated video, the timeline plot and the contact sheet.

Everything here is drawn FROM THE RECORD (`VideoContext`): no perceiver runs again. Boxes come
from each object's sparse trajectory, linearly interpolated between samples inside the object's
``first_seen``..``last_seen``; speech is drawn as subtitles, OCR text and other events as
captions, shot cuts as a banner. Frames are decoded and encoded with ffmpeg; the source's audio
is copied into the annotated video.

- `annotate(video, ctx, output)` -> `AnnotateResult`
- `timeline_rows(ctx)` -> the rows the timeline shows (aggregated when dense);
  `timeline_png(ctx, path)` (matplotlib) and `timeline_html(ctx, path)` (plotly)
- `contact_sheet(video, ctx, output)` -> `ContactSheetResult`
"""

from __future__ import annotations

import colorsys
import hashlib
import io
import itertools
import math
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numpy as np

from vidchat.kernel.errors import InputError
from vidchat.kernel.outputs import OutputTarget, write_output
from vidchat.kernel.record import RLE, ObjectTrack, VideoContext, VideoInfo

__all__ = [
    "AnnotateResult",
    "ContactSheetResult",
    "TimelineRow",
    "annotate",
    "box_at",
    "color_for",
    "contact_sheet",
    "decode_rle",
    "mask_at",
    "timeline_html",
    "timeline_png",
    "timeline_rows",
]

CUT_BANNER_S = 0.6  # how long a shot-cut banner stays on screen
EVENT_HOLD_S = 1.0  # an instantaneous event (start == end) is shown this long


# ---------------------------------------------------------------------------------- geometry


def color_for(object_id: str) -> tuple[int, int, int]:
    """A stable, saturated RGB colour for an object id (the same in every picture and the app)."""
    h = int(hashlib.sha1(object_id.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    r, g, b = colorsys.hsv_to_rgb(h, 0.9, 1.0)
    return int(r * 255), int(g * 255), int(b * 255)


def box_at(obj: ObjectTrack, t: float) -> tuple[float, float, float, float] | None:
    """The object's box at time `t`: interpolated between trajectory samples, held at the ends.

    None outside ``first_seen``..``last_seen`` or when the trajectory is empty.
    """
    traj = obj.trajectory
    if not traj or t < obj.first_seen - 1e-6 or t > obj.last_seen + 1e-6:
        return None
    if t <= traj[0].t:
        return traj[0].box
    for a, b in itertools.pairwise(traj):
        if a.t <= t <= b.t:
            span = b.t - a.t
            w = 0.0 if span <= 0 else (t - a.t) / span
            x1, y1, x2, y2 = (pa + (pb - pa) * w for pa, pb in zip(a.box, b.box, strict=True))
            return (x1, y1, x2, y2)
    return traj[-1].box


decode_rle = RLE.to_mask  # kept for callers; the coding lives with the RLE model


def mask_at(obj: ObjectTrack, t: float, max_gap: float = 0.5) -> RLE | None:
    """The mask of the trajectory sample nearest `t` (within `max_gap` s), if it has one."""
    best = None
    for p in obj.trajectory:
        near = p.mask is not None and abs(p.t - t) <= max_gap
        if near and (best is None or abs(p.t - t) < abs(best.t - t)):
            best = p
    return best.mask if best is not None else None


# ---------------------------------------------------------------------------------- annotate


@dataclass
class AnnotateResult:
    """What `annotate` wrote."""

    path: Path
    frames: int
    width: int
    height: int
    fps: float
    has_audio: bool
    boxes_drawn: int


def _scaled(box: tuple[float, ...], s: float) -> tuple[int, int, int, int]:
    x1, y1, x2, y2 = (round(v * s) for v in box)
    return x1, y1, x2, y2


def _text(
    img: np.ndarray,
    text: str,
    org: tuple[int, int],
    scale: float,
    color: tuple[int, int, int],
    bg: tuple[int, int, int] | None = (0, 0, 0),
) -> int:
    """Draw text with a filled background box (readable on any frame); returns its height."""
    import cv2

    thick = max(1, round(scale * 2))
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    x, y = org
    x = max(0, min(x, img.shape[1] - tw - 2))
    y = max(th + 2, min(y, img.shape[0] - base - 2))
    if bg is not None:
        cv2.rectangle(img, (x - 2, y - th - 3), (x + tw + 2, y + base + 1), bg, -1)
    cv2.putText(img, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, color, thick, cv2.LINE_AA)
    return th + base + 4


def _wrap(text: str, width: int) -> list[str]:
    import textwrap

    return textwrap.wrap(text, width=max(10, width)) or [""]


def _overlay_events(ctx: VideoContext) -> list:
    """The events written in the frame's top-left block: not shot cuts (a banner of their
    own) and not per-object summaries (mask tracks, object descriptions), which last the
    object's whole life and would bury the frame under one line per object."""
    from vidchat.text.render import OBJECT_LEVEL_EVENTS

    return [e for e in ctx.events if e.kind != "shot" and e.kind not in OBJECT_LEVEL_EVENTS]


def _text_size(text: str, scale: float) -> tuple[int, int]:
    import cv2

    (tw, th), base = cv2.getTextSize(
        text, cv2.FONT_HERSHEY_SIMPLEX, scale, max(1, round(scale * 2))
    )
    return tw + 4, th + base + 4


def draw_frame(img: np.ndarray, ctx: VideoContext, t: float, scale: float) -> int:
    """Draw the record's state at time `t` on an RGB frame in place; returns boxes drawn.

    `scale` maps record pixels (full displayed resolution) to this frame's pixels. Order: masks
    and boxes, then the top-left block (time, shot-cut banner, OCR and other events), then the
    object labels (moved below that block where they would hide under it), then subtitles.
    """
    import cv2

    from vidchat.kernel.timecode import fmt_time

    h, w = img.shape[:2]
    fs = max(0.35, min(w, h) / 700)  # font scale follows the frame size
    line = max(2, round(min(w, h) / 240))
    labels: list[tuple[str, int, int, tuple[int, int, int]]] = []
    for obj in ctx.objects:
        box = box_at(obj, t)
        if box is None:
            continue
        color = color_for(obj.id)
        rle = mask_at(obj, t)
        if rle is not None:
            m: np.ndarray = decode_rle(rle).astype(np.uint8)
            if m.shape != (h, w):
                m = cv2.resize(m, (w, h), interpolation=cv2.INTER_NEAREST)
            contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
            cv2.drawContours(img, contours, -1, color, line)
        x1, y1, x2, y2 = _scaled(box, scale)
        cv2.rectangle(img, (x1, y1), (x2, y2), color, line)
        label = obj.id if obj.id.split("#")[0] == obj.label else f"{obj.id} {obj.label}"
        labels.append((label, x1, y1, color))
    # Top-left block: time, then shot-cut banner and the other events active now (OCR, tags…).
    block: list[tuple[str, float, tuple[int, int, int], tuple[int, int, int]]] = [
        (fmt_time(t), fs, (255, 255, 255), (0, 0, 0))
    ]
    for e in ctx.events:
        if e.kind == "shot" and e.start <= t < e.start + CUT_BANNER_S:
            shot = e.data.get("shot")
            cv2.rectangle(img, (0, 0), (w - 1, h - 1), (255, 255, 0), line * 2)
            text = f"CUT -> shot {shot}" if shot is not None else "CUT"
            block.append((text, fs, (0, 0, 0), (255, 255, 0)))
    for e in _overlay_events(ctx):
        end = e.end if e.end > e.start else e.start + EVENT_HOLD_S
        if e.start <= t < end:
            block.append((f"{e.kind}: {e.text}"[:90], fs * 0.85, (255, 255, 255), (0, 0, 0)))
    y = 0
    block_w = 0
    for text, sc, fg, bg in block:
        y += _text(img, text, (4, y + int(22 * fs) + 4), sc, fg, bg=bg)
        block_w = max(block_w, _text_size(text, sc)[0] + 4)
    block_h = y
    for label, x1, y1, color in labels:
        lh = _text_size(label, fs)[1]
        top = y1 - line  # baseline just above the box
        if top - lh < 0:
            top = y1 + lh + line  # box at the frame's top: inside its top edge
        if x1 < block_w and top - lh < block_h:
            top = block_h + lh + line  # would hide under the time/banner block: below it
        _text(img, label, (x1 + line, top), fs, (0, 0, 0), bg=color)
    # Bottom: speech as subtitles.
    said = [s for s in ctx.speech if s.start <= t < s.end]
    chars = max(20, int(w / (18 * fs)))
    lines = [ln for s in said for ln in _wrap(s.text.strip(), chars)][-3:]
    yb = h - 8
    for ln in reversed(lines):
        yb -= _text(img, ln, ((w - _text_size(ln, fs)[0] + 4) // 2, yb), fs, (255, 255, 255)) + 2
    return len(labels)


def _check_same_video(info: VideoInfo, ctx: VideoContext) -> None:
    if ctx.video.sha256 and info.sha256 != ctx.video.sha256:
        raise InputError(
            f"{info.path} is not the video of this record (record: {ctx.video.name}, "
            f"sha256 {ctx.video.sha256[:12]}…; file: {info.sha256[:12]}…)"
        )


ANNOTATE_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv")
ANNOTATE_MAX_PIXELS = 3840 * 2160  # larger videos are drawn at 4K: encoder memory stays bounded


def check_annotate_output(output: str | Path) -> None:
    """`InputError` unless `output` names a video container annotate writes (or is ``-``)."""
    if str(output) != "-" and Path(output).suffix.lower() not in ANNOTATE_SUFFIXES:
        raise InputError(
            f"annotate writes a video: the output must end in {', '.join(ANNOTATE_SUFFIXES)} "
            f"(or be '-' for standard output), got {Path(output).name!r}"
        )


def _part_file(target: OutputTarget, suffix: str) -> Path:
    """Where ffmpeg writes before the result is moved into place: beside a file output (same
    file system, so the final rename is atomic), in the temp folder for a device or stdout."""
    import tempfile

    folder = target.path.parent if target.kind == "file" and target.path else None
    fd, name = tempfile.mkstemp(prefix=".vidchat-annotate-", suffix=f".part{suffix}", dir=folder)
    os.close(fd)
    return Path(name)


def annotate(
    video: str | Path,
    ctx: VideoContext,
    output: str | Path,
    *,
    max_side: int | None = None,
    crf: int = 23,
) -> AnnotateResult:
    """Write `video` with the record drawn on every frame to `output` (mp4, h264, audio kept).

    The frame rate is the source's; `max_side` scales the output down (boxes scale with it),
    and videos above 4K are drawn at 4K. Odd frame sizes are padded by one pixel to what the
    encoder takes. `output` may be ``-`` (standard output) or a device; see
    `vidchat.kernel.outputs`. The file exists when this returns; otherwise it raises a one-line
    error (InputError when the file is not the record's video, OutputError when the result
    cannot be written).
    """
    from vidchat.kernel.outputs import OutputError, check_output_path, finish_output
    from vidchat.kernel.video import decode_frames, ffmpeg_url, output_size, probe

    check_annotate_output(output)
    target = check_output_path(output)
    info = probe(Path(video))
    _check_same_video(info, ctx)
    fps = info.fps_float or 25.0
    w, h = output_size(info, max_side, ANNOTATE_MAX_PIXELS)
    scale = w / info.width if info.width else 1.0
    suffix = target.path.suffix.lower() if target.path is not None else ""
    tmp = _part_file(target, suffix if suffix in ANNOTATE_SUFFIXES else ".mp4")
    cmd = [
        "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
        "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-r", f"{fps:.6f}",
        "-i", "pipe:0", "-i", ffmpeg_url(info.path),
        "-map", "0:v:0", "-map", f"1:a:{info.audio_track or 0}?",
        # 4:2:0 needs even sizes: pad an odd width or height with one black pixel
        "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2",
        "-c:v", "libx264", "-preset", "veryfast", "-crf", str(crf), "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-b:a", "128k", "-shortest", "-movflags", "+faststart",
        ffmpeg_url(tmp),
    ]  # fmt: skip
    errors = tempfile_bytes()
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=errors, stdout=subprocess.DEVNULL)
    frames = boxes = 0
    assert proc.stdin is not None

    def encoder_error() -> str:
        errors.seek(0)
        lines = errors.read().decode("utf-8", "replace").strip().splitlines()
        return lines[-1] if lines else f"exit status {proc.returncode}"

    try:
        try:
            for df in decode_frames(info, fps, max_side, max_pixels=ANNOTATE_MAX_PIXELS):
                # A copy: decoded frames are read-only, and the boxes are drawn in place.
                img: np.ndarray = np.array(df.image, dtype=np.uint8, copy=True)
                if img.shape[:2] != (h, w):  # cannot happen unless the source changes size
                    import cv2

                    img = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
                boxes += draw_frame(img, ctx, df.t, scale)
                proc.stdin.write(img.tobytes())
                frames += 1
            proc.stdin.close()
        except BrokenPipeError:  # the encoder died: say why, never exit quietly
            proc.wait()
            raise OutputError(f"ffmpeg could not encode {target}: {encoder_error()}") from None
        if proc.wait() != 0:
            raise OutputError(f"ffmpeg could not encode {target}: {encoder_error()}")
        if tmp.stat().st_size == 0:
            raise OutputError(f"ffmpeg wrote nothing for {target}: {encoder_error()}")
        finish_output(tmp, target)
    except BaseException:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        tmp.unlink(missing_ok=True)
        raise
    finally:
        errors.close()
    if target.kind == "file" and not (target.path and target.path.is_file()):
        raise OutputError(f"annotate finished but {target} does not exist")
    out = target.path if target.path is not None else Path("-")
    return AnnotateResult(out, frames, w + w % 2, h + h % 2, fps, info.has_audio, boxes)


def tempfile_bytes() -> IO[bytes]:
    """An anonymous temporary file for a child's stderr (never fills a pipe and blocks it)."""
    import tempfile

    return tempfile.TemporaryFile()


# ---------------------------------------------------------------------------------- timeline


@dataclass
class TimelineRow:
    """One row of the timeline: a name, a group and its intervals (start, end) in seconds.

    `marks` are instants (shot cuts); `weight` (0..1 per interval) shows density when a row
    aggregates many objects or items.
    """

    name: str
    group: str
    intervals: list[tuple[float, float]] = field(default_factory=list)
    marks: list[float] = field(default_factory=list)
    weights: list[float] | None = None
    color: tuple[int, int, int] = (90, 90, 90)
    count: int = 1


def _presence(obj: ObjectTrack) -> list[tuple[float, float]]:
    """When the object is on screen: ``first_seen``..``last_seen``.

    Trajectories are sparse keyframes (a tracker stores a sample when the box moves), so a gap
    between samples does not mean the object left; a tracker gives a returning object a new id.
    """
    return [(obj.first_seen, obj.last_seen)]


def _binned(
    intervals: list[tuple[float, float]], duration: float, bins: int
) -> tuple[list[tuple[float, float]], list[float]]:
    """Many intervals as `bins` equal bins, each weighted by the time covered in the bin divided
    by the bin's length (above 1 where intervals overlap: several objects at once)."""
    step = max(duration, 1e-3) / bins
    cover = np.zeros(bins)
    for a, b in intervals:
        b = max(b, a + step * 0.5)  # an instant still counts in its bin
        i0, i1 = int(a // step), min(bins - 1, int(b // step))
        for i in range(max(0, i0), i1 + 1):
            lo, hi = max(a, i * step), min(b, (i + 1) * step)
            cover[i] += max(0.0, hi - lo) / step
    out, weights = [], []
    for i, c in enumerate(cover):
        if c > 0:
            out.append((i * step, (i + 1) * step))
            weights.append(float(c))
    return out, weights


def timeline_rows(
    ctx: VideoContext,
    *,
    max_object_rows: int = 30,
    max_intervals: int = 400,
    bins: int = 240,
) -> list[TimelineRow]:
    """The timeline's rows: objects (one each, or one per label when there are too many),
    then speech, shot cuts and one row per other event kind (ocr, tag, action, caption…).

    A row with more than `max_intervals` intervals is aggregated into `bins` time bins whose
    weight is the share of the bin covered, so a one-hour record stays readable.
    """
    duration = max(ctx.video.duration, max((o.last_seen for o in ctx.objects), default=0.0))
    rows: list[TimelineRow] = []
    if len(ctx.objects) <= max_object_rows:
        for o in ctx.objects:
            name = o.id if o.label == o.id.split("#")[0] else f"{o.id} ({o.label})"
            rows.append(TimelineRow(name, "objects", _presence(o), color=color_for(o.id)))
    else:
        by_label: dict[str, list[ObjectTrack]] = {}
        for o in ctx.objects:
            by_label.setdefault(o.label, []).append(o)
        for label, objs in sorted(by_label.items(), key=lambda kv: -len(kv[1])):
            ivs = [iv for o in objs for iv in _presence(o)]
            row = TimelineRow(
                f"{label} ×{len(objs)}",
                "objects",
                ivs,
                color=color_for(f"{label}#1"),
                count=len(objs),
            )
            row.intervals, row.weights = _binned(ivs, duration, bins)
            # Aggregated weight is the number of objects present, normalised to the busiest bin.
            top = max(row.weights, default=1.0)
            row.weights = [w / top for w in row.weights]
            rows.append(row)
    if ctx.speech:
        rows.append(
            TimelineRow(
                "speech",
                "speech",
                [(s.start, s.end) for s in ctx.speech],
                color=(40, 120, 220),
                count=len(ctx.speech),
            )
        )
    kinds: dict[str, list] = {}
    for e in ctx.events:
        kinds.setdefault(e.kind, []).append(e)
    if "shot" in kinds:
        cuts = kinds.pop("shot")
        rows.append(
            TimelineRow(
                "shot cuts",
                "shots",
                marks=[e.start for e in cuts],
                color=(200, 160, 0),
                count=len(cuts),
            )
        )
    palette = {
        "ocr": (150, 60, 200),
        "tag": (0, 150, 120),
        "action": (220, 80, 40),
        "caption": (100, 100, 100),
    }
    for kind in sorted(kinds):
        evs = kinds[kind]
        ivs = [(e.start, e.end if e.end > e.start else e.start + EVENT_HOLD_S) for e in evs]
        rows.append(
            TimelineRow(
                kind, "events", ivs, color=palette.get(kind, (120, 120, 120)), count=len(evs)
            )
        )
    for r in rows:
        if r.weights is None and len(r.intervals) > max_intervals:
            r.intervals, r.weights = _binned(r.intervals, duration, bins)
            r.weights = [min(1.0, w) for w in r.weights]
    return rows


def _fmt_tick(x: float, _pos: object = None) -> str:
    from vidchat.kernel.timecode import fmt_time

    return fmt_time(max(0.0, x))


def _label(row: TimelineRow) -> str:
    return row.name if row.group == "objects" else f"{row.name} ({row.count})"


def _tick_step(duration: float, most: int = 12) -> float:
    """A clock-friendly tick step (1 s, 5 s, 1 min, 10 min, …) giving at most `most` ticks."""
    for step in (0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200):
        if duration / step <= most:
            return float(step)
    return float(math.ceil(duration / most / 3600) * 3600)


@dataclass
class TimelinePlot:
    """Where the time axis lies in the PNG (fractions of the image width), for click-to-seek."""

    path: Path
    width: int
    height: int
    axis_left: float
    axis_right: float
    duration: float
    rows: int


def timeline_png(
    ctx: VideoContext, path: str | Path, *, width_in: float = 12.0, dpi: int = 100
) -> TimelinePlot:
    """Draw the timeline with matplotlib to a PNG; returns its size and the time axis position."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, MultipleLocator

    rows = timeline_rows(ctx)
    duration = max(ctx.video.duration, 1e-3)
    n = max(1, len(rows))
    fig, ax = plt.subplots(figsize=(width_in, 1.2 + 0.32 * n), dpi=dpi)
    try:
        for i, r in enumerate(rows):
            y = n - 1 - i
            red, green, blue = r.color
            rgb = (red / 255, green / 255, blue / 255)
            if r.intervals:
                spans = [(a, max(b - a, duration / 2000)) for a, b in r.intervals]
                if r.weights is None:
                    ax.broken_barh(spans, (y - 0.35, 0.7), facecolors=rgb)
                else:
                    cols = [(*rgb, 0.15 + 0.85 * w) for w in r.weights]
                    ax.broken_barh(spans, (y - 0.35, 0.7), facecolors=cols)
            if r.marks:
                ax.vlines(r.marks, y - 0.4, y + 0.4, colors=[rgb], linewidth=2)
        ax.set_yticks(range(n))
        ax.set_yticklabels([_label(r) for r in reversed(rows)] or [""])
        ax.set_xlim(0, duration)
        ax.set_ylim(-0.7, n - 0.3)
        ax.xaxis.set_major_formatter(FuncFormatter(_fmt_tick))
        ax.xaxis.set_major_locator(MultipleLocator(_tick_step(duration)))
        ax.set_axisbelow(True)  # grid lines under the bars, not across them
        ax.grid(axis="x", alpha=0.3)
        ax.set_title(
            f"{ctx.video.name} — {len(ctx.objects)} objects, "
            f"{len(ctx.speech)} speech segments, {len(ctx.events)} events",
            fontsize=10,
        )
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, dpi=dpi, format="png")
        out = Path(path)
        write_output(path, buf.getvalue(), make_parents=True)
        pos = ax.get_position()
        wpx, hpx = (round(v) for v in fig.get_size_inches() * dpi)
    finally:
        plt.close(fig)
    return TimelinePlot(out, wpx, hpx, float(pos.x0), float(pos.x1), duration, n)


def timeline_html(ctx: VideoContext, path: str | Path) -> Path:
    """Draw the timeline with plotly to a self-contained HTML file (works offline)."""
    import plotly.graph_objects as go

    from vidchat.kernel.timecode import fmt_time

    rows = timeline_rows(ctx)
    duration = max(ctx.video.duration, 1e-3)
    fig = go.Figure()
    for r in rows:
        rgb = "rgb({},{},{})".format(*r.color)
        if r.intervals:
            weights = r.weights or [1.0] * len(r.intervals)
            hover = f"{r.name}<br>%{{customdata[0]}}–%{{customdata[1]}}"
            if r.weights is not None:
                hover += "<br>density %{customdata[2]}"
            hover += "<extra></extra>"
            fig.add_trace(
                go.Bar(
                    y=[r.name] * len(r.intervals),
                    x=[max(b - a, duration / 2000) for a, b in r.intervals],
                    base=[a for a, _ in r.intervals],
                    orientation="h",
                    name=r.name,
                    marker={"color": rgb, "opacity": 1.0}
                    if r.weights is None
                    else {
                        "color": [
                            f"rgba({r.color[0]},{r.color[1]},{r.color[2]},{0.15 + 0.85 * w:.2f})"
                            for w in weights
                        ]
                    },
                    customdata=[
                        [fmt_time(a), fmt_time(b), f"{w:.2f}"]
                        for (a, b), w in zip(r.intervals, weights, strict=True)
                    ],
                    hovertemplate=hover,
                    showlegend=False,
                )
            )
        if r.marks:
            fig.add_trace(
                go.Scatter(
                    x=r.marks,
                    y=[r.name] * len(r.marks),
                    mode="markers",
                    name=r.name,
                    marker={
                        "symbol": "line-ns-open",
                        "size": 18,
                        "color": rgb,
                        "line": {"width": 3},
                    },
                    customdata=[fmt_time(m) for m in r.marks],
                    hovertemplate=f"{r.name} %{{customdata}}<extra></extra>",
                    showlegend=False,
                )
            )
    fig.update_layout(
        title=f"{ctx.video.name} — timeline",
        barmode="overlay",
        height=160 + 28 * max(1, len(rows)),
        margin={"l": 160, "r": 20, "t": 50, "b": 40},
        xaxis={"range": [0, duration], "title": "seconds"},
        yaxis={"categoryorder": "array", "categoryarray": [r.name for r in reversed(rows)]},
    )
    out = Path(path)
    write_output(path, fig.to_html(include_plotlyjs=True, full_html=True), make_parents=True)
    return out


def timeline_format(path: str | Path) -> str:
    """``png`` or ``html`` from the output's suffix (``-``: PNG on standard output)."""
    p = Path(path)
    suffix = p.suffix.lower()
    if str(path) == "-" or suffix == ".png":
        return "png"
    if suffix in (".html", ".htm"):
        return "html"
    raise InputError(f"timeline output must end in .png or .html (or be '-'), got {p.name!r}")


def timeline(ctx: VideoContext, path: str | Path) -> Path:
    """Write the timeline as PNG or HTML, chosen by the file's suffix."""
    if timeline_format(path) == "png":
        return timeline_png(ctx, path).path
    return timeline_html(ctx, path)


# ---------------------------------------------------------------------------------- contact sheet


@dataclass
class ContactSheetResult:
    """What `contact_sheet` wrote: the file, its grid and each tile's time and objects."""

    path: Path
    columns: int
    rows: int
    times: list[float]
    objects: list[list[str]]


def keyframe_times(ctx: VideoContext, count: int) -> list[float]:
    """`count` times to show: the start, just after each shot cut, then the widest gaps' middles."""
    d = max(ctx.video.duration, 1e-3)
    cuts = sorted(
        {round(e.start + 0.2, 2) for e in ctx.events if e.kind == "shot" and e.start + 0.2 < d}
    )
    times = [0.0, *cuts][:count]
    # Fill the rest at the middle of the widest gap, so tiles spread evenly between the cuts.
    while len(times) < count:
        edges = [*times, d]
        i = max(range(len(times)), key=lambda k: edges[k + 1] - edges[k])
        times.insert(i + 1, (edges[i] + edges[i + 1]) / 2)
    return sorted(round(min(t, max(0.0, d - 0.05)), 2) for t in times)


def _grab(path: str, t: float, w: int, h: int) -> np.ndarray | None:
    """One RGB frame at time `t` (seek then decode), or None past the end."""
    from vidchat.kernel.video import ffmpeg_url

    cmd = [
        "ffmpeg",
        "-nostdin",
        "-hide_banner",
        "-loglevel",
        "error",
        "-ss",
        f"{t:.3f}",
        "-i",
        ffmpeg_url(path),
        "-map",
        "0:v:0",
        "-frames:v",
        "1",
        "-vf",
        f"scale={w}:{h}",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgb24",
        "pipe:1",
    ]
    r = subprocess.run(cmd, capture_output=True, timeout=120)
    if r.returncode != 0 or len(r.stdout) < w * h * 3:
        return None
    return np.frombuffer(r.stdout[: w * h * 3], np.uint8).reshape(h, w, 3).copy()


def contact_sheet(
    video: str | Path,
    ctx: VideoContext,
    output: str | Path,
    *,
    columns: int = 4,
    rows: int = 4,
    tile_width: int = 360,
) -> ContactSheetResult:
    """A grid of keyframes (after each shot cut, then evenly spaced) with the time and the
    objects on screen written under each, their boxes drawn; saved as JPEG or PNG."""
    import cv2

    from vidchat.kernel.timecode import fmt_time
    from vidchat.kernel.video import probe

    info = probe(Path(video))
    _check_same_video(info, ctx)
    times = keyframe_times(ctx, columns * rows)
    tw = tile_width - tile_width % 2
    th = max(2, round(tw * info.height / max(1, info.width)))
    th -= th % 2
    caption_h = 44
    scale = tw / max(1, info.width)
    sheet = np.full((rows * (th + caption_h), columns * tw, 3), 24, np.uint8)
    seen_lists: list[list[str]] = []
    kept: list[float] = []
    for i, t in enumerate(times):
        # record times count from the first frame; ffmpeg seeks from the file's start
        img = _grab(info.path, t + info.video_offset, tw, th)
        if img is None:
            continue
        # Boxes only (no captions): the tile is small; the caption strip lists the ids.
        for obj in ctx.objects:
            box = box_at(obj, t)
            if box is not None:
                x1, y1, x2, y2 = _scaled(box, scale)
                cv2.rectangle(img, (x1, y1), (x2, y2), color_for(obj.id), 2)
        seen = [o.id for o in ctx.objects if o.first_seen <= t <= o.last_seen]
        r, c = divmod(len(kept), columns)
        y0, x0 = r * (th + caption_h), c * tw
        sheet[y0 : y0 + th, x0 : x0 + tw] = img
        # Tenths on short videos, where several keyframes fall within one second.
        stamp = fmt_time(t) + (f".{int(t * 10) % 10}" if info.duration < 120 else "")
        _text(sheet, stamp, (x0 + 4, y0 + th + 17), 0.5, (255, 255, 255), bg=None)
        ids = ", ".join(seen[:6]) + (f" +{len(seen) - 6}" if len(seen) > 6 else "")
        _text(sheet, ids or "no objects", (x0 + 4, y0 + th + 37), 0.42, (200, 200, 200), bg=None)
        kept.append(t)
        seen_lists.append(seen)
        del i
    if not kept:
        raise InputError(f"{info.path}: no frame could be decoded for the contact sheet")
    used_rows = math.ceil(len(kept) / columns)
    sheet = sheet[: used_rows * (th + caption_h)]
    out = Path(output)
    ext = sheet_format(output)
    ok, encoded = cv2.imencode(f".{ext}", cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    if not ok:
        raise InputError(f"could not encode the contact sheet as {ext}")
    write_output(output, encoded.tobytes(), make_parents=True)
    return ContactSheetResult(out, columns, used_rows, kept, seen_lists)


def sheet_format(path: str | Path) -> str:
    """``jpg`` or ``png`` from the output's suffix (``-``: JPEG on standard output)."""
    suffix = Path(path).suffix.lower()
    if str(path) == "-" or suffix in (".jpg", ".jpeg"):
        return "jpg"
    if suffix == ".png":
        return "png"
    raise InputError(
        f"contact-sheet output must end in .jpg or .png (or be '-'), got {Path(path).name!r}"
    )
