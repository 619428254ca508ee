"""Prompt templates as data, and the loader that renders them.

Each prompt is a YAML file in this folder (or anywhere, given a path)::

    name: chat
    description: what the prompt is for
    parts:
      system: |
        You are ...
      record: |
        <record>
        {{ record | data }}
        </record>

Parts are Jinja templates rendered with `StrictUndefined`: a variable the caller did not pass is
an error that names the template, the part and the variable, never a silently empty string.
A ``.j2`` file is a prompt with a single part named ``main``.

Text that comes from the video (speech, on-screen text, captions) is untrusted: a template puts
it inside a delimited data block through the ``data`` filter, which escapes ``<``, ``>`` (and an
``&`` that would otherwise read as one of those escapes) so no text in the video can close the
block or open a new one. The escape is HTML's, so it stays readable and `unescape_data` reverses
it exactly.
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vidchat.kernel.errors import ConfigError

__all__ = [
    "PROMPTS_DIR",
    "Prompt",
    "PromptError",
    "available_prompts",
    "escape_data",
    "load_prompt",
    "render_prompt",
    "unescape_data",
]

PROMPTS_DIR = Path(__file__).resolve().parent

# An ampersand is escaped only where it would be read back as one of our escapes; every other
# "&" (as in "Tom & Jerry") stays as it is, which keeps ordinary text readable for small models.
_ESCAPE_RE = re.compile(r"[<>]|&(?=(?:lt|gt|amp);)")
_ESCAPES = {"<": "&lt;", ">": "&gt;", "&": "&amp;"}
_UNESCAPE_RE = re.compile(r"&(lt|gt|amp);")
_UNESCAPES = {"lt": "<", "gt": ">", "amp": "&"}


class PromptError(ConfigError):
    """A prompt template is missing, malformed, or was rendered without a variable it needs."""


def escape_data(text: str) -> str:
    """Make untrusted text safe to place inside a delimited data block (reversible)."""
    return _ESCAPE_RE.sub(lambda m: _ESCAPES[m.group(0)[0]], str(text))


def unescape_data(text: str) -> str:
    """Exact inverse of `escape_data`."""
    return _UNESCAPE_RE.sub(lambda m: _UNESCAPES[m.group(1)], text)


@functools.lru_cache(maxsize=1)
def _environment() -> Any:
    import jinja2

    env = jinja2.Environment(
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # prompts are plain text; untrusted data goes through `data`
        keep_trailing_newline=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["data"] = escape_data
    return env


@dataclass(frozen=True)
class Prompt:
    """One prompt file: named parts, each a Jinja template."""

    name: str
    path: Path
    description: str
    parts: dict[str, str]
    meta: dict[str, Any] = field(default_factory=dict)

    def variables(self, part: str) -> set[str]:
        """The top-level variables a part needs."""
        from jinja2 import meta

        return set(meta.find_undeclared_variables(_environment().parse(self._source(part))))

    def render(self, part: str, /, **variables: Any) -> str:
        """Render one part; PromptError names the template, the part and any missing variable."""
        import jinja2

        missing = sorted(self.variables(part) - variables.keys())
        if missing:
            given = ", ".join(sorted(variables)) or "none"
            raise PromptError(
                f"prompt {self.where(part)} needs variable(s) {', '.join(missing)} "
                f"that were not given (given: {given})"
            )
        try:
            template = _environment().from_string(self._source(part))
            return template.render(**variables).strip("\n")
        except jinja2.UndefinedError as e:
            # Reached for a missing attribute or key of a variable that was given.
            raise PromptError(f"prompt {self.where(part)}: {e.message}") from None
        except jinja2.TemplateError as e:
            raise PromptError(f"prompt {self.where(part)}: {e}") from None

    def where(self, part: str) -> str:
        return f"{self.path.name}:{part}"

    def _source(self, part: str) -> str:
        try:
            return self.parts[part]
        except KeyError:
            raise PromptError(
                f"prompt {self.path.name} has no part {part!r} (parts: {', '.join(self.parts)})"
            ) from None


def available_prompts() -> list[str]:
    """Names of the prompts shipped with vidchat."""
    return sorted(p.stem for p in PROMPTS_DIR.iterdir() if p.suffix in (".yaml", ".j2"))


def load_prompt(name_or_path: str | os.PathLike[str]) -> Prompt:
    """Load a shipped prompt by name (``chat``) or any prompt file by path."""
    text = os.fspath(name_or_path)
    candidate = Path(os.path.expanduser(text))
    path: Path | None
    if candidate.suffix in (".yaml", ".yml", ".j2") or os.sep in text:
        path = candidate
        if not path.is_file():
            raise PromptError(f"prompt file not found: {path}")
    else:
        path = next(
            (
                PROMPTS_DIR / f"{text}{ext}"
                for ext in (".yaml", ".j2")
                if (PROMPTS_DIR / f"{text}{ext}").is_file()
            ),
            None,
        )
        if path is None:
            raise PromptError(
                f"no prompt named {text!r}; shipped prompts: {', '.join(available_prompts())}"
            )
    return _load_file(path.resolve(), path.stat().st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _load_file(path: Path, mtime_ns: int) -> Prompt:
    # mtime is part of the cache key so an edited prompt file is picked up in a running REPL.
    import jinja2
    import yaml

    source = path.read_text(encoding="utf-8")
    if path.suffix == ".j2":
        prompt = Prompt(name=path.stem, path=path, description="", parts={"main": source})
    else:
        try:
            data = yaml.safe_load(source)
        except yaml.YAMLError as e:
            raise PromptError(f"prompt {path.name} is not valid YAML: {e}") from None
        if not isinstance(data, dict) or not isinstance(data.get("parts"), dict):
            raise PromptError(
                f"prompt {path.name}: expected a mapping with 'parts' (name -> template), "
                f"got {type(data).__name__}"
            )
        parts = data["parts"]
        bad = [k for k, v in parts.items() if not isinstance(v, str)]
        if bad:
            raise PromptError(
                f"prompt {path.name}: part(s) {', '.join(map(str, bad))} are not text"
            )
        meta = {k: v for k, v in data.items() if k not in ("name", "description", "parts")}
        prompt = Prompt(
            name=str(data.get("name") or path.stem),
            path=path,
            description=str(data.get("description") or ""),
            parts=dict(parts),
            meta=meta,
        )
    # Syntax errors surface at load time, not in the middle of a conversation.
    for part in prompt.parts:
        try:
            _environment().parse(prompt.parts[part])
        except jinja2.TemplateSyntaxError as e:
            raise PromptError(f"prompt {prompt.where(part)} line {e.lineno}: {e.message}") from None
    return prompt


def render_prompt(name: str, part: str, /, **variables: Any) -> str:
    """Shortcut: ``load_prompt(name).render(part, **variables)``."""
    return load_prompt(name).render(part, **variables)
