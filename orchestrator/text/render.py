"""Rendering: the record becomes the LLM's text, within a token budget.

Layout (VideoChat-Text's timeline, but object-indexed)::

    VIDEO: name.mp4 | 01:19 (79.5 s) | 768x576 | 10 fps | audio: none
    PERCEPTION: asr skipped (video has no audio track); detect ok (12 objects); shots ok (0 cuts)
    OBJECTS (12; ids are stable across the timeline):
    - person#1: person (posture=standing), 00:00–00:14, moves left→right
    TIMELINE (10 s windows):
    [00:00–00:10]
      00:00 person#1 appears
      00:03–00:05 speech: "the quoted words"
      visible: person#1, person#2

Everything text-like that comes from the video (speech, OCR, captions…) is JSON-quoted: it reads
as data, and a quote or newline inside it cannot break the layout.

Fitting the budget never cuts a line in half: first windows are widened (merging their lines),
then whole lines are dropped by salience (least useful first), and the text says what went.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from vidchat.kernel.record import ObjectTrack, VideoContext

# The one timecode formatter; the `as` form re-exports it for code that still imports it here.
from vidchat.kernel.timecode import fmt_span, fmt_time

TokenCounter = Callable[[str], int]

MAX_VISIBLE_IDS = 12  # ids listed per "visible" line before "+N more"
# Window lengths tried, in seconds, when the timeline must be merged to fit the budget.
WINDOW_LADDER = (10, 20, 30, 60, 120, 300, 600, 900, 1800)
_GOLDEN = 0.6180339887498949

# Salience of line kinds: higher survives longer when the budget is tight.
SALIENCE = {
    "speech": 6,
    "shot": 5,
    "ocr": 4,
    "caption": 4,
    "appear": 3,
    "leave": 3,
    "action": 2,
    "event": 2,
    "tag": 1,
    "visible": 0,
}

HIDDEN_ATTRIBUTES = frozenset({"class"})
# Per-object data that belongs in the object list (or only in the JSON record: masks), not in the
# timeline, where one line per mask would crowd out everything else.
OBJECT_LEVEL_EVENTS = frozenset({"mask", "mask_track", "object_description"})

_TOKEN_RE = re.compile(r"[A-Za-z]+|\d|[^\sA-Za-z\d]")


def estimate_tokens(text: str) -> int:
    """Tokenizer-free estimate of BPE tokens: digits and punctuation one each, words ~5 chars."""
    n = 0
    for m in _TOKEN_RE.finditer(text):
        s = m.group()
        n += math.ceil(len(s) / 5) if s[0].isalpha() else 1
    return n


def quote(text: str) -> str:
    """Quote untrusted video text as a JSON string (escapes quotes, newlines, controls)."""
    return json.dumps(text.strip(), ensure_ascii=False)


@dataclass
class TimelineWindow:
    """One window of the timeline: its span and its lines (self-contained text)."""

    start: float
    end: float
    text: str


@dataclass
class Rendered:
    """The rendering of a record and what it cost."""

    header: str
    objects: str
    windows: list[TimelineWindow]
    omitted: list[str]
    text: str
    tokens: int
    budget: int | None
    window_s: float
    over_budget: bool = False
    dropped: dict[str, int] = field(default_factory=dict)


@dataclass
class _Line:
    start: float
    end: float
    kind: str
    text: str
    confidence: float = 1.0
    order: int = 0
    spread: float = 0.0  # drop rank within its kind: spreads dropping evenly over time

    @property
    def salience(self) -> int:
        return SALIENCE.get(self.kind, SALIENCE["event"])


def _motion(o: ObjectTrack) -> str | None:
    tr = o.trajectory
    if len(tr) < 2:
        return None
    (ax1, ay1, ax2, ay2), (bx1, by1, bx2, by2) = tr[0].box, tr[-1].box
    dx = (bx1 + bx2 - ax1 - ax2) / 2
    dy = (by1 + by2 - ay1 - ay2) / 2
    size = max(ax2 - ax1, ay2 - ay1, 1.0)
    if max(abs(dx), abs(dy)) < 0.5 * size:
        return "mostly in place"
    if abs(dx) >= abs(dy):
        return "moves left→right" if dx > 0 else "moves right→left"
    return "moves down" if dy > 0 else "moves up"


def _object_line(o: ObjectTrack, description: str | None = None) -> str:
    # Words only: numbers (frames_seen, areas) are bookkeeping, False flags are noise, and
    # `class` repeats the label in the model's own vocabulary.
    attrs = ", ".join(
        f"{k}={v}"
        for k, v in o.attributes.items()
        if k not in HIDDEN_ATTRIBUTES and (v is True or (isinstance(v, str) and v))
    )
    parts = [f"- {o.id}: {o.label}" + (f" ({attrs})" if attrs else "")]
    parts.append(fmt_span(o.first_seen, o.last_seen))
    motion = _motion(o)
    if motion:
        parts.append(motion)
    line = ", ".join(parts)
    desc = o.description or description
    if desc:
        line += f"; description: {quote(desc)}"
    return line


def _header(ctx: VideoContext) -> str:
    v = ctx.video
    fps = v.fps_float
    audio = f"yes ({v.audio_codec})" if v.has_audio else "none"
    lines = [
        f"VIDEO: {v.name} | {fmt_time(v.duration)} ({v.duration:.1f} s) | {v.width}x{v.height}"
        f" | {fps:.3g} fps{' (variable)' if v.variable_frame_rate else ''} | audio: {audio}"
    ]
    perc = []
    for p in ctx.provenance:
        if p.status == "ok":
            perc.append(f"{p.name} ok ({p.items} items)")
        else:
            perc.append(f"{p.name} {p.status} ({p.reason})")
    if perc:
        lines.append("PERCEPTION: " + "; ".join(perc))
    for z in ctx.zooms:  # closer looks at windows (vidchat.pipeline.zoom): denser there
        lines.append(
            f"ZOOMED {fmt_span(z.start, z.end)} at {z.fps:g} fps ({', '.join(z.perceivers)}): "
            f"{len(z.objects_added)} objects added, {len(z.objects_refined)} refined, "
            f"{z.events_added} events added"
        )
    return "\n".join(lines)


def _objects_block(ctx: VideoContext, max_lines: int | None) -> str:
    objs = ctx.objects
    head = f"OBJECTS ({len(objs)}; ids are stable across the timeline):"
    if not objs:
        return head + "\n- none detected"
    # The longest-seen objects are listed first when the list must be cut.
    ranked = sorted(objs, key=lambda o: -(o.last_seen - o.first_seen))
    shown = ranked if max_lines is None else ranked[:max_lines]
    shown_ids = {o.id for o in shown}
    # Descriptions written by another perceiver (region_caption) arrive as events about the id.
    described = {
        oid: e.text for e in ctx.events if e.kind == "object_description" for oid in e.objects
    }
    lines = [_object_line(o, described.get(o.id)) for o in objs if o.id in shown_ids]
    rest = [o for o in objs if o.id not in shown_ids]
    if rest:
        labels: dict[str, int] = {}
        for o in rest:
            labels[o.label] = labels.get(o.label, 0) + 1
        summary = ", ".join(f"{n} {lab}" for lab, n in sorted(labels.items()))
        lines.append(f"- … and {len(rest)} more seen briefly ({summary}); ids in the timeline")
    return head + "\n" + "\n".join(lines)


def _speakers(ctx: VideoContext) -> dict[tuple[float, float], str]:
    """(start, end) of a speech segment -> its speaker event's text (``speaker 2, likely
    person#4``), from the ``speakers`` perceiver."""
    return {(round(e.start, 3), round(e.end, 3)): e.text for e in ctx.events if e.kind == "speaker"}


def _lines(ctx: VideoContext) -> list[_Line]:
    out: list[_Line] = []
    speakers = _speakers(ctx)
    for s in ctx.speech:
        lang = f" ({s.language})" if s.language and s.language != "en" else ""
        who = speakers.get((round(s.start, 3), round(s.end, 3))) or s.speaker
        tag = ", ".join(x for x in (lang.strip(" ()"), who) if x)
        text = f"{fmt_span(s.start, s.end)} speech{f' ({tag})' if tag else ''}: {quote(s.text)}"
        out.append(_Line(s.start, s.end, "speech", text, s.confidence or 1.0))
    end_of_video = ctx.video.duration
    for o in ctx.objects:
        first = fmt_time(o.first_seen)
        if fmt_time(o.last_seen) == first:  # under a second: one line, not appears+leaves
            out.append(_Line(o.first_seen, o.first_seen, "appear", f"{first} {o.id} seen briefly"))
            continue
        out.append(_Line(o.first_seen, o.first_seen, "appear", f"{first} {o.id} appears"))
        if o.last_seen < end_of_video - 1.0:
            text = f"{fmt_time(o.last_seen)} {o.id} leaves"
            out.append(_Line(o.last_seen, o.last_seen, "leave", text))
    for e in ctx.events:
        if e.kind in OBJECT_LEVEL_EVENTS or e.kind == "speaker":
            continue  # shown with the object / in the speech line, not as timeline lines
        if e.kind == "shot":
            text = f"{fmt_time(e.start)} shot cut"
        else:
            objs = f" [{', '.join(e.objects)}]" if e.objects else ""
            text = f"{fmt_span(e.start, e.end)} {e.kind}: {quote(e.text)}{objs}"
        conf = e.confidence if e.confidence is not None else 1.0
        out.append(_Line(e.start, e.end, e.kind, text, conf))
    for i, ln in enumerate(sorted(out, key=lambda x: (x.start, -x.salience, x.text))):
        ln.order = i
    per_kind: dict[str, int] = {}
    for ln in sorted(out, key=lambda x: x.order):
        k = per_kind.get(ln.kind, 0)
        per_kind[ln.kind] = k + 1
        # Golden-ratio sequence: dropping the lowest ranks thins a kind evenly over the video
        # instead of cutting off its end.
        ln.spread = (k * _GOLDEN) % 1.0
    return sorted(out, key=lambda x: x.order)


def _windows(
    ctx: VideoContext, lines: list[_Line], window_s: float, drop_visible: bool
) -> list[tuple[float, float, list[str]]]:
    duration = max(ctx.video.duration, max((ln.end for ln in lines), default=0.0), 1e-3)
    n = max(1, math.ceil(duration / window_s))
    buckets: list[list[_Line]] = [[] for _ in range(n)]
    for ln in lines:
        buckets[min(int(ln.start // window_s), n - 1)].append(ln)
    out = []
    for i, b in enumerate(buckets):
        a, z = i * window_s, min((i + 1) * window_s, duration)
        # Identical observations (a tag repeated at every keyframe) collapse into one line with
        # a count; speech, cuts and appearances are always kept one per line.
        entries: list[list] = []  # [text, collapse key or None, count]
        by_key: dict[str, list] = {}
        for ln in b:
            if ln.kind in ("speech", "shot", "appear", "leave"):
                entries.append([ln.text, None, 1])
                continue
            key = ln.text.split(" ", 1)[1]  # the line without its time
            if key in by_key:
                by_key[key][2] += 1
            else:
                by_key[key] = [ln.text, key, 1]
                entries.append(by_key[key])
        texts = [t + (f" (×{c})" if c > 1 else "") for t, _, c in entries]
        if not drop_visible:
            vis = [o.id for o in ctx.objects if o.first_seen <= z and o.last_seen >= a]
            if vis:
                more = (
                    f" (+{len(vis) - MAX_VISIBLE_IDS} more)" if len(vis) > MAX_VISIBLE_IDS else ""
                )
                texts.append("visible: " + ", ".join(vis[:MAX_VISIBLE_IDS]) + more)
        if texts:
            out.append((a, z, texts))
    return out


def _assemble(
    header: str,
    objects: str,
    windows: list[tuple[float, float, list[str]]],
    window_s: float,
    omitted: list[str],
) -> tuple[str, list[TimelineWindow]]:
    tw = [
        TimelineWindow(a, z, f"[{fmt_time(a)}–{fmt_time(z)}]\n" + "\n".join("  " + t for t in ts))
        for a, z, ts in windows
    ]
    label = f"{window_s:g} s" if window_s < 120 else f"{window_s / 60:g} min"
    parts = [header, objects, f"TIMELINE ({label} windows):"]
    parts += [w.text for w in tw] or ["(nothing observed)"]
    if omitted:
        parts.append("OMITTED to fit the token budget: " + "; ".join(omitted))
    return "\n".join(parts), tw


def render(
    ctx: VideoContext,
    budget_tokens: int | None = None,
    window_s: float | None = None,
    count_tokens: TokenCounter | None = None,
) -> Rendered:
    """Render the record as text, within `budget_tokens` when given (None: everything)."""
    from vidchat.pipeline.profiles import RenderConfig  # one place for the defaults

    count = count_tokens or estimate_tokens
    base_window = window_s or RenderConfig().window_s
    header = _header(ctx)
    objects = _objects_block(ctx, None)
    lines = _lines(ctx)

    def build(
        win: float, keep: list[_Line], omitted: list[str], drop_visible: bool, objs: str
    ) -> tuple[str, list[TimelineWindow], int]:
        text, tw = _assemble(header, objs, _windows(ctx, keep, win, drop_visible), win, omitted)
        return text, tw, count(text)

    text, tw, tokens = build(base_window, lines, [], False, objects)
    win = base_window
    if budget_tokens is None or tokens <= budget_tokens:
        return Rendered(header, objects, tw, [], text, tokens, budget_tokens, win)

    # 1. Keep the object list within about a third of the budget.
    n_obj = len(ctx.objects)
    while count(objects) > budget_tokens // 3 and n_obj > 5:
        n_obj = max(5, n_obj * 2 // 3)
        objects = _objects_block(ctx, n_obj)
    omitted: list[str] = []
    if n_obj < len(ctx.objects):
        omitted.append(f"{len(ctx.objects) - n_obj} short-lived objects summarized in the list")

    # 2. Widen the windows: fewer window headers and "visible" lines, same facts.
    text, tw, tokens = build(win, lines, omitted, False, objects)
    for wider in (w for w in WINDOW_LADDER if w > win):
        if tokens <= budget_tokens:
            break
        win = float(wider)
        text, tw, tokens = build(win, lines, omitted, False, objects)
    if tokens <= budget_tokens:
        return Rendered(header, objects, tw, omitted, text, tokens, budget_tokens, win)

    # 3. Drop whole lines, least salient first (then least confident, then latest).
    dropped: dict[str, int] = {}
    drop_visible = True
    dropped["visible"] = 1
    keep = sorted(lines, key=lambda x: (x.salience, x.confidence, x.spread))
    while True:
        kept = sorted(keep, key=lambda x: x.order)
        notes = omitted + [
            f"{n} {k} lines" if k != "visible" else "'visible' lines" for k, n in dropped.items()
        ]
        text, tw, tokens = build(win, kept, notes, drop_visible, objects)
        if tokens <= budget_tokens or not keep:
            break
        # Drop a batch proportional to the overshoot (fast on hour-long records).
        over = tokens - budget_tokens
        avg = max(1, tokens // max(1, len(keep)))
        batch = max(1, min(len(keep), over // avg + 1))
        for ln in keep[:batch]:
            dropped[ln.kind] = dropped.get(ln.kind, 0) + 1
        keep = keep[batch:]
    return Rendered(
        header, objects, tw, notes, text, tokens, budget_tokens, win,
        over_budget=tokens > budget_tokens, dropped=dropped,
    )  # fmt: skip
