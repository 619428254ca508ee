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

`plan_levels` is the public plan of those levels (batch sizes its Ray actors by it, zoom plans
with it). A run reports typed progress events (`vidchat.pipeline.events`) to its subscribers:
``run(on_event=...)``, the stderr display (`vidchat.pipeline.progress`), the web app.

Each perceiver's result is cached by content (see `vidchat.kernel.cache`), under a key that folds
in the identities of the upstream results it read; a failing perceiver is recorded in provenance
and the others go on (`strict=True` makes any failure fatal). A result whose events or masks
name object ids that no perceiver produced, or whose masks are not at the video's full
resolution, is refused (recorded as failed), so the record never holds them. Masks
(`ObjectMask`) go onto the tracks of the objects they name (`vidchat.kernel.record.attach_mask`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
import time
import traceback
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from vidchat.kernel.cache import Cache, CacheEntry, cache_key
from vidchat.kernel.errors import ConfigError, PerceiverSkipped, VidchatError
from vidchat.kernel.record import (
    UNAVAILABLE,
    Event,
    ObjectMask,
    ObjectTrack,
    Provenance,
    SpeechSegment,
    VideoContext,
    VideoInfo,
    attach_mask,
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
from vidchat.perceivers.base import Frame, FrameStreamName, Perceiver
from vidchat.pipeline.events import (
    DecodeFinished,
    DecodeStarted,
    Done,
    EventSink,
    FramesDecoded,
    LevelStarted,
    OnEvent,
    PerceiverFinished,
    PerceiverStarted,
    Probed,
)
from vidchat.pipeline.profiles import Profile, load_profile
from vidchat.pipeline.progress import stderr_display

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

    def __iter__(self) -> Iterator[tuple[FrameStreamName, Frame]]:
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

    def frames_all(self) -> Iterator[tuple[FrameStreamName, Frame]]:
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
    level: int = 0
    feed: _Feed | None = None
    result: CacheEntry | None = None
    seconds: float = 0.0


class PlanItem(Protocol):
    """What planning needs of a perceiver (class or instance): its name and requirements."""

    @property
    def name(self) -> str: ...

    @property
    def requires(self) -> tuple[str, ...]: ...


Plannable = PlanItem | type[Perceiver]  # instances (and duck types), or perceiver classes


def plan_levels(
    perceivers: Iterable[Plannable] | Mapping[str, Plannable],
    *,
    given: Collection[str] = (),
) -> list[list[str]]:
    """Perceiver names in dependency levels: each level requires only earlier levels' results.

    `perceivers` are perceiver classes or instances (named by their ``name``), or a mapping
    from the name each is registered under to its class or instance. `given` names results that
    exist already (a zoom reads its dependencies from the record): a requirement in it is met
    without being planned. Within a level, names keep the order they were given in; the
    perceivers of one level share one decode and run side by side.

    ConfigError when a perceiver requires one that is neither planned nor given, or when
    requirements form a cycle (both messages name the perceivers).
    """
    items: dict[str, Plannable] = (
        dict(perceivers) if isinstance(perceivers, Mapping) else {p.name: p for p in perceivers}
    )
    ready = set(given)
    for name, p in items.items():
        for dep in p.requires:
            if dep not in items and dep not in ready:
                raise ConfigError(
                    f"perceiver {name} requires {dep}, which the profile does not enable"
                )
    levels: list[list[str]] = []
    remaining = list(items)
    while remaining:
        level = [n for n in remaining if all(d in ready for d in items[n].requires)]
        if not level:
            raise ConfigError(f"perceivers depend on each other in a cycle: {', '.join(remaining)}")
        levels.append(level)
        ready.update(level)
        remaining = [n for n in remaining if n not in level]
    return levels


def _resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    import cv2

    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


class Pipeline:
    """A profile's perceivers, instantiated once and reusable across videos (models stay loaded).

    `progress=True` shows progress on stderr (a rich bar on a terminal, plain lines otherwise);
    `run(on_event=...)` hands the same typed events to any other subscriber.
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
        by_name = {p.name: p for p in self.perceivers}
        self.plan: list[list[str]] = plan_levels(self.perceivers)
        """Perceiver names by dependency level (`plan_levels`)."""
        self.levels: list[list[Perceiver]] = [[by_name[n] for n in lv] for lv in self.plan]

    @property
    def sampling(self) -> Sampling:
        return self.profile.sampling

    def run(
        self,
        path: str | os.PathLike[str],
        *,
        on_event: OnEvent | Iterable[OnEvent] | None = None,
    ) -> VideoContext:
        """Textualize one video; InputError for a file that is not a usable video.

        `on_event`: a callable (or several) that receives the run's progress events
        (`vidchat.pipeline.events`), beside the stderr display when `progress` is on.
        """
        subscribers: list[OnEvent] = []
        if isinstance(on_event, Iterable):
            subscribers.extend(on_event)
        elif on_event is not None:
            subscribers.append(on_event)
        with contextlib.ExitStack() as stack:
            if self.progress:
                display = stderr_display()
                stack.enter_context(display)
                subscribers.append(display)
            return self._run(Path(path), EventSink(subscribers))

    def _run(self, path: Path, sink: EventSink) -> VideoContext:
        t0 = time.perf_counter()
        info = probe(path, audio_track=self.sampling.audio_track)
        sink.emit(Probed(info=info, levels=tuple(tuple(lv) for lv in self.plan)))
        ctx = VideoContext(video=info, profile=self.profile.name)
        provenance: dict[str, Provenance] = {}
        done: dict[str, CacheEntry] = {}  # each perceiver's result, once merged
        for index, level in enumerate(self.levels):
            sink.emit(LevelStarted(index, len(self.levels), tuple(p.name for p in level)))
            todo: list[_Run] = []
            for p in level:
                upstream = {dep: done[dep].identity() for dep in p.requires}
                run = self._prepare(p, info, upstream, index)
                if run.result is not None:
                    provenance[p.name] = run.result.provenance
                    _merge(ctx, run.result)
                    done[p.name] = run.result
                    sink.emit(PerceiverFinished.of(run.result.provenance, index))
                else:
                    todo.append(run)
            groups = [todo] if self.shared_decode else [[r] for r in todo]
            for group in groups:
                if group:
                    self._run_group(group, info, ctx, sink)
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
        sink.emit(Done(record=ctx, seconds=round(time.perf_counter() - t0, 3)))
        return ctx

    # -- one perceiver: cache lookup, availability ----------------------------------------------

    def _prepare(self, p: Perceiver, info: VideoInfo, upstream: dict[str, str], level: int) -> _Run:
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
        run = _Run(perceiver=p, key=key, model=model, level=level)
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
        self, runs: list[_Run], info: VideoInfo, ctx: VideoContext, sink: EventSink
    ) -> None:
        audio = _SharedAudio(info)
        snapshot = ctx.model_copy(deep=True)  # upstream results, read-only for the perceivers
        if not self.parallel and len(runs) > 1:
            self._run_group_in_turn(runs, info, audio, snapshot, sink)
            return
        for r in runs:
            r.feed = _Feed() if r.perceiver.inputs & {"slow", "fast"} else None
        threads = []
        for r in runs:
            media = _Media(info, r.feed, audio, snapshot, r.perceiver.inputs)
            sink.emit(PerceiverStarted(r.perceiver.name, r.level))
            t = threading.Thread(
                target=self._work, args=(r, media, sink), name=f"perceiver-{r.perceiver.name}",
                daemon=True,
            )  # fmt: skip
            t.start()
            threads.append(t)
        decode_error: BaseException | None = None
        stats = DecodeStats()
        try:
            self._decode_into(runs, info, sink, stats)
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
        sink: EventSink,
    ) -> None:
        """The `parallel=False` baseline: one decode into unbounded feeds (each frame object
        shared by every feed of its stream), the first perceiver working beside the decode as
        each perceiver does beside its own decode in the naive mode, then the others in turn."""
        for r in runs:
            r.feed = _Feed(maxsize=0) if r.perceiver.inputs & {"slow", "fast"} else None

        def work(r: _Run) -> None:
            sink.emit(PerceiverStarted(r.perceiver.name, r.level))
            self._work(r, _Media(info, r.feed, audio, snapshot, r.perceiver.inputs), sink)

        first = threading.Thread(target=work, args=(runs[0],), daemon=True)
        first.start()
        stats = DecodeStats()
        try:
            self._decode_into(runs, info, sink, stats)
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
        self, runs: list[_Run], info: VideoInfo, sink: EventSink, stats: DecodeStats
    ) -> None:
        fast = [r.feed for r in runs if r.feed is not None and "fast" in r.perceiver.inputs]
        slow = [r.feed for r in runs if r.feed is not None and "slow" in r.perceiver.inputs]
        if not fast and not slow:
            return
        level = runs[0].level
        readers = tuple(r.perceiver.name for r in runs if r.feed is not None)
        s = self.sampling
        rate = max(s.fast_fps if fast else 0.0, s.slow_fps if slow else 0.0)
        max_side = s.slow_max_side if slow else s.fast_max_side
        max_pixels = s.slow_max_pixels if slow else None
        decode_size = output_size(info, max_side, max_pixels)
        fast_size = output_size(info, s.fast_max_side)
        slow_size = output_size(info, s.slow_max_side, s.slow_max_pixels)
        total = max(info.duration, 1e-3)
        sink.emit(DecodeStarted(level, readers, rate, total))
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
            if sink:
                sink.emit(FramesDecoded(level, min(df.t, total), total, n_fast, n_slow))
        sink.emit(DecodeFinished(level, n_fast, n_slow, stats.warning()))

    def _work(self, run: _Run, media: _Media, sink: EventSink) -> None:
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
                elif isinstance(obs, ObjectMask):
                    entry.masks.append(obs)
                else:
                    raise TypeError(
                        f"perceiver yielded {type(obs).__name__}; "
                        "expected ObjectTrack, SpeechSegment, Event or ObjectMask"
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
        entry.provenance.items = entry_items(entry)
        run.result = entry
        sink.emit(PerceiverFinished.of(entry.provenance, run.level))


def _check_ids(entry: CacheEntry) -> None:
    seen: set[str] = set()
    for o in entry.objects:
        if o.id in seen:
            raise ValueError(f"object id {o.id} returned twice")
        seen.add(o.id)


def entry_items(entry: CacheEntry) -> int:
    """How many observations a result holds (its provenance's ``items``)."""
    return len(entry.objects) + len(entry.speech) + len(entry.events) + len(entry.masks)


def _merge(ctx: VideoContext, entry: CacheEntry) -> None:
    """Add one result to the record, or mark it failed (and add nothing) when its object ids
    clash with another perceiver's, its events or masks name objects that are in neither, or
    its masks are not at the video's full resolution."""
    existing = {o.id for o in ctx.objects}
    clash = [o.id for o in entry.objects if o.id in existing]
    if clash:
        entry.provenance.status = "failed"
        entry.provenance.reason = f"object ids already used by another perceiver: {clash[:5]}"
        return
    known = existing | {o.id for o in entry.objects}
    masked = dict.fromkeys(m.object_id for m in entry.masks)
    for what, unknown in (
        ("events", unknown_object_ids(entry.events, known)),
        ("masks", [oid for oid in masked if oid not in known]),
    ):
        if unknown:
            entry.provenance.status = "failed"
            entry.provenance.reason = f"{what} name object ids not in the record: {unknown[:5]}"
            return
    size = (ctx.video.height, ctx.video.width)
    wrong = next((m for m in entry.masks if m.mask.size != size), None)
    if wrong is not None:
        h, w = wrong.mask.size
        entry.provenance.status = "failed"
        entry.provenance.reason = (
            f"mask of {wrong.object_id} at {wrong.t:g} s is {w}x{h}; expected the video's "
            f"full resolution {size[1]}x{size[0]}"
        )
        return
    ctx.objects.extend(o.model_copy(deep=True) for o in entry.objects)
    ctx.speech.extend(s.model_copy(deep=True) for s in entry.speech)
    ctx.events.extend(e.model_copy(deep=True) for e in entry.events)
    by_id = {o.id: o for o in ctx.objects}
    for m in entry.masks:
        attach_mask(by_id[m.object_id], m.t, m.mask.model_copy(deep=True))


def textualize(
    path: str | os.PathLike[str],
    profile: str | Profile | None = None,
    *,
    progress: bool = False,
    cache: bool = True,
    strict: bool = False,
    on_event: OnEvent | Iterable[OnEvent] | None = None,
) -> VideoContext:
    """Turn a video into its record with a profile: a built-in name (default ``offline``), a
    YAML path or a `Profile`. `progress` shows it on stderr; `on_event` receives the typed
    progress events (`vidchat.pipeline.events`); `cache=False` recomputes every perceiver;
    `strict=True` makes any perceiver's failure a `PipelineError`."""
    pipeline = Pipeline(profile, cache=cache, strict=strict, progress=progress)
    return pipeline.run(path, on_event=on_event)
