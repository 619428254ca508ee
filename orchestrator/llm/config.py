"""Which LLM answers: the settings in force (flag > environment > profile > defaults), the
``--llm`` flag syntax, and where an API key may be sent.

Pure configuration: nothing here loads a model or touches the network, so `describe` can
answer ``/llm`` instantly.
"""

from __future__ import annotations

import os
import re
from typing import Any
from urllib.parse import urlsplit

from vidchat.kernel.errors import ConfigError
from vidchat.kernel.llm_config import DEFAULT_LOCAL_MODEL, Backend, LLMConfig
from vidchat.kernel.models import SHIPPED, locate

__all__ = [
    "BACKENDS",
    "DEFAULT_OPENAI_KEY_ENV",
    "DEFAULT_OPENAI_MODEL",
    "OPENAI_BASE_URL",
    "OPENAI_HOST",
    "describe",
    "key_variable",
    "remote_model_name",
    "resolve_llm_config",
]

DEFAULT_OPENAI_MODEL = "gpt-4o-mini"
OPENAI_BASE_URL = "https://api.openai.com/v1"
OPENAI_HOST = "api.openai.com"
DEFAULT_OPENAI_KEY_ENV = "OPENAI_API_KEY"
BACKENDS: tuple[Backend, ...] = ("local", "openai", "openai-compatible")

_UNSET: Any = object()


def _check_url(url: str, where: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{where}: expected an http(s):// URL, got {url!r}")
    return url.rstrip("/")


def _split_url_model(text: str, where: str) -> tuple[str, Any]:
    """``http://host:8000/v1@my-model`` -> (URL, model); the ``@MODEL`` suffix is optional.

    An ``@`` inside the authority is user-info (``http://u:p@host/v1``) when a path follows it;
    with no path, ``http://host:8000@model`` reads as host plus model.
    """
    scheme, sep, rest = text.partition("://")
    if not sep:
        raise ConfigError(f"{where}: expected an http(s):// URL, got {text!r}")
    authority, slash, path = rest.partition("/")
    model: Any = _UNSET
    if slash and "@" in path:
        path, _, model = path.rpartition("@")
    elif not slash and "@" in authority:
        authority, _, model = authority.rpartition("@")
    if model is not _UNSET and not model:
        raise ConfigError(f"{where}: empty model name after '@' in {text!r}")
    url = f"{scheme}://{authority}{slash}{path}"
    return _check_url(url, where), model


_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _check_env_name(name: str, where: str) -> str:
    if not _ENV_NAME_RE.match(name):
        raise ConfigError(f"{where}: expected an environment variable name, got {name!r}")
    return name


def _split_key_env(flag: str) -> tuple[str, Any]:
    """``URL@MODEL#VAR`` -> (``URL@MODEL``, VAR): the variable holding that endpoint's key."""
    text = flag.strip()
    if "#" in text and text.startswith(("http://", "https://", "openai-compatible:")):
        text, _, env = text.rpartition("#")
        return text, _check_env_name(env, f"--llm {flag!r}")
    return text, _UNSET


def _parse_flag(flag: str) -> tuple[Backend, Any, Any]:
    """A ``--llm`` value as (backend, model or _UNSET, base_url or _UNSET)."""
    where = f"--llm {flag!r}"
    text = flag.strip()
    if text.startswith(("http://", "https://")):
        url, model = _split_url_model(text, where)
        return "openai-compatible", model, url
    backend, sep, arg = text.partition(":")
    if backend not in BACKENDS:
        raise ConfigError(
            f"{where}: expected local, local:PATH_OR_NAME, openai:MODEL, "
            "openai-compatible:BASE_URL[@MODEL] or an http(s):// URL"
        )
    if sep and not arg:
        raise ConfigError(f"{where}: nothing after '{backend}:'")
    if backend == "openai-compatible":
        if not sep:
            return backend, _UNSET, _UNSET
        url, model = _split_url_model(arg, where)
        return backend, model, url
    return backend, (arg if sep else _UNSET), None


def _apply(values: dict[str, Any], backend: Any, model: Any, base_url: Any) -> None:
    """One precedence layer. Switching backend drops the old backend's model and URL: a local
    model name means nothing to an OpenAI endpoint, and vice versa."""
    if backend is not _UNSET and backend is not None and backend != values["backend"]:
        values.update(backend=backend, model=None, base_url=None)
    if model is not _UNSET:
        values["model"] = model
    if base_url is not _UNSET:
        values["base_url"] = base_url


def resolve_llm_config(base: LLMConfig | None = None, flag: str | None = None) -> LLMConfig:
    """The LLM settings in force: `flag` > environment > `base` (the profile's) > defaults.

    Environment: ``VIDCHAT_LLM_BACKEND`` (local | openai | openai-compatible),
    ``VIDCHAT_LLM_MODEL``, ``VIDCHAT_LLM_BASE_URL``, ``VIDCHAT_LLM_API_KEY_ENV`` (the *name* of
    the variable holding an openai-compatible endpoint's key); ``OPENAI_BASE_URL`` means
    openai-compatible at that URL (with no key) unless ``VIDCHAT_LLM_BACKEND`` names another
    backend. Flag syntax: ``local``, ``local:PATH_OR_SHIPPED_NAME``, ``openai[:MODEL]``,
    ``openai-compatible:BASE_URL[@MODEL][#KEY_VAR]`` or a bare ``http(s)://`` URL (optionally
    ``@MODEL`` and ``#KEY_VAR``). Raises ConfigError on bad values.
    """
    values = (base or LLMConfig()).model_dump()

    env_backend: Any = os.environ.get("VIDCHAT_LLM_BACKEND") or _UNSET
    if env_backend is not _UNSET and env_backend not in BACKENDS:
        raise ConfigError(
            f"VIDCHAT_LLM_BACKEND: expected one of {', '.join(BACKENDS)}, got {env_backend!r}"
        )
    env_url: Any = _UNSET
    if os.environ.get("VIDCHAT_LLM_BASE_URL"):
        env_url = _check_url(os.environ["VIDCHAT_LLM_BASE_URL"], "VIDCHAT_LLM_BASE_URL")
    elif os.environ.get("OPENAI_BASE_URL") and env_backend in (_UNSET, "openai-compatible"):
        env_url = _check_url(os.environ["OPENAI_BASE_URL"], "OPENAI_BASE_URL")
    if env_url is not _UNSET and env_backend is _UNSET:
        env_backend = "openai-compatible"
    if env_backend == "local":
        env_url = _UNSET  # a URL means nothing to the in-process model
    env_model: Any = os.environ.get("VIDCHAT_LLM_MODEL") or _UNSET
    before = values["backend"], values["base_url"]
    _apply(values, env_backend, env_model, env_url)
    if (values["backend"], values["base_url"]) != before:
        values["api_key_env"] = None  # the profile's key variable stays with its endpoint
    if os.environ.get("VIDCHAT_LLM_API_KEY_ENV"):
        values["api_key_env"] = _check_env_name(
            os.environ["VIDCHAT_LLM_API_KEY_ENV"], "VIDCHAT_LLM_API_KEY_ENV"
        )

    if flag is not None:
        text, key_env = _split_key_env(flag)
        before = values["backend"], values["base_url"]
        _apply(values, *_parse_flag(text))
        if key_env is not _UNSET:
            values["api_key_env"] = key_env
        elif (values["backend"], values["base_url"]) != before:
            # A new endpoint on the command line: a key variable named for the old one (in
            # the profile or environment) must not follow it there.
            values["api_key_env"] = None
    try:
        return LLMConfig.model_validate(values)
    except ValueError as e:  # pydantic's ValidationError is a ValueError
        raise ConfigError(f"LLM settings: {e}") from e


# --------------------------------------------------------------------------------------------
# Where keys may go
# --------------------------------------------------------------------------------------------


def key_variable(config: LLMConfig) -> str | None:
    """The environment variable whose value is sent as the API key, or None (no key sent).

    Keys go only where they belong: the openai backend (api.openai.com only) sends
    ``api_key_env`` or else ``$OPENAI_API_KEY``; an openai-compatible endpoint gets a key only
    when a variable is named for it (``llm.api_key_env`` in the profile, ``#VAR`` after the
    ``--llm`` URL, or ``VIDCHAT_LLM_API_KEY_ENV``); the local server never gets a user's key.
    """
    if config.backend == "openai":
        return config.api_key_env or DEFAULT_OPENAI_KEY_ENV
    if config.backend == "openai-compatible":
        return config.api_key_env
    return None


def remote_model_name(config: LLMConfig) -> str:
    """The model name sent to a remote endpoint: the configured one, else the backend's default."""
    if config.model:
        return config.model
    # Many OpenAI-compatible servers (llama.cpp, transformers serve with a forced model) ignore
    # the name; those that need one answer 404, which LLMError reports as "model not found".
    return DEFAULT_OPENAI_MODEL if config.backend == "openai" else "default"


def describe(config: LLMConfig) -> str:
    """One line for ``/llm`` and ``ask --format json``: backend, model and where it comes from.

    Never loads a model or calls the network.
    """
    if config.backend == "local":
        name = config.model or DEFAULT_LOCAL_MODEL
        st = locate(name)
        if not st.available:
            return f"local {name} (unavailable: {st.detail})"
        where = f"shipped in {SHIPPED[name].dist}" if name in SHIPPED else st.where
        return (
            f"local {name} ({where}; llama.cpp server on loopback; temperature "
            f"{config.temperature}, max {config.max_tokens} tokens)"
        )
    url = config.base_url or (OPENAI_BASE_URL if config.backend == "openai" else "(no base URL)")
    env = key_variable(config)
    # The variable's name only: a key is never printed.
    key = f"key from ${env}" if env and os.environ.get(env) else "no key"
    return (
        f"{config.backend} {remote_model_name(config)} at {url} ({key}; timeout "
        f"{config.timeout_s:g}s, {config.max_retries} retries)"
    )
