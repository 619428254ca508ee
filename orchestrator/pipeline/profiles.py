"""YAML profiles: which perceivers run, with which models and options, how the record is
rendered and which LLM answers. ``offline`` (the default) uses only weights that ship in
registry packages; ``full`` names GPU and hub models for users with a network.

A profile is named (a file in the ``profiles`` package) or given as a path. Unknown keys and bad
values fail with the file, the key and what was expected.
"""

from __future__ import annotations

import importlib.resources
import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from vidchat.kernel.errors import ConfigError
from vidchat.kernel.llm_config import LLMConfig
from vidchat.kernel.video import Sampling

DEFAULT_PROFILE = "offline"


class RenderConfig(BaseModel):
    """How the record becomes the LLM's text."""

    model_config = ConfigDict(extra="forbid")

    budget_tokens: int = Field(3000, ge=200, description="most tokens the rendered record may use")
    window_s: float = Field(10.0, gt=0, description="timeline window length before merging")


class Profile(BaseModel):
    """A validated profile."""

    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    sampling: Sampling = Field(default_factory=Sampling)
    # perceiver name -> its options (None = the perceiver's defaults). Order is kept for display;
    # the pipeline orders execution by dependencies.
    perceivers: dict[str, dict[str, Any] | None] = Field(default_factory=dict)
    render: RenderConfig = Field(default_factory=RenderConfig)
    llm: LLMConfig = Field(default_factory=LLMConfig)
    source: str | None = Field(None, description="file the profile was read from")

    @field_validator("perceivers")
    @classmethod
    def _known_perceivers(cls, v: dict[str, dict[str, Any] | None]) -> dict[str, Any]:
        from vidchat.perceivers import get_perceiver

        for name, opts in v.items():
            # Validates the options against the perceiver's own Options model.
            get_perceiver(name).parse_options(opts)
        return v


def builtin_profiles() -> list[str]:
    """Names of the profiles that ship with vidchat."""
    files = importlib.resources.files("vidchat.profiles")
    return sorted(p.name[:-5] for p in files.iterdir() if p.name.endswith(".yaml"))


def _profile_text(name_or_path: str) -> tuple[str, str]:
    p = Path(os.path.expanduser(name_or_path))
    if p.suffix in (".yaml", ".yml") or os.sep in name_or_path:
        if not p.is_file():
            raise ConfigError(f"profile file not found: {p}")
        return p.read_text(encoding="utf-8"), str(p)
    res = importlib.resources.files("vidchat.profiles") / f"{name_or_path}.yaml"
    if not res.is_file():
        raise ConfigError(
            f"unknown profile {name_or_path!r}; built-in profiles: {', '.join(builtin_profiles())}"
            " (or give a path to a .yaml file)"
        )
    return res.read_text(encoding="utf-8"), f"profiles/{name_or_path}.yaml"


def load_profile(name_or_path: str | Profile | None = None) -> Profile:
    """Load and validate a profile by name or path (None: the default, ``offline``)."""
    if isinstance(name_or_path, Profile):
        return name_or_path
    text, source = _profile_text(name_or_path or DEFAULT_PROFILE)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{source}:{where} invalid YAML ({getattr(e, 'problem', e)})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping at the top, got {type(data).__name__}")
    data.setdefault("name", Path(source).stem)
    data["source"] = source
    return parse_profile(data, source)


def parse_profile(data: dict[str, Any], source: str = "<profile>") -> Profile:
    """Validate a profile given as a dict; errors name the source, the key and the problem."""
    try:
        return Profile.model_validate(data)
    except ValidationError as e:
        problems = []
        for err in e.errors():
            loc = ".".join(str(x) for x in err["loc"])
            if err["type"] == "extra_forbidden":
                problems.append(f"unknown key {loc!r}")
            else:
                msg = err["msg"].removeprefix("Value error, ")
                problems.append(
                    f"{loc}: {msg}"
                    + (f" (got {err['input']!r})" if err["type"] != "value_error" else "")
                )
        raise ConfigError(f"{source}: " + "; ".join(problems)) from None
    except ConfigError as e:
        raise ConfigError(f"{source}: {e}") from None
