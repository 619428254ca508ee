"""The LLM layer: which chat model answers, and one way to stream from any of them.

One client path for every backend: ``langchain_openai.ChatOpenAI`` (the openai client) against an
OpenAI-compatible ``/v1`` endpoint, so streaming, cancelling, timeouts and the fault handling
below are the same everywhere:

- ``local`` — vidchat's own llama.cpp server (`vidchat.llm.server`, xllamacpp) on loopback,
  started on first use with a GGUF file (a shipped name such as the default
  ``llm:qwen2.5-coder-1.5b``, or any path), shared by the whole process, stopped at exit.
- ``openai`` — api.openai.com (and nothing else), key from ``$OPENAI_API_KEY``.
- ``openai-compatible`` — any ``/v1`` endpoint (vLLM, Ollama, ``transformers serve``, another
  llama.cpp server…); it gets a key only when a variable is named for it (`key_variable`).

Network failures are retried by the openai client itself (exponential backoff on connection
errors, timeouts, 408/409/429 and 5xx — including a failing *start* of a stream, whose status
is checked before the first chunk), then surface here as one-line `LLMError`s.

The GGUF → transformers conversion kept here (`export_transformers_folder`) serves
``transformers serve`` and `embed_model`, which need the weights as a transformers folder.
Heavy libraries (torch, transformers, langchain_openai, xllamacpp) are imported inside functions.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import re
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
)
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import ConfigDict, PrivateAttr
from vidchat.kernel.errors import ConfigError, VidchatError
from vidchat.kernel.llm_config import DEFAULT_LOCAL_MODEL, Backend, LLMConfig
from vidchat.kernel.models import SHIPPED, ResolvedModel, cache_dir, locate, resolve

if TYPE_CHECKING:
    from langchain_core.callbacks import CallbackManagerForLLMRun

__all__ = [
    "DEFAULT_OPENAI_MODEL",
    "OPENAI_BASE_URL",
    "LLMError",
    "LocalServerChatModel",
    "describe",
    "export_transformers_folder",
    "invoke_chat",
    "key_variable",
    "local_model_path",
    "make_chat_model",
    "prefill",
    "resolve_llm_config",
    "stream_chat",
    "token_counter",
]

DEFAULT_OPENAI_MODEL = "gpt-4o-mini"
OPENAI_BASE_URL = "https://api.openai.com/v1"
# Sent to openai-compatible servers that need no key: the openai client refuses an empty one.
_NO_KEY = "not-needed"
_BACKENDS: tuple[Backend, ...] = ("local", "openai", "openai-compatible")
_MARKER = "vidchat-source.json"  # inside a converted folder: which GGUF it came from


class LLMError(VidchatError):
    """An LLM call failed; the message is one line naming the endpoint or model and the cause."""


# --------------------------------------------------------------------------------------------
# Configuration: flag > environment > profile > defaults
# --------------------------------------------------------------------------------------------

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
    if backend not in _BACKENDS:
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
    if env_backend is not _UNSET and env_backend not in _BACKENDS:
        raise ConfigError(
            f"VIDCHAT_LLM_BACKEND: expected one of {', '.join(_BACKENDS)}, got {env_backend!r}"
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
# Local model files: GGUF -> transformers folder, converted once and cached
# --------------------------------------------------------------------------------------------


def _import_transformers() -> Any:
    """transformers, importable on CPU torch (see `vidchat.kernel.compat`)."""
    from vidchat.kernel.compat import import_transformers

    return import_transformers()


def _local_source(config_or_path: LLMConfig | str | Path) -> ResolvedModel:
    if isinstance(config_or_path, LLMConfig):
        if config_or_path.backend != "local":
            raise ConfigError(f"expected a local LLM config, got backend {config_or_path.backend}")
        name = config_or_path.model or DEFAULT_LOCAL_MODEL
    else:
        name = str(config_or_path)
    resolved = resolve(name)
    if resolved.origin == "hub":
        raise ConfigError(
            f"local LLM model {name!r}: expected a GGUF file, a transformers folder or a shipped "
            f"name ({DEFAULT_LOCAL_MODEL}); hub downloads are not done here"
        )
    resolved.require()
    return resolved


def _is_gguf(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() == ".gguf"


def _cached_folder_for(resolved: ResolvedModel) -> Path:
    assert resolved.path is not None
    if resolved.origin == "package":
        stem = resolved.name.replace(":", "_")
    else:  # a user's file: its fingerprint keeps two same-named files apart
        stem = f"{resolved.path.stem}-{resolved.identity.rsplit(':', 1)[-1][:8]}"
    return cache_dir() / "models" / f"{stem}-transformers"


def _folder_matches(folder: Path, identity: str) -> bool:
    try:
        return json.loads((folder / _MARKER).read_text())["source"] == identity
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _convert_gguf(gguf: Path, identity: str, dest: Path) -> Path:
    """Dequantize a GGUF chat model to an fp32 transformers folder at `dest`, atomically: the
    folder appears complete (marker last) or not at all, so a killed run leaves no half-model."""
    transformers = _import_transformers()
    tmp = dest.with_name(f"{dest.name}.tmp-{os.getpid()}-{threading.get_ident()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    try:
        kw = {"gguf_file": gguf.name, "local_files_only": True}
        tok = transformers.AutoTokenizer.from_pretrained(gguf.parent, **kw)
        model = transformers.AutoModelForCausalLM.from_pretrained(gguf.parent, **kw)
        # The weights are plain fp32 tensors now; the GGUF "quantizer" is only load-time
        # bookkeeping, and while attached it makes save_pretrained refuse to serialize.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        (tmp / _MARKER).write_text(json.dumps({"source": identity, "gguf": str(gguf)}))
        if dest.exists():  # a stale conversion of different weights
            shutil.rmtree(dest)
        try:
            os.replace(tmp, dest)
        except OSError:
            # Another process finished the same conversion first: keep theirs.
            if not _folder_matches(dest, identity):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def _transformers_folder(resolved: ResolvedModel) -> Path:
    """The transformers folder for a resolved local model, converting a GGUF once."""
    path = resolved.require()
    if path.is_dir():
        if not (path / "config.json").exists():
            raise ConfigError(
                f"local LLM folder {path}: expected a transformers model folder "
                "(config.json missing)"
            )
        return path
    if not _is_gguf(path):
        raise ConfigError(f"local LLM model {path}: expected a .gguf file or a transformers folder")
    dest = _cached_folder_for(resolved)
    if not _folder_matches(dest, resolved.identity):
        _convert_gguf(path, resolved.identity, dest)
    return dest


def export_transformers_folder(config_or_gguf: LLMConfig | str | Path, dest: str | Path) -> Path:
    """Write the local model as a transformers folder at `dest` (for ``transformers serve``).

    `config_or_gguf` is a local LLMConfig, a shipped name or a path to a GGUF file or folder.
    The GGUF is converted once into the cache; `dest` gets hard links to the cached files (a
    copy across file systems). Returns `dest`.
    """
    folder = _transformers_folder(_local_source(config_or_gguf))
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for f in folder.iterdir():
        if f.is_file():
            target = dest / f.name
            target.unlink(missing_ok=True)
            try:
                os.link(f, target)
            except OSError:
                shutil.copy2(f, target)
    return dest


# --------------------------------------------------------------------------------------------
# The local model: a llama.cpp server, reached through the same OpenAI client as every backend
# --------------------------------------------------------------------------------------------

# A local answer waits for llama.cpp to prefill the whole record before its first byte: on 2
# busy cores a 6,000-token record can take minutes, far over a remote endpoint's timeout.
LOCAL_TIMEOUT_S = 900.0


class LocalServerChatModel(BaseChatModel):
    """A GGUF model served by vidchat's own llama.cpp server (`vidchat.llm.server`), called
    through ``langchain_openai.ChatOpenAI`` like any OpenAI-compatible endpoint.

    The server starts on first use and is shared by every model object with the same file,
    context size and threads (temperature and max_tokens travel per request). If it died, the
    next call starts it again; the client follows it to its new port.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, protected_namespaces=())

    model_name: str
    model_path: str
    temperature: float = 0.0
    max_tokens: int = 512
    context_tokens: int = 8192
    repetition_penalty: float = 1.0
    timeout_s: float = LOCAL_TIMEOUT_S
    max_retries: int = 0  # a local failure is not transient: retrying only repeats the prefill

    _client: Any = PrivateAttr(default=None)
    _client_url: str | None = PrivateAttr(default=None)

    @property
    def _llm_type(self) -> str:
        return "vidchat-llama-cpp-server"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "model_name": self.model_name,
            "model_path": self.model_path,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "repetition_penalty": self.repetition_penalty,
        }

    def server(self) -> Any:
        """The running `vidchat.llm.server.LlamaServer` (started on first need)."""
        from vidchat.llm.server import ServerSpec, local_server

        return local_server(ServerSpec(self.model_path, self.context_tokens))

    @property
    def openai_api_base(self) -> str:
        """The server's ``/v1`` URL (for error messages)."""
        return self._client_url or "(local llama.cpp server, not started)"

    @property
    def request_timeout(self) -> float:
        """Seconds without data before a request fails (for error messages)."""
        return self.timeout_s

    def client(self) -> Any:
        """The OpenAI-compatible client bound to the running server."""
        server = self.server()
        url = server.base_url
        if self._client is None or url != self._client_url:
            from langchain_openai import ChatOpenAI

            self._client = ChatOpenAI(
                model=self.model_name,
                # The server's own per-start token: never a user's key.
                api_key=server.token,
                base_url=url,
                timeout=self.timeout_s,
                max_retries=self.max_retries,
                temperature=self.temperature,
                max_tokens=self.max_tokens,
                streaming=True,
                stream_usage=True,
                extra_body={"repeat_penalty": self.repetition_penalty, "cache_prompt": True},
            )
            self._client_url = url
        return self._client

    def count_tokens(self, text: str) -> int:
        """Tokens of `text` in the model's own tokenizer."""
        return int(self.server().count_tokens(text))

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        chunks = self.client().stream(messages, stop=stop, **kwargs)
        try:
            for chunk in chunks:
                if run_manager and chunk.text:
                    run_manager.on_llm_new_token(chunk.text)
                yield ChatGenerationChunk(message=chunk)
        finally:
            # Closing the client's stream closes the HTTP response, which is how llama.cpp
            # learns to stop generating (a cancelled answer frees the server at once).
            chunks.close()

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        message = self.client().invoke(messages, stop=stop, **kwargs)
        return ChatResult(generations=[ChatGeneration(message=message)])

    def prefill(self, messages: list[BaseMessage]) -> None:
        """Have the server process `messages` now (one token generated), so that a later
        question sharing their prefix starts from llama.cpp's prompt cache."""
        self.client().bind(max_tokens=1).invoke(messages)


# --------------------------------------------------------------------------------------------
# The factory, and where keys may go
# --------------------------------------------------------------------------------------------

_models: dict[str, BaseChatModel] = {}
_models_lock = threading.Lock()

OPENAI_HOST = "api.openai.com"
DEFAULT_OPENAI_KEY_ENV = "OPENAI_API_KEY"


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


def _remote_model_name(config: LLMConfig) -> str:
    if config.model:
        return config.model
    # Many OpenAI-compatible servers (llama.cpp, transformers serve with a forced model) ignore
    # the name; those that need one answer 404, which LLMError reports as "model not found".
    return DEFAULT_OPENAI_MODEL if config.backend == "openai" else "default"


def _cache_key(config: LLMConfig) -> str:
    key = ""
    env = key_variable(config)
    if env:
        # A changed key in the environment must give a new client, not the cached old one.
        secret = os.environ.get(env) or ""
        key = hashlib.sha256(secret.encode()).hexdigest()[:16]
    return config.model_dump_json() + key


def local_model_path(config: LLMConfig) -> Path:
    """The GGUF file a local config names (a shipped name or a path), or a ConfigError."""
    resolved = _local_source(config)
    path = resolved.require()
    if not _is_gguf(path):
        raise ConfigError(
            f"local LLM model {path}: expected a .gguf file (llama.cpp); for a transformers "
            "folder run an OpenAI-compatible server (e.g. `transformers serve FOLDER`) and use "
            "--llm http://HOST:PORT/v1"
        )
    return path


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
        model=_remote_model_name(config),
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
        raise _to_llm_error(e, model) from e
    return True


# --------------------------------------------------------------------------------------------
# Streaming with one error vocabulary
# --------------------------------------------------------------------------------------------


def _one_line(text: object, limit: int = 200) -> str:
    s = " ".join(str(text).split())
    return s if len(s) <= limit else s[: limit - 1] + "…"


def _root_cause(e: BaseException) -> BaseException:
    seen = {id(e)}
    while e.__cause__ is not None and id(e.__cause__) not in seen:
        e = e.__cause__
        seen.add(id(e))
    return e


def _http_exceptions(kind: str) -> tuple[type[BaseException], ...]:
    """httpx and httpx2 exception classes (langchain_openai hands the openai client an httpx
    client; the openai client's own is httpx2), so mid-stream failures of either are caught."""
    out: list[type[BaseException]] = []
    for name in ("httpx", "httpx2"):
        if importlib.util.find_spec(name) is not None:
            mod = __import__(name)
            cls = getattr(mod, kind, None)
            if isinstance(cls, type):
                out.append(cls)
    return tuple(out)


def _endpoint(model: BaseChatModel) -> tuple[str, str, int, float | None, str]:
    """(url, model name, retries, timeout, key variable) of a remote model, for messages."""
    url = str(getattr(model, "openai_api_base", None) or getattr(model, "base_url", "") or "?")
    name = str(getattr(model, "model_name", None) or "?")
    retries = int(getattr(model, "max_retries", 0) or 0)
    timeout = getattr(model, "request_timeout", None)
    timeout = timeout if isinstance(timeout, (int, float)) else None
    env = (model.metadata or {}).get("vidchat_api_key_env", "")
    return url, name, retries, timeout, str(env)


def _status_detail(e: Any) -> str:
    """The server's own words from an error body: OpenAI's ``{"error": {"message"}}``, FastAPI's
    ``{"detail"}`` (transformers serve, vLLM), or whatever text there was."""
    body = getattr(e, "body", None)
    if isinstance(body, dict):
        err = body.get("error", body)
        for value in (err.get("message") if isinstance(err, dict) else err, body.get("detail")):
            if value:
                return _one_line(value if isinstance(value, str) else json.dumps(value))
    return _one_line(getattr(e, "message", "") or e) or "(no detail)"


def _to_llm_error(e: BaseException, model: BaseChatModel, mid_stream: bool = False) -> LLMError:
    """Map any backend exception to a one-line LLMError. `mid_stream`: part of the answer had
    arrived (the openai client retries only before the first byte, so no retry count then)."""
    if isinstance(e, LLMError):
        return e
    import openai

    url, name, retries, timeout, env = _endpoint(model)
    tries = f"{retries + 1} attempt{'s' if retries else ''}"
    if mid_stream and isinstance(
        e, (openai.APITimeoutError, *_http_exceptions("TimeoutException"))
    ):
        return LLMError(f"LLM endpoint {url} timed out mid-answer (no data for {timeout}s)")
    if mid_stream and isinstance(
        e, (openai.APIConnectionError, *_http_exceptions("TransportError"))
    ):
        return LLMError(f"connection to the LLM endpoint {url} broke mid-answer: {_one_line(e)}")
    if isinstance(e, openai.APITimeoutError):
        return LLMError(f"LLM endpoint {url} timed out after {timeout}s ({tries})")
    if isinstance(e, openai.APIConnectionError):
        cause = _one_line(_root_cause(e)) or type(_root_cause(e)).__name__
        return LLMError(f"cannot reach the LLM endpoint {url} ({cause}; {tries})")
    if isinstance(e, openai.APIStatusError):
        code = e.status_code
        msg = _status_detail(e)
        if code in (401, 403):
            if not env:
                hint = "no key was sent: name the variable holding its key with #VAR after the URL"
            elif os.environ.get(env):
                hint = f"check ${env}"
            else:
                hint = f"no key was sent: set ${env}"
            return LLMError(f"LLM endpoint {url} rejected the API key (HTTP {code}; {hint}): {msg}")
        if code == 404:
            return LLMError(f"model {name!r} not found at {url} (HTTP 404): {msg}")
        if code == 429:
            return LLMError(f"rate-limited by {url} (HTTP 429, {tries}): {msg}")
        if code >= 500:
            return LLMError(f"LLM endpoint {url} failed with HTTP {code} ({tries}): {msg}")
        return LLMError(f"LLM endpoint {url} answered HTTP {code}: {msg}")
    if isinstance(e, openai.APIResponseValidationError):
        return LLMError(f"malformed response from {url}: {_one_line(e)}")
    if isinstance(e, json.JSONDecodeError):
        return LLMError(f"malformed response from {url}: not JSON ({_one_line(e)})")
    if isinstance(e, _http_exceptions("TimeoutException")):
        return LLMError(f"LLM endpoint {url} timed out after {timeout}s")
    if isinstance(e, _http_exceptions("TransportError")):
        return LLMError(f"connection to the LLM endpoint {url} failed: {_one_line(e)}")
    if isinstance(e, ValueError) and "No generation chunks" in str(e):
        # langchain's words for a 200 stream without one chat chunk: not an OpenAI SSE stream.
        return LLMError(f"malformed response from {url}: the stream carried no answer chunks")
    from pydantic import ValidationError

    if isinstance(e, (ValidationError, KeyError, IndexError)):
        return LLMError(f"malformed response from {url}: {type(e).__name__}: {_one_line(e)}")
    return LLMError(f"the LLM failed: {type(e).__name__}: {_one_line(e)}")


def stream_chat(
    model: BaseChatModel, messages: list[BaseMessage], cancel: threading.Event | None = None
) -> Iterator[str]:
    """Stream the answer to `messages` as text chunks.

    Every backend exception becomes an LLMError. Setting `cancel`, or closing the generator,
    stops generation promptly: the stream is closed (which closes the HTTP response, and
    llama.cpp, vLLM and the rest stop generating) as soon as the next chunk arrives.
    """
    halt = threading.Event()

    def should_stop() -> bool:
        return halt.is_set() or (cancel is not None and cancel.is_set())

    chunks = model.stream(messages)
    started = False
    try:
        while True:
            try:
                chunk = next(chunks)
            except StopIteration:
                return
            except Exception as e:
                raise _to_llm_error(e, model, mid_stream=started) from e
            if should_stop():
                return
            text = chunk.text
            if text:
                started = True
                yield text
    finally:
        halt.set()
        with contextlib.suppress(Exception):
            chunks.close()


def invoke_chat(model: BaseChatModel, messages: list[BaseMessage]) -> AIMessage:
    """The whole answer to `messages` in one message (with usage metadata where the backend
    reports it), every backend exception mapped to an LLMError as in `stream_chat`."""
    try:
        result = model.invoke(messages)
    except Exception as e:
        raise _to_llm_error(e, model) from e
    if not isinstance(result, AIMessage):  # pragma: no cover - chat models return AIMessage
        raise LLMError(f"the LLM returned {type(result).__name__}, expected an AIMessage")
    return result


# --------------------------------------------------------------------------------------------
# Token counting and description
# --------------------------------------------------------------------------------------------


def token_counter(config: LLMConfig) -> Callable[[str], int]:
    """A function counting tokens of a text for `config`'s model: the local model's own
    tokenizer (exact), or for remote models the renderer's tokenizer-free estimate."""
    if config.backend == "local":
        model = make_chat_model(config)
        assert isinstance(model, LocalServerChatModel)
        return model.count_tokens
    from vidchat.text.render import estimate_tokens

    return estimate_tokens


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
        f"{config.backend} {_remote_model_name(config)} at {url} ({key}; timeout "
        f"{config.timeout_s:g}s, {config.max_retries} retries)"
    )
