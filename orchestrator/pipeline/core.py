"""The pipeline: run a profile's perceivers over a video and assemble the `VideoContext`.

Perceivers run in dependency order, grouped in levels (a perceiver runs after those it
`requires`). All perceivers of a level share ONE decode: the main thread decodes frames with
ffmpeg and hands each to the bounded queues of the perceivers that declared that stream; every
perceiver runs in its own thread and pulls its frames. Memory stays bounded by the queue sizes
whatever the video's length. Audio is decoded once per level, on first request, and shared.
Two slower modes exist for the benchmark's baselines: `shared_decode=False` (every perceiver
decodes on its own, one after another) and `parallel=False` (one decode per level held in memory,
then the perceivers one after another), so the saving of the shared decode and the saving of
running perceivers side by side can be measured apart.

Each perceiver's result is cached by content (see `vidchat.kernel.cache`), under a key that folds
in the identities of the upstream results it read; a failing perceiver is recorded in provenance
and the others go on (`strict=True` makes any failure fatal). A result whose events name object
ids that no perceiver produced is refused (recorded as failed), so the record never holds them.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from vidchat.kernel.cache import Cache, CacheEntry, cache_key
from vidchat.kernel.errors import ConfigError, PerceiverSkipped, VidchatError
from vidchat.kernel.record import (
    UNAVAILABLE,
    Event,
    ObjectTrack,
    Provenance,
    SpeechSegment,
    VideoContext,
    VideoInfo,
    unknown_object_ids,
)
from vidchat.kernel.video import (
    DecodeStats,
    Sampling,
    decode_frames,
    fit_times,
    load_audio,
    output_size,
    probe,
)
from vidchat.perceivers.base import Frame, Perceiver
from vidchat.pipeline.profiles import Profile, load_profile
from vidchat.pipeline.progress import PlainProgress, stderr_is_terminal

log = logging.getLogger("vidchat.pipeline")

QUEUE_FRAMES = 8  # frames buffered per perceiver and stream: the memory bound


class PipelineError(VidchatError):
    """A perceiver failed while the pipeline ran in strict mode."""


_END = object()


class _Feed:
    """A bounded queue of ``(stream, frame)`` from the decoder to one perceiver, in time order.

    One queue per perceiver (not per stream): a perceiver that reads both streams gets them
    interleaved, so it can never wait on one stream while the decoder waits on the other.
    """

    def __init__(self, maxsize: int = QUEUE_FRAMES) -> None:
        self.q: queue.Queue[object] = queue.Queue(maxsize=maxsize)
        self.closed = threading.Event()  # the consumer has stopped: drop instead of blocking
        self.started = False

    def put(self, item: object) -> None:
        while not self.closed.is_set():
            try:
                self.q.put(item, timeout=0.05)
                return
            except queue.Full:
                continue

    def __iter__(self) -> Iterator[tuple[str, Frame]]:
        if self.started:
            raise RuntimeError("the frame streams can be iterated only once")
        self.started = True
        while True:
            item = self.q.get()
            if item is _END:
                return
            yield item  # type: ignore[misc]


class _SharedAudio:
    """Decodes the audio on first request (once), shared by every perceiver of a level."""

    def __init__(self, info: VideoInfo) -> None:
        self.info = info
        self._lock = threading.Lock()
        self._done = False
        self._audio: np.ndarray | None = None

    def get(self) -> np.ndarray | None:
        with self._lock:
            if not self._done:
                self._audio = load_audio(self.info)
                self._done = True
            return self._audio


@dataclass
class _Media:
    """The `vidchat.perceivers.base.Media` handed to one perceiver."""

    info: VideoInfo
    feed: _Feed | None
    shared_audio: _SharedAudio
    context: VideoContext
    declared: frozenset[str]

    def frames(self, stream: str) -> Iterator[Frame]:
        streams = self.declared & {"slow", "fast"}
        if stream not in streams or self.feed is None:
            raise ValueError(
                f"stream {stream!r} was not declared in the perceiver's inputs "
                f"({', '.join(sorted(self.declared)) or 'none'})"
            )
        if len(streams) > 1:
            raise ValueError(
                "a perceiver that declares both slow and fast must read them together with "
                "media.frames_all() (reading one to its end first would hold the other in memory)"
            )
        return (f for _, f in self.feed)

    def frames_all(self) -> Iterator[tuple[str, Frame]]:
        if self.feed is None:
            raise ValueError("no frame stream was declared in the perceiver's inputs")
        return iter(self.feed)

    def audio(self) -> np.ndarray | None:
        if "audio" not in self.declared:
            raise ValueError("audio was not declared in the perceiver's inputs")
        return self.shared_audio.get()

    @property
    def upstream(self) -> VideoContext:
        return self.context


@dataclass
class _Run:
    """One perceiver's run on one video."""

    perceiver: Perceiver
    key: str
    model: str | None
    feed: _Feed | None = None
    result: CacheEntry | None = None
    seconds: float = 0.0


ProgressFn = Callable[[str, str, float | None], None]


class _Progress:
    """Progress on stderr: a rich decode bar and a status line per perceiver on a terminal,
    plain periodic lines (`PlainProgress`) when stderr is not a terminal."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._p = None
        self._plain: PlainProgress | None = None
        self._tasks: dict[str, object] = {}

    def __enter__(self) -> _Progress:
        if self.enabled and not stderr_is_terminal():
            self._plain = PlainProgress()
        elif self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self._p = Progress(
                TextColumn("{task.description:<14}"),
                BarColumn(),
                TextColumn("{task.fields[status]}"),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=False,
            )
            self._p.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._p is not None:
            self._p.__exit__(None, None, None)

    def task(self, name: str, total: float | None, status: str = "") -> None:
        if self._plain is not None:
            self._plain.task(name, total, status)
        if self._p is not None:
            self._tasks[name] = self._p.add_task(name, total=total, status=status)

    def update(self, name: str, completed: float | None = None, status: str | None = None) -> None:
        if self._plain is not None:
            self._plain.update(name, completed, status)
        if self._p is None or name not in self._tasks:
            return
        kw: dict[str, object] = {}
        if completed is not None:
            kw["completed"] = completed
        if status is not None:
            kw["status"] = status
        self._p.update(self._tasks[name], **kw)  # type: ignore[arg-type]


def _levels(perceivers: list[Perceiver]) -> list[list[Perceiver]]:
    """Group perceivers so each level only requires perceivers of earlier levels."""
    by_name = {p.name: p for p in perceivers}
    for p in perceivers:
        for dep in p.requires:
            if dep not in by_name:
                raise ConfigError(
                    f"perceiver {p.name} requires {dep}, which the profile does not enable"
                )
    done: set[str] = set()
    levels: list[list[Perceiver]] = []
    remaining = list(perceivers)
    while remaining:
        level = [p for p in remaining if all(d in done for d in p.requires)]
        if not level:
            cycle = ", ".join(p.name for p in remaining)
            raise ConfigError(f"perceivers depend on each other in a cycle: {cycle}")
        levels.append(level)
        done.update(p.name for p in level)
        remaining = [p for p in remaining if p not in level]
    return levels


def _resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    import cv2

    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


class Pipeline:
    """A profile's perceivers, instantiated once and reusable across videos (models stay loaded).

    `shared_decode=False` makes every perceiver decode the video on its own: the naive baseline
    the benchmark compares against. `parallel=False` keeps one decode per level but runs the
    level's perceivers one after another on frames held in memory (memory grows with the
    video's length: a benchmark baseline, not for long videos).
    """

    def __init__(
        self,
        profile: str | Profile | None = None,
        *,
        cache: Cache | bool = True,
        strict: bool = False,
        progress: bool = False,
        shared_decode: bool = True,
        parallel: bool = True,
    ) -> None:
        self.profile = load_profile(profile)
        self.cache = Cache() if cache is True else (cache or None)
        self.strict = strict
        self.progress = progress
        self.shared_decode = shared_decode
        self.parallel = parallel
        from vidchat.perceivers import (
            get_perceiver,  # here: perceivers imports vidchat.kernel.errors
        )

        self.perceivers: list[Perceiver] = [
            get_perceiver(name)(opts) for name, opts in self.profile.perceivers.items()
        ]
        self.levels = _levels(self.perceivers)

    @property
    def sampling(self) -> Sampling:
        return self.profile.sampling

    def run(self, path: str | os.PathLike[str]) -> VideoContext:
        """Textualize one video; InputError for a file that is not a usable video."""
        info = probe(Path(path), audio_track=self.sampling.audio_track)
        ctx = VideoContext(video=info, profile=self.profile.name)
        provenance: dict[str, Provenance] = {}
        done: dict[str, CacheEntry] = {}  # each perceiver's result, once merged
        with _Progress(self.progress) as prog:
            for level in self.levels:
                todo: list[_Run] = []
                for p in level:
                    upstream = {dep: done[dep].identity() for dep in p.requires}
                    run = self._prepare(p, info, upstream)
                    if run.result is not None:
                        provenance[p.name] = run.result.provenance
                        _merge(ctx, run.result)
                        done[p.name] = run.result
                        prog.task(p.name, 1, "cached" if run.result.provenance.cached else "")
                        prog.update(p.name, completed=1)
                    else:
                        todo.append(run)
                groups = [todo] if self.shared_decode else [[r] for r in todo]
                for group in groups:
                    if group:
                        self._run_group(group, info, ctx, prog)
                        for r in group:
                            assert r.result is not None
                            provenance[r.perceiver.name] = r.result.provenance
                            _merge(ctx, r.result)
                            done[r.perceiver.name] = r.result
        ctx.provenance = [provenance[p.name] for p in self.perceivers]
        fit_times(ctx, provenance)
        ctx.sort()
        if self.strict:
            bad = [p for p in ctx.provenance if p.status == "failed"]
            if bad:
                raise PipelineError(
                    "; ".join(f"perceiver {p.name} failed: {p.reason}" for p in bad)
                )
        return ctx

    # -- one perceiver: cache lookup, availability ----------------------------------------------

    def _prepare(self, p: Perceiver, info: VideoInfo, upstream: dict[str, str]) -> _Run:
        """`upstream`: the `CacheEntry.identity` of each result `p` requires (in its key)."""
        options = p.options.model_dump(mode="json")
        avail = p.availability()
        model = p.model_identity() if avail.ok else None
        frames = bool(p.inputs & {"slow", "fast"})
        sampling = (
            self.sampling.model_dump(exclude={"stall_timeout_s", "audio_track"}) if frames else None
        )
        if "audio" in p.inputs:  # which audio track it heard
            sampling = {**(sampling or {}), "audio_track": info.audio_track}
        key = cache_key(info.sha256, p.name, p.version, options, model, sampling, upstream)
        run = _Run(perceiver=p, key=key, model=model)
        if not avail.ok:
            prov = Provenance(
                name=p.name, version=p.version, status="failed" if self.strict else "skipped",
                reason=f"{UNAVAILABLE}{avail.reason}", options=options,
            )  # fmt: skip
            run.result = CacheEntry(key=key, provenance=prov)
            return run
        if self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                hit.provenance.cached = True
                run.result = hit
        return run

    # -- a group of perceivers sharing one decode ----------------------------------------------

    def _run_group(
        self, runs: list[_Run], info: VideoInfo, ctx: VideoContext, prog: _Progress
    ) -> None:
        audio = _SharedAudio(info)
        snapshot = ctx.model_copy(deep=True)  # upstream results, read-only for the perceivers
        if not self.parallel and len(runs) > 1:
            self._run_group_in_turn(runs, info, audio, snapshot, prog)
            return
        for r in runs:
            r.feed = _Feed() if r.perceiver.inputs & {"slow", "fast"} else None
        threads = []
        for r in runs:
            media = _Media(info, r.feed, audio, snapshot, r.perceiver.inputs)
            prog.task(r.perceiver.name, 1, "running")
            t = threading.Thread(
                target=self._work, args=(r, media, prog), name=f"perceiver-{r.perceiver.name}",
                daemon=True,
            )  # fmt: skip
            t.start()
            threads.append(t)
        decode_error: BaseException | None = None
        stats = DecodeStats()
        try:
            self._decode_into(runs, info, prog, stats)
        except BaseException as e:
            decode_error = e
        finally:
            for r in runs:
                if r.feed is not None:
                    r.feed.put(_END)
        for t in threads:
            t.join()
        if decode_error is not None:
            raise decode_error
        self._store(runs, stats)

    def _run_group_in_turn(
        self,
        runs: list[_Run],
        info: VideoInfo,
        audio: _SharedAudio,
        snapshot: VideoContext,
        prog: _Progress,
    ) -> None:
        """The `parallel=False` baseline: one decode into unbounded feeds (each frame object
        shared by every feed of its stream), the first perceiver working beside the decode as
        each perceiver does beside its own decode in the naive mode, then the others in turn."""
        for r in runs:
            r.feed = _Feed(maxsize=0) if r.perceiver.inputs & {"slow", "fast"} else None

        def work(r: _Run) -> None:
            prog.task(r.perceiver.name, 1, "running")
            self._work(r, _Media(info, r.feed, audio, snapshot, r.perceiver.inputs), prog)

        first = threading.Thread(target=work, args=(runs[0],), daemon=True)
        first.start()
        stats = DecodeStats()
        try:
            self._decode_into(runs, info, prog, stats)
        finally:
            for r in runs:
                if r.feed is not None:
                    r.feed.put(_END)
            first.join()
        for r in runs[1:]:
            work(r)
        self._store(runs, stats)

    def _store(self, runs: list[_Run], stats: DecodeStats) -> None:
        """Note decode warnings in the provenance of every perceiver that read frames, then
        cache the results that did not fail."""
        warning = stats.warning()
        for r in runs:
            assert r.result is not None
            if warning and r.feed is not None:
                r.result.provenance.warnings.append(warning)
        if self.cache is not None:
            for r in runs:
                assert r.result is not None
                if r.result.provenance.status != "failed":
                    self.cache.put(r.result)

    def _decode_into(
        self, runs: list[_Run], info: VideoInfo, prog: _Progress, stats: DecodeStats
    ) -> None:
        fast = [r.feed for r in runs if r.feed is not None and "fast" in r.perceiver.inputs]
        slow = [r.feed for r in runs if r.feed is not None and "slow" in r.perceiver.inputs]
        if not fast and not slow:
            return
        s = self.sampling
        rate = max(s.fast_fps if fast else 0.0, s.slow_fps if slow else 0.0)
        max_side = s.slow_max_side if slow else s.fast_max_side
        max_pixels = s.slow_max_pixels if slow else None
        decode_size = output_size(info, max_side, max_pixels)
        fast_size = output_size(info, s.fast_max_side)
        slow_size = output_size(info, s.slow_max_side, s.slow_max_pixels)
        total = max(info.duration, 1e-3)
        prog.task("decode", total, f"{rate:g} fps")
        last_slow_bucket = -1
        n_fast = n_slow = 0
        frames = decode_frames(
            info, rate, max_side, s.stall_timeout_s, max_pixels=max_pixels, stats=stats
        )
        for df in frames:
            live_fast = [f for f in fast if not f.closed.is_set()]
            live_slow = [f for f in slow if not f.closed.is_set()]
            if not live_fast and not live_slow:
                break  # every consumer stopped early: no point decoding on
            if live_fast:
                img = df.image if fast_size == decode_size else _resize(df.image, fast_size)
                fr = Frame(n_fast, df.t, img, fast_size[0] / info.width)
                n_fast += 1
                for f in live_fast:
                    f.put(("fast", fr))
            bucket = int(df.t * s.slow_fps + 1e-6)
            if live_slow and bucket > last_slow_bucket:
                last_slow_bucket = bucket
                img = df.image if slow_size == decode_size else _resize(df.image, slow_size)
                fr = Frame(n_slow, df.t, img, slow_size[0] / info.width)
                n_slow += 1
                for f in live_slow:
                    f.put(("slow", fr))
            prog.update("decode", completed=min(df.t, total))
        prog.update("decode", completed=total, status=f"{n_fast} fast, {n_slow} slow frames")

    def _work(self, run: _Run, media: _Media, prog: _Progress) -> None:
        p = run.perceiver
        t0 = time.perf_counter()
        options = p.options.model_dump(mode="json")
        entry = CacheEntry(
            key=run.key,
            provenance=Provenance(
                name=p.name, version=p.version, status="ok", options=options, model=run.model
            ),
        )
        try:
            p.ensure_loaded()
            for obs in p.perceive(media):
                if isinstance(obs, ObjectTrack):
                    entry.objects.append(obs)
                elif isinstance(obs, SpeechSegment):
                    entry.speech.append(obs)
                elif isinstance(obs, Event):
                    entry.events.append(obs)
                else:
                    raise TypeError(
                        f"perceiver yielded {type(obs).__name__}; "
                        "expected ObjectTrack, SpeechSegment or Event"
                    )
            _check_ids(entry)
        except PerceiverSkipped as e:
            entry = CacheEntry(key=run.key, provenance=entry.provenance)
            entry.provenance.status = "skipped"
            entry.provenance.reason = str(e)
        except Exception as e:
            log.debug("perceiver %s failed:\n%s", p.name, traceback.format_exc())
            entry = CacheEntry(key=run.key, provenance=entry.provenance)
            entry.provenance.status = "failed"
            entry.provenance.reason = f"{type(e).__name__}: {e}".strip()
        finally:
            if run.feed is not None:
                run.feed.closed.set()
        entry.provenance.seconds = round(time.perf_counter() - t0, 3)
        entry.provenance.items = len(entry.objects) + len(entry.speech) + len(entry.events)
        run.result = entry
        status = entry.provenance.status
        prog.update(p.name, completed=1, status=f"{status} ({entry.provenance.items} items)")


def _check_ids(entry: CacheEntry) -> None:
    seen: set[str] = set()
    for o in entry.objects:
        if o.id in seen:
            raise ValueError(f"object id {o.id} returned twice")
        seen.add(o.id)


def _merge(ctx: VideoContext, entry: CacheEntry) -> None:
    """Add one result to the record, or mark it failed (and add nothing) when its object ids
    clash with another perceiver's or its events name objects that are in neither."""
    existing = {o.id for o in ctx.objects}
    clash = [o.id for o in entry.objects if o.id in existing]
    if clash:
        entry.provenance.status = "failed"
        entry.provenance.reason = f"object ids already used by another perceiver: {clash[:5]}"
        return
    unknown = unknown_object_ids(entry.events, existing | {o.id for o in entry.objects})
    if unknown:
        entry.provenance.status = "failed"
        entry.provenance.reason = f"events name object ids not in the record: {unknown[:5]}"
        return
    ctx.objects.extend(o.model_copy(deep=True) for o in entry.objects)
    ctx.speech.extend(s.model_copy(deep=True) for s in entry.speech)
    ctx.events.extend(e.model_copy(deep=True) for e in entry.events)


def textualize(
    path: str | os.PathLike[str],
    profile: str | Profile | None = None,
    *,
    progress: bool = False,
    cache: bool = True,
    strict: bool = False,
) -> VideoContext:
    """Turn a video into its record with a profile (default: ``offline``)."""
    return Pipeline(profile, cache=cache, strict=strict, progress=progress).run(path)
