"""Chat-model construction: one langchain chat model per backend and settings, built once per
process.

- ``local`` → `LocalServerChatModel` on the GGUF the config names (vidchat's llama.cpp server);
- ``openai`` and ``openai-compatible`` → ``langchain_openai.ChatOpenAI`` with an explicit key
  (only where `vidchat.llm.config.key_variable` allows one) and an explicit base URL.

`prefill` warms the local server's prompt cache and `start_local_server` starts the local server
ahead of need (while perception runs); both are no-ops for remote APIs.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Sequence
from urllib.parse import urlsplit

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage

from vidchat.kernel.errors import ConfigError
from vidchat.kernel.llm_config import DEFAULT_LOCAL_MODEL, LLMConfig
from vidchat.llm.config import OPENAI_BASE_URL, OPENAI_HOST, key_variable, remote_model_name
from vidchat.llm.errors import LLMError, to_llm_error
from vidchat.llm.local import local_model_path
from vidchat.llm.local_chat import LOCAL_TIMEOUT_S, LocalServerChatModel

__all__ = ["make_chat_model", "prefill", "restore_prefix", "save_prefix", "start_local_server"]

# Sent to openai-compatible servers that need no key: the openai client refuses an empty one.
_NO_KEY = "not-needed"

_models: dict[str, BaseChatModel] = {}
_models_lock = threading.Lock()


def _api_key(config: LLMConfig) -> str:
    env = key_variable(config)
    key = os.environ.get(env) if env else None
    if config.backend == "openai" and not key:
        raise LLMError(
            f"the openai backend needs an API key in ${env}; set it, or use "
            "--llm local / --llm openai-compatible:URL"
        )
    return key or _NO_KEY


def _base_url(config: LLMConfig) -> str:
    if config.backend == "openai":
        # Explicit, so that an OPENAI_BASE_URL in the environment (read by the openai client
        # itself) cannot silently redirect a config that says "openai" - and with it the key.
        url = config.base_url or OPENAI_BASE_URL
        parts = urlsplit(url)
        if parts.scheme != "https" or parts.hostname != OPENAI_HOST:
            raise ConfigError(
                f"the openai backend talks only to https://{OPENAI_HOST} (it sends your OpenAI "
                f"key), got base URL {url!r}; for another endpoint use "
                "--llm openai-compatible:URL, with #KEY_VARIABLE after it if it needs a key"
            )
        return url
    if not config.base_url:
        raise ConfigError(
            "the openai-compatible backend needs a base URL: --llm openai-compatible:URL, "
            "VIDCHAT_LLM_BASE_URL or llm.base_url in the profile"
        )
    return config.base_url


def _cache_key(config: LLMConfig) -> str:
    key = ""
    env = key_variable(config)
    if env:
        # A changed key in the environment must give a new client, not the cached old one.
        secret = os.environ.get(env) or ""
        key = hashlib.sha256(secret.encode()).hexdigest()[:16]
    return config.model_dump_json() + key


def _build(config: LLMConfig) -> BaseChatModel:
    if config.backend == "local":
        path = local_model_path(config)
        return LocalServerChatModel(
            model_name=config.model or DEFAULT_LOCAL_MODEL,
            model_path=str(path),
            temperature=config.temperature,
            max_tokens=config.max_tokens,
            context_tokens=config.context_tokens,
            repetition_penalty=config.repetition_penalty,
            timeout_s=max(config.timeout_s, LOCAL_TIMEOUT_S),
        )

    from langchain_openai import ChatOpenAI

    return ChatOpenAI(
        model=remote_model_name(config),
        # Always explicit: left unset, the openai client would read $OPENAI_API_KEY itself
        # and send it to whatever endpoint this is.
        api_key=_api_key(config),
        base_url=_base_url(config),
        timeout=config.timeout_s,
        max_retries=config.max_retries,
        temperature=config.temperature,
        max_tokens=config.max_tokens,
        # Read back by the error messages ("rejected the API key: check $VAR").
        metadata={"vidchat_api_key_env": key_variable(config) or ""},
    )


def make_chat_model(config: LLMConfig) -> BaseChatModel:
    """The chat model for `config`, built once per process and config.

    A local model is served by vidchat's llama.cpp server, started on first use and shared
    by every local model object on the same file (`vidchat.llm.server`).
    Raises ConfigError for unusable settings and LLMError for a missing OpenAI key.
    """
    key = _cache_key(config)
    with _models_lock:
        model = _models.get(key)
    if model is None:
        model = _build(config)
        with _models_lock:
            model = _models.setdefault(key, model)
    return model


def prefill(model: BaseChatModel, messages: list[BaseMessage]) -> bool:
    """Warm `model`'s prompt cache with `messages` (local server only; a no-op elsewhere,
    since a remote API's cache is not ours to fill). Returns whether anything was done."""
    if not isinstance(model, LocalServerChatModel):
        return False
    try:
        model.prefill(messages)
    except Exception as e:
        raise to_llm_error(e, model) from e
    return True


def restore_prefix(model: BaseChatModel, messages: list[BaseMessage]) -> int:
    """Load a saved reading of `messages` into the local server (`vidchat.llm.prefix_cache`);
    returns the tokens restored (0: none saved, already held, or not a local model)."""
    if not isinstance(model, LocalServerChatModel):
        return 0
    return model.restore_prefix(messages)


def save_prefix(
    model: BaseChatModel,
    messages: list[BaseMessage],
    tokens: int | None = None,
    background: bool = False,
) -> int:
    """Save the local server's reading of `messages`, just read (a no-op for other models and
    for prefixes already saved); in the `background` when an answer is waiting to be shown.
    Returns the tokens saved. Never raises."""
    if not isinstance(model, LocalServerChatModel):
        return 0
    return model.save_prefix(messages, tokens, background=background)


def start_local_server(
    config: LLMConfig, prefix: Sequence[BaseMessage] = ()
) -> threading.Thread | None:
    """Start the local llama.cpp server for `config` in a background thread, then have it read
    `prefix` (the instructions every prompt starts with) into its prompt cache; returns the
    thread (None for remote backends, which have nothing to start).

    Loading a GGUF takes seconds (3.4 s for Qwen2.5-Coder-1.5B on a quiet 2-core machine, more
    beside perception) and reading the system prompt a few more; started while the video is
    being textualized, the server is ready by the time the record is, and the record's prefill
    continues from the instructions. This moves CPU work into the perception phase rather than
    removing it: on a machine whose cores perception keeps busy, perception takes about that
    much longer. A failure here (no model file, a server that will not start) is only logged:
    the first question meets it again and reports it as one line.
    """
    if config.backend != "local":
        return None
    messages = list(prefix)

    def run() -> None:
        try:
            model = make_chat_model(config)
            if isinstance(model, LocalServerChatModel):
                model.server()
                if messages:
                    # The instructions are the same for every video and quick to read: not
                    # worth a saved file (whose saving would race the first question).
                    model.prefill(messages, keep=False)
        except Exception as e:
            logging.getLogger(__name__).info("starting the local LLM server failed: %s", e)

    t = threading.Thread(target=run, name="vidchat-llm-start", daemon=True)
    t.start()
    return t
