"""vidchat: ask questions about a video. Perception models turn it into a timestamped,
object-indexed record; an LLM answers from that record, citing times and object ids.

Public API::

    import vidchat

    ctx = vidchat.textualize("video.mp4", profile="offline")   # a video -> its record
    ctx = vidchat.open("video.mp4")                             # or a saved record.json
    print(ctx.render(budget_tokens=3000).text)                  # the text the LLM reads
    session = vidchat.chat(ctx, llm="local")                    # or "openai:gpt-4o-mini", a URL
    print(session.ask("who speaks first?").text)
    vidchat.batch(["videos/"], "out/", workers=2)               # many videos, resumable
    ctx = vidchat.zoom(ctx, 12, 22, perceivers=["detect", "ocr"], fps=10).context

The package is layered; each layer imports only those below it (checked in CI)::

    kernel        record, errors, timecode, atomic files, video I/O, weights registry, cache
    perceivers    perception modules (one per file) and their registry
    pipeline      profiles, the pipeline (levels, shared decode, progress events), zoom, open
    text          rendering the record, retrieval over long records, computed facts
    llm           LLM settings resolved, the client (any OpenAI-compatible server), the local server
    conversation  a chat over one record: prompts, evidence checking, the answer
    apps          batch, web app, pictures, instruction data, evaluation, MCP, fidelity suite;
                  embed_model (the VideoChat-Embed-style model) sits here too
    cli           the ``vidchat`` command (nothing imports it)

These imports are light (pydantic, numpy): models load only when a perceiver runs.
"""

from __future__ import annotations

from vidchat.api import batch, chat, open, register_perceiver
from vidchat.kernel.record import VideoContext
from vidchat.pipeline.core import Pipeline, plan_levels, textualize
from vidchat.pipeline.profiles import load_profile
from vidchat.pipeline.zoom import zoom
from vidchat.text.render import render

__all__ = [
    "Pipeline",
    "VideoContext",
    "batch",
    "chat",
    "load_profile",
    "open",
    "plan_levels",
    "register_perceiver",
    "render",
    "textualize",
    "zoom",
]
