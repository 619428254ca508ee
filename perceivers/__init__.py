"""Perception modules. The built-ins are listed in ``BUILTIN`` (the one place that names them);
a plugin package adds a perceiver by declaring one entry point in the ``vidchat.perceivers``
group::

    [project.entry-points."vidchat.perceivers"]
    mine = "my_pkg.module:MyPerceiver"

and a test or notebook registers a class directly with :func:`register_perceiver`.
"""

from __future__ import annotations

import importlib.metadata as md

from vidchat.kernel.errors import ConfigError
from vidchat.perceivers.base import Availability, Frame, Media, Perceiver, PerceiverOptions

__all__ = [
    "Availability",
    "Frame",
    "Media",
    "Perceiver",
    "PerceiverOptions",
    "available_perceivers",
    "get_perceiver",
    "register_perceiver",
]

GROUP = "vidchat.perceivers"


# Built-in perceivers by name, as "module:Class" targets. They are found from this table rather
# than from installed entry-point metadata so that a source checkout (or an editable install whose
# metadata predates a new perceiver) always sees exactly the perceivers its code defines.
BUILTIN: dict[str, str] = {
    "asr": "vidchat.perceivers.asr:ASRPerceiver",
    "detect": "vidchat.perceivers.detect:DetectPerceiver",
    "shots": "vidchat.perceivers.shots:ShotsPerceiver",
    "ocr": "vidchat.perceivers.ocr:OCRPerceiver",
    "tags": "vidchat.perceivers.tags:TagsPerceiver",
    "sam2": "vidchat.perceivers.sam2_masks:SAM2Perceiver",
    "caption": "vidchat.perceivers.caption:CaptionPerceiver",
    "region_caption": "vidchat.perceivers.caption:RegionCaptionPerceiver",
    "action": "vidchat.perceivers.action:ActionPerceiver",
    "speakers": "vidchat.perceivers.speakers:SpeakersPerceiver",
    "faces": "vidchat.perceivers.faces:FacesPerceiver",
}

_registered: dict[str, type[Perceiver]] = {}


def register_perceiver(name: str, cls: type[Perceiver]) -> None:
    """Make `cls` available under `name` in this process (tests, notebooks); it wins over a
    built-in or plugin of the same name."""
    if not (isinstance(cls, type) and issubclass(cls, Perceiver)):
        raise ConfigError(
            f"register_perceiver({name!r}) expected a Perceiver subclass, got {cls!r}"
        )
    _registered[name] = cls


def available_perceivers() -> dict[str, md.EntryPoint]:
    """Registered perceivers by name (not yet imported): built-ins, then installed plugins'
    entry points, then classes registered in this process (later ones win)."""
    found = {name: md.EntryPoint(name, target, GROUP) for name, target in BUILTIN.items()}
    found.update({ep.name: ep for ep in md.entry_points(group=GROUP)})
    for n, c in _registered.items():
        found[n] = md.EntryPoint(n, f"{c.__module__}:{c.__qualname__}", GROUP)
    return found


def get_perceiver(name: str) -> type[Perceiver]:
    """The perceiver class registered under `name`; a ConfigError lists the registered ones."""
    if name in _registered:  # a class object: it may be local to a test, not importable by name
        return _registered[name]
    eps = available_perceivers()
    if name not in eps:
        known = ", ".join(sorted(eps)) or "none (is vidchat installed? pip install -e .)"
        raise ConfigError(f"unknown perceiver {name!r}; registered: {known}")
    cls = eps[name].load()
    if not (isinstance(cls, type) and issubclass(cls, Perceiver)):
        raise ConfigError(f"entry point {name!r} ({eps[name].value}) is not a Perceiver subclass")
    return cls
