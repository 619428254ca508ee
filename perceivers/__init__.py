"""Perception modules. Each is registered through the ``vidchat.perceivers`` entry-point group
(built-ins included), so a plugin package adds a perceiver by declaring one entry point::

    [project.entry-points."vidchat.perceivers"]
    mine = "my_pkg.module:MyPerceiver"
"""

from __future__ import annotations

import importlib.metadata as md

from orchestrator.errors import ConfigError
from perceivers.base import Availability, Frame, Media, Perceiver, PerceiverOptions

__all__ = [
    "Availability",
    "Frame",
    "Media",
    "Perceiver",
    "PerceiverOptions",
    "available_perceivers",
    "get_perceiver",
]

GROUP = "vidchat.perceivers"


def available_perceivers() -> dict[str, md.EntryPoint]:
    """Registered perceivers by name (not yet imported)."""
    return {ep.name: ep for ep in md.entry_points(group=GROUP)}


def get_perceiver(name: str) -> type[Perceiver]:
    """The perceiver class registered under `name`; a ConfigError lists the registered ones."""
    eps = available_perceivers()
    if name not in eps:
        known = ", ".join(sorted(eps)) or "none (is vidchat installed? pip install -e .)"
        raise ConfigError(f"unknown perceiver {name!r}; registered: {known}")
    cls = eps[name].load()
    if not (isinstance(cls, type) and issubclass(cls, Perceiver)):
        raise ConfigError(f"entry point {name!r} ({eps[name].value}) is not a Perceiver subclass")
    return cls
