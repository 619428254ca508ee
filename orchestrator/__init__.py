"""vidchat's orchestrator: video I/O, the record, the pipeline, rendering, the CLI.

Public API::

    from orchestrator import textualize, render, VideoContext
    ctx = textualize("video.mp4", profile="offline")
    print(render(ctx, budget_tokens=3000).text)
    ctx = zoom(ctx, 12, 22, perceivers=["detect", "ocr"], fps=10).context  # a closer look

These imports are light (pydantic, numpy): models load only when a perceiver runs.
"""

from __future__ import annotations

# `render` and `zoom` are both submodules and functions: importing the function here, after the
# submodule, makes `orchestrator.render` the function for every caller.
from orchestrator.pipeline import Pipeline, textualize
from orchestrator.profiles import load_profile
from orchestrator.record import VideoContext
from orchestrator.render import render
from orchestrator.zoom import zoom

__all__ = ["Pipeline", "VideoContext", "load_profile", "render", "textualize", "zoom"]
