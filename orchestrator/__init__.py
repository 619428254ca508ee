"""vidchat's orchestrator: video I/O, the record, the pipeline, rendering, the CLI.

Public API (imports are lazy so `import orchestrator` stays cheap)::

    from orchestrator import textualize, VideoContext, render
    ctx = textualize("video.mp4", profile="offline")
    print(render(ctx).text)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["VideoContext", "load_profile", "render", "textualize"]

if TYPE_CHECKING:
    from orchestrator.pipeline import textualize
    from orchestrator.profiles import load_profile
    from orchestrator.record import VideoContext
    from orchestrator.render import render


def __getattr__(name: str) -> Any:
    if name == "textualize":
        from orchestrator.pipeline import textualize

        return textualize
    if name == "VideoContext":
        from orchestrator.record import VideoContext

        return VideoContext
    if name == "render":
        from orchestrator.render import render

        return render
    if name == "load_profile":
        from orchestrator.profiles import load_profile

        return load_profile
    raise AttributeError(f"module 'orchestrator' has no attribute {name!r}")
