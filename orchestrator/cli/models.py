"""``vidchat models [--profile NAME]``: every model a profile names, where it would come from,
and whether it can be used now (offline). Nothing is downloaded or loaded.

Models named by a profile: each perceiver option called ``model`` (with the perceiver's own
default when the profile leaves it out) and the LLM (``llm.model``, by backend).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict
from typing import TextIO, TypedDict

from vidchat.pipeline.inventory import ProfileModel, profile_models
from vidchat.pipeline.profiles import Profile, load_profile

__all__ = ["LlamaNote", "add_commands", "llama_cpp_note", "main", "run"]


def _render(rows: list[ProfileModel], profile: Profile, out: TextIO) -> None:
    print(f"profile {profile.name} ({profile.source or 'given'})", file=out)
    width = max(len(r.status.name) for r in rows)
    users = max(len(r.user) for r in rows)
    for r in rows:
        s = r.status
        mark = "yes" if s.available else "no "
        print(f"  {r.user:<{users}}  {s.name:<{width}}  {s.origin:<7}  now: {mark}  {s.detail}",
              file=out)  # fmt: skip
        if (s.available and s.origin != "hub") or s.origin == "local":
            print(f"  {'':<{users}}  -> {s.where}", file=out)
        if s.licence:
            print(f"  {'':<{users}}  licence: {s.licence}; source: {s.source}", file=out)
        if not r.perceiver_ok:
            print(f"  {'':<{users}}  perceiver unavailable: {r.perceiver_reason}", file=out)


class LlamaNote(TypedDict):
    """What `vidchat models` says about the local LLM's llama.cpp build."""

    system_info: str  # llama.cpp's own report of the CPU features it was built for
    unused_cpu_features: list[str]  # features this CPU has that the build does not use


def llama_cpp_note() -> LlamaNote | None:
    """The installed llama.cpp build (the local LLM's server) against this CPU, or None when
    xllamacpp is not installed."""
    try:
        from vidchat.llm.server import llama_build

        build = llama_build()
    except ImportError:
        return None
    return {"system_info": build.system_info, "unused_cpu_features": sorted(build.unused)}


def _render_llama(note: LlamaNote, out: TextIO) -> None:
    unused = note["unused_cpu_features"]
    if unused:
        features = ", ".join(unused)
        print(f"llama.cpp (local LLM) is a build that leaves this CPU's {features} unused: the "
              "set-up (`bash .ci/setup`) compiles it for this CPU (prefill about 1.6x faster)",
              file=out)  # fmt: skip
    else:
        print("llama.cpp (local LLM) uses every CPU feature it knows on this machine", file=out)


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """The ``models`` command: a table (or JSON) of the profile's models; exit status 0."""
    out = out or sys.stdout
    profile = load_profile(args.profile)
    rows = profile_models(profile)
    if args.format == "json":
        data = [
            {"user": r.user, **asdict(r.status), "perceiver_ok": r.perceiver_ok,
             "perceiver_reason": r.perceiver_reason}
            for r in rows
        ]  # fmt: skip
        doc = {"profile": profile.name, "models": data, "llama_cpp": llama_cpp_note()}
        print(json.dumps(doc, indent=1), file=out)
    else:
        _render(rows, profile, out)
        note = llama_cpp_note()
        if note is not None:
            _render_llama(note, out)
    return 0


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``models`` to the ``vidchat`` command line (handler set as ``func``)."""
    m = sub.add_parser(
        "models", help="the models a profile names, where they come from, whether they are here"
    )
    m.add_argument("--profile", default=None, help="profile name or YAML file (default offline)")
    m.add_argument("--format", choices=["text", "json"], default="text")
    m.set_defaults(func=run)


def main(argv: Sequence[str] | None = None) -> int:
    """``vidchat models`` through the ``vidchat`` command line (one place for error handling)."""
    from vidchat.cli.main import main as cli_main

    return cli_main(argv)
