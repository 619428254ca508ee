"""The mypy configuration stays honest: vidchat's own code is never skipped or silenced, only
untyped third-party libraries are, and the pydantic plugin is on."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
OWN = ("vidchat", "orchestrator", "perceivers", "embed_model", "prompts", "profiles")


def _mypy_config() -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # Python 3.10: the same parser, from PyPI (mypy brings it)
        import tomli as tomllib
    config: dict[str, Any] = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["mypy"]
    return config


def test_the_pydantic_plugin_is_on_and_nothing_is_silenced_wholesale() -> None:
    config = _mypy_config()
    assert "pydantic.mypy" in config["plugins"]
    assert not config.get("ignore_errors") and not config.get("ignore_missing_imports")
    assert config.get("warn_unused_ignores") is True  # a stale ignore is an error
    for override in config.get("overrides", []):
        assert not override.get("ignore_errors"), f"errors ignored wholesale: {override}"


def test_only_third_party_imports_may_be_missing() -> None:
    for override in _mypy_config().get("overrides", []):
        modules = override["module"]
        modules = [modules] if isinstance(modules, str) else modules
        own = [m for m in modules if m.split(".")[0] in OWN]
        assert not own, f"vidchat's own modules in an override: {own}"
