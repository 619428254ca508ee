"""An in-memory `Media` for perceiver unit tests (the pipeline's real one decodes with ffmpeg)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from vidchat.kernel.record import VideoContext, VideoInfo
from vidchat.perceivers.base import Frame


def video_info(**kw) -> VideoInfo:
    base = dict(
        path="synthetic.mp4",
        sha256="0" * 64,
        size_bytes=0,
        duration=10.0,
        fps="25/1",
        width=320,
        height=240,
        has_audio=False,
    )
    base.update(kw)
    return VideoInfo(**base)


@dataclass
class ListMedia:
    info: VideoInfo
    slow: list[Frame] = field(default_factory=list)
    fast: list[Frame] = field(default_factory=list)
    audio_samples: np.ndarray | None = None
    context: VideoContext | None = None

    def frames(self, stream: str) -> Iterator[Frame]:
        return iter(self.slow if stream == "slow" else self.fast)

    def frames_all(self) -> Iterator[tuple[str, Frame]]:
        items = [("slow", f) for f in self.slow] + [("fast", f) for f in self.fast]
        return iter(sorted(items, key=lambda x: (x[1].t, x[0] == "slow")))

    def audio(self) -> np.ndarray | None:
        return self.audio_samples

    @property
    def upstream(self) -> VideoContext:
        return self.context or VideoContext(video=self.info)
