"""Small real perceivers used to test the pipeline's mechanics (shared decode, dependencies,
failure isolation, caching) without loading a model. They compute real statistics of the frames
and audio they receive, so a wrong frame or time changes their output."""

from __future__ import annotations

import importlib.metadata as md
from collections.abc import Iterator

import numpy as np

from vidchat.kernel.errors import PerceiverSkipped
from vidchat.kernel.record import Event, ObjectTrack
from vidchat.perceivers.base import Media, Perceiver, PerceiverOptions


class BrightnessOptions(PerceiverOptions):
    every: int = 1


class Brightness(Perceiver):
    """One event per `every`-th slow frame with its mean brightness; counts fast frames."""

    name = "brightness"
    version = "1"
    Options = BrightnessOptions
    options: BrightnessOptions
    inputs = frozenset({"slow", "fast"})
    calls = 0

    def perceive(self, media: Media) -> Iterator[Event]:
        type(self).calls += 1
        fast = []
        for stream, f in media.frames_all():
            if stream == "fast":
                fast.append((f.t, f.image.shape))
                continue
            if f.index % self.options.every:
                continue
            yield Event(
                start=f.t,
                end=f.t,
                kind="brightness",
                text=f"{f.image.mean():.1f}",
                source=self.name,
                data={"w": f.image.shape[1], "h": f.image.shape[0]},
            )
        yield Event(
            start=0,
            end=fast[-1][0] if fast else 0,
            kind="fast_frames",
            text=str(len(fast)),
            source=self.name,
            data={
                "w": fast[0][1][1] if fast else 0,
                "times": ",".join(f"{t:.3f}" for t, _ in fast),
            },
        )


class Loudness(Perceiver):
    name = "loudness"
    version = "1"
    inputs = frozenset({"audio"})

    def perceive(self, media: Media) -> Iterator[Event]:
        a = media.audio()
        if a is None:
            raise PerceiverSkipped("video has no audio track")
        rms = float(np.sqrt(np.mean(a.astype(np.float64) ** 2))) if a.size else 0.0
        yield Event(
            start=0,
            end=a.size / 16000,
            kind="loudness",
            text=f"{rms:.4f}",
            source=self.name,
            data={"samples": int(a.size)},
        )


class Broken(Perceiver):
    name = "broken"
    version = "1"
    inputs = frozenset({"fast"})

    def perceive(self, media: Media) -> Iterator[Event]:
        for i, _f in enumerate(media.frames("fast")):
            if i == 2:
                raise RuntimeError("model exploded on frame 2")
        yield from ()


class Counter(Perceiver):
    """Requires brightness: reads its events from upstream."""

    name = "counter"
    version = "1"
    requires = ("brightness",)

    def perceive(self, media: Media) -> Iterator[Event]:
        n = sum(1 for e in media.upstream.events if e.kind == "brightness")
        yield Event(start=0, end=0, kind="count", text=str(n), source=self.name)


class Marker(Perceiver):
    """Requires brightness: one event per brightness event, naming an object ``spot#N`` that
    brightness never produced unless `own_objects` (then it adds them itself) — a downstream
    result that refers to objects by id, like sam2's masks on the detector's ``person#N``."""

    name = "marker"
    version = "1"
    requires = ("brightness",)
    own_objects = True

    def perceive(self, media: Media) -> Iterator[ObjectTrack | Event]:
        bright = [e for e in media.upstream.events if e.kind == "brightness"]
        for i, e in enumerate(bright, 1):
            if self.own_objects:
                yield ObjectTrack(id=f"spot#{i}", label="spot", first_seen=e.start,
                                  last_seen=e.end, source=self.name)  # fmt: skip
            yield Event(start=e.start, end=e.end, kind="mark", text=e.text, source=self.name,
                        objects=[f"spot#{i}"])  # fmt: skip


TOYS = {c.name: c for c in (Brightness, Loudness, Broken, Counter, Marker)}


def entry_points() -> dict[str, md.EntryPoint]:
    eps = {
        name: md.EntryPoint(name, f"{__name__}:{cls.__name__}", "vidchat.perceivers")
        for name, cls in TOYS.items()
    }
    return eps
