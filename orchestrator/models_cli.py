"""``vidchat models [--profile NAME]``: every model a profile names, where it would come from,
and whether it can be used now (offline). Nothing is downloaded or loaded.

Models named by a profile: each perceiver option called ``model`` (with the perceiver's own
default when the profile leaves it out) and the LLM (``llm.model``, by backend).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TextIO

from orchestrator.llm_config import DEFAULT_LOCAL_MODEL
from orchestrator.models import ModelStatus, locate
from orchestrator.profiles import Profile, load_profile

__all__ = ["ProfileModel", "add_commands", "main", "profile_models", "run"]


@dataclass(frozen=True)
class ProfileModel:
    """One model a profile uses: who uses it (a perceiver or ``llm``) and its status."""

    user: str
    status: ModelStatus
    perceiver_ok: bool = True  # the perceiver's own availability (packages, options)
    perceiver_reason: str | None = None


def _llm_status(profile: Profile) -> ModelStatus:
    llm = profile.llm
    if llm.backend == "local":
        return locate(llm.model or DEFAULT_LOCAL_MODEL)
    model = llm.model or "(server default)"
    if llm.backend == "openai":
        env = llm.api_key_env or "OPENAI_API_KEY"
        has_key = bool(os.environ.get(env))
        why = "API key set" if has_key else f"needs ${env}"
        return ModelStatus(model, "hub", "api.openai.com", has_key, f"OpenAI API; {why}")
    where = llm.base_url or "(no base_url)"
    return ModelStatus(
        model, "hub", where, llm.base_url is not None,
        "OpenAI-compatible server (not contacted here)",
    )  # fmt: skip


def profile_models(profile: Profile) -> list[ProfileModel]:
    """The models of a profile's perceivers (their `model` option) and of its LLM."""
    from perceivers import get_perceiver

    rows: list[ProfileModel] = []
    for name, opts in profile.perceivers.items():
        cls = get_perceiver(name)
        perceiver = cls(opts)
        model = getattr(perceiver.options, "model", None)
        if not isinstance(model, str):
            continue  # no weights (e.g. shots)
        av = perceiver.availability()
        rows.append(ProfileModel(name, locate(model), av.ok, av.reason))
    rows.append(ProfileModel("llm", _llm_status(profile)))
    return rows


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
        print(json.dumps({"profile": profile.name, "models": data}, indent=1), file=out)
    else:
        _render(rows, profile, out)
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``models`` to the ``vidchat`` command line (handler set as ``func``)."""
    m = sub.add_parser(
        "models", help="the models a profile names, where they come from, whether they are here"
    )
    m.add_argument("--profile", default=None, help="profile name or YAML file (default offline)")
    m.add_argument("--format", choices=["text", "json"], default="text")
    m.set_defaults(func=run)


def main(argv: Sequence[str] | None = None) -> int:
    """``vidchat models`` through the ``vidchat`` command line (one place for error handling)."""
    from orchestrator.cli import main as cli_main

    return cli_main(argv)
