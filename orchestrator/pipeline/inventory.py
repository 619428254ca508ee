"""Which models a profile names, where each would come from, and whether it can be used now.

Models named by a profile: each perceiver option called ``model`` (with the perceiver's own
default when the profile leaves it out) and the LLM (``llm.model``, by backend). Nothing is
downloaded or loaded. ``vidchat models`` prints this; the web app shows it per profile.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from vidchat.kernel.llm_config import DEFAULT_LOCAL_MODEL
from vidchat.kernel.models import ModelStatus, locate
from vidchat.pipeline.profiles import Profile

__all__ = ["ProfileModel", "profile_models"]


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
    from vidchat.perceivers import get_perceiver

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
