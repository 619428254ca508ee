"""The public Python API's entry points that span layers (``vidchat.open``, ``vidchat.chat``,
``vidchat.batch``). Each accepts the strings the CLI accepts; heavy layers load on first call."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vidchat.perceivers import register_perceiver

if TYPE_CHECKING:
    from collections.abc import Iterable

    from langchain_core.language_models import BaseChatModel

    from vidchat.apps.batch import BatchSummary
    from vidchat.conversation.session import ChatSession
    from vidchat.kernel.llm_config import LLMConfig
    from vidchat.kernel.record import VideoContext
    from vidchat.pipeline.events import OnEvent
    from vidchat.pipeline.profiles import Profile

__all__ = ["batch", "chat", "open", "register_perceiver"]


def open(
    path: str | os.PathLike[str],
    profile: str | Profile | None = None,
    *,
    progress: bool = False,
    on_event: OnEvent | Iterable[OnEvent] | None = None,
) -> VideoContext:
    """A saved record (``record.json``; an older schema is upgraded as it is read) or a video,
    textualized with `profile` (a built-in name, a YAML path or a `Profile`; through the cache).

    `progress` shows the textualization on stderr; `on_event` receives its typed progress
    events (`vidchat.pipeline.events`). InputError for a missing file or an invalid record.
    """
    from vidchat.pipeline.open import open_context

    return open_context(Path(path), profile, progress=progress, on_event=on_event)


def chat(
    target: VideoContext | str | os.PathLike[str],
    llm: str | LLMConfig | BaseChatModel | None = None,
    *,
    profile: str | Profile | None = None,
    **options: Any,
) -> ChatSession:
    """A chat session over a record, a saved record or a video (textualized first).

    `llm` is a flag string as on the command line (``local``, ``local:PATH``,
    ``openai:gpt-4o-mini``, ``openai-compatible:URL@MODEL``, a bare URL), an `LLMConfig`, or any
    langchain chat model; None: the profile's LLM after the environment's overrides. `options`
    go to `ChatSession` (``budget_tokens``, ``use_facts``, …).
    """
    from langchain_core.language_models import BaseChatModel

    from vidchat.conversation.session import ChatSession
    from vidchat.kernel.llm_config import LLMConfig
    from vidchat.kernel.record import VideoContext
    from vidchat.llm.config import resolve_llm_config
    from vidchat.pipeline.profiles import load_profile

    prof = load_profile(profile)
    ctx = target if isinstance(target, VideoContext) else open(target, prof)
    model: LLMConfig | BaseChatModel
    if isinstance(llm, (LLMConfig, BaseChatModel)):
        model = llm
    else:
        model = resolve_llm_config(prof.llm, llm)
    return ChatSession(ctx, llm=model, profile=prof, **options)


def batch(
    inputs: Sequence[str | os.PathLike[str]] | str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    **options: Any,
) -> BatchSummary:
    """Textualize many videos (files, folders, list files) into `out_dir`, resumably.

    `options` are `vidchat.apps.batch.run_batch`'s (``profile``, ``workers``, ``engine``,
    ``resume``, ``timeout_per_video``, …).
    """
    from vidchat.apps.batch import run_batch

    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    return run_batch(list(inputs), out_dir, **options)
