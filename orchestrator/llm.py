"""The LLM layer: which chat model answers, and one way to stream from any of them.

Three backends, all langchain ``BaseChatModel`` objects so the conversation code never cares
which one it holds:

- ``local`` — in process. A GGUF file (the shipped ``llm:smollm2-135m`` by default) runs through
  llama.cpp when ``llama_cpp`` is importable; otherwise transformers dequantizes it to fp32 once
  and the result is saved as a transformers folder under ``cache_dir()/models/`` so the next
  start loads in a fraction of a second. A transformers folder is loaded directly.
- ``openai`` — ``langchain_openai.ChatOpenAI`` against api.openai.com, key from the environment.
- ``openai-compatible`` — the same client against any ``/v1`` endpoint (llama.cpp server, vLLM,
  Ollama, ``transformers serve``…); the key is optional.

Network failures are retried by the openai client itself (exponential backoff on connection
errors, timeouts, 408/409/429 and 5xx — including a failing *start* of a stream, whose status
is checked before the first chunk), then surface here as one-line `LLMError`s.

Heavy libraries (torch, transformers, langchain_openai, llama_cpp) are imported inside functions.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import queue
import shutil
import threading
import time
from abc import abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ChatMessage,
    HumanMessage,
    SystemMessage,
)
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import ConfigDict, PrivateAttr

from orchestrator.errors import ConfigError, VidchatError
from orchestrator.llm_config import DEFAULT_LOCAL_MODEL, Backend, LLMConfig
from orchestrator.models import SHIPPED, ResolvedModel, cache_dir, resolve

if TYPE_CHECKING:
    from langchain_core.callbacks import CallbackManagerForLLMRun

__all__ = [
    "DEFAULT_OPENAI_MODEL",
    "OPENAI_BASE_URL",
    "LLMError",
    "LlamaCppChatModel",
    "LocalChatModel",
    "describe",
    "export_transformers_folder",
    "invoke_chat",
    "make_chat_model",
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
    ``VIDCHAT_LLM_MODEL``, ``VIDCHAT_LLM_BASE_URL``; ``OPENAI_BASE_URL`` means openai-compatible
    at that URL unless ``VIDCHAT_LLM_BACKEND`` names another backend. Flag syntax: ``local``,
    ``local:PATH_OR_SHIPPED_NAME``, ``openai[:MODEL]``, ``openai-compatible:BASE_URL[@MODEL]``
    or a bare ``http(s)://`` URL (optionally ``@MODEL``). Raises ConfigError on bad values.
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
    _apply(values, env_backend, env_model, env_url)

    if flag is not None:
        _apply(values, *_parse_flag(flag))
    try:
        return LLMConfig.model_validate(values)
    except ValueError as e:  # pydantic's ValidationError is a ValueError
        raise ConfigError(f"LLM settings: {e}") from e


# --------------------------------------------------------------------------------------------
# Local model files: GGUF -> transformers folder, converted once and cached
# --------------------------------------------------------------------------------------------


def _import_transformers() -> Any:
    """transformers, importable on CPU torch (see `perceivers._torchvision_compat`)."""
    from perceivers._torchvision_compat import import_transformers

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
# Local chat models
# --------------------------------------------------------------------------------------------


def _text_of(message: BaseMessage) -> str:
    content = message.content
    if isinstance(content, str):
        return content
    # Content blocks: keep the text ones (a local text model has nothing to do with images).
    return "".join(
        b if isinstance(b, str) else str(b.get("text", ""))
        for b in content
        if isinstance(b, str) or b.get("type") == "text"
    )


def _to_chat_dicts(messages: Sequence[BaseMessage]) -> list[dict[str, str]]:
    roles = {SystemMessage: "system", HumanMessage: "user", AIMessage: "assistant"}
    out = []
    for m in messages:
        role = next((r for cls, r in roles.items() if isinstance(m, cls)), None)
        if role is None and isinstance(m, ChatMessage):
            role = m.role
        if role is None:
            raise LLMError(f"local model: unsupported message type {type(m).__name__}")
        out.append({"role": role, "content": _text_of(m)})
    return out


class _StopScanner:
    """Cuts streamed text at the first stop string, holding back just enough characters that a
    stop string split across two chunks is still caught before any of it is shown."""

    def __init__(self, stop: Sequence[str] | None) -> None:
        self.stop = [s for s in (stop or []) if s]
        self.hold = max((len(s) for s in self.stop), default=1) - 1
        self.pending = ""
        self.hit = False

    def feed(self, text: str) -> str:
        self.pending += text
        cuts = [i for i in (self.pending.find(s) for s in self.stop) if i >= 0]
        if cuts:
            self.hit = True
            out, self.pending = self.pending[: min(cuts)], ""
            return out
        keep = len(self.pending) - self.hold if self.hold else len(self.pending)
        out, self.pending = self.pending[:keep], self.pending[keep:]
        return out

    def flush(self) -> str:
        out, self.pending = self.pending, ""
        return out


@dataclass
class _Weights:
    """A loaded transformers model and tokenizer, shared by every chat model built on them."""

    folder: Path
    model: Any
    tokenizer: Any
    lock: threading.Lock  # one generation at a time: two would only fight over the same cores
    load_s: float


_weights_cache: dict[Path, _Weights] = {}
_weights_lock = threading.Lock()


def _load_weights(folder: Path) -> _Weights:
    with _weights_lock:
        if folder in _weights_cache:
            return _weights_cache[folder]
        t0 = time.perf_counter()
        transformers = _import_transformers()
        import torch

        tok = transformers.AutoTokenizer.from_pretrained(folder, local_files_only=True)
        if not tok.chat_template:
            raise ConfigError(
                f"local LLM {folder}: the tokenizer has no chat template; "
                "expected an instruction-tuned chat model"
            )
        model = transformers.AutoModelForCausalLM.from_pretrained(
            folder, dtype=torch.float32, local_files_only=True
        )
        model.eval()
        w = _Weights(folder, model, tok, threading.Lock(), time.perf_counter() - t0)
        _weights_cache[folder] = w
        return w


def _gen_threads() -> int:
    """Intra-op threads for local generation: half the cores, at least one.

    Measured on the 2-core CI machine shared with other work (load ~6): SmolLM2-135M on a
    1,440-token prompt gave TTFT 10.4 s and 8-9 tok/s with 1 thread, but TTFT 30 s and
    2 tok/s with 2 — OpenMP workers spin-waiting for a busy core cost more than they gain.
    Half the cores also leaves room for the rest of vidchat (perception, UI) running beside it.
    """
    return max(1, (os.cpu_count() or 2) // 2)


def _cancel_criteria(should_stop: Callable[[], bool]) -> Any:
    """A transformers StoppingCriteria that ends generation when `should_stop()` turns true
    (checked after every token, so cancelling costs at most one more forward pass)."""
    transformers = _import_transformers()
    import torch

    class CancelCriteria(transformers.StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            return torch.full((input_ids.shape[0],), should_stop(), dtype=torch.bool)

    return CancelCriteria()


class _LocalBase(BaseChatModel):
    """Shared settings of the in-process models. `_stream` takes an extra keyword,
    ``should_stop: Callable[[], bool]``, polled while generating (stream_chat passes it)."""

    model_config = ConfigDict(arbitrary_types_allowed=True, protected_namespaces=())

    model_name: str
    model_path: str
    temperature: float = 0.2
    max_tokens: int = 512
    context_tokens: int = 8192
    repetition_penalty: float = 1.0

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "model_name": self.model_name,
            "model_path": self.model_path,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "repetition_penalty": self.repetition_penalty,
        }

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        # One code path for both: the non-streamed answer is the joined stream.
        chunks = list(self._stream(messages, stop=stop, run_manager=run_manager, **kwargs))
        text = "".join(c.message.text for c in chunks)
        last = chunks[-1].message if chunks else AIMessageChunk(content="")
        message = AIMessage(
            content=text,
            usage_metadata=last.usage_metadata,
            response_metadata=dict(last.response_metadata),
        )
        return ChatResult(generations=[ChatGeneration(message=message)])

    @abstractmethod
    def count_tokens(self, text: str) -> int:
        """Tokens of `text` in this model's own tokenizer."""


class LocalChatModel(_LocalBase):
    """A chat model run in process by transformers (CPU, fp32), with the tokenizer's chat
    template; greedy when temperature is 0, sampled otherwise."""

    _weights: _Weights | None = PrivateAttr(default=None)

    @property
    def _llm_type(self) -> str:
        return "vidchat-local-transformers"

    @property
    def weights(self) -> _Weights:
        """The loaded model and tokenizer (loaded on first use, then shared process-wide)."""
        if self._weights is None:
            self._weights = _load_weights(Path(self.model_path))
        return self._weights

    def count_tokens(self, text: str) -> int:
        """Tokens of `text` in this model's own tokenizer."""
        return len(self.weights.tokenizer.encode(text, add_special_tokens=False))

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        *,
        should_stop: Callable[[], bool] | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        w = self.weights
        transformers = _import_transformers()
        tok = w.tokenizer
        prompt = tok.apply_chat_template(
            _to_chat_dicts(messages), tokenize=False, add_generation_prompt=True
        )
        enc = tok(prompt, return_tensors="pt", add_special_tokens=False)
        n_prompt = int(enc["input_ids"].shape[1])
        context = min(
            self.context_tokens,
            int(getattr(w.model.config, "max_position_embeddings", self.context_tokens)),
        )
        if n_prompt >= context:
            raise LLMError(
                f"local model {self.model_name}: the prompt is {n_prompt} tokens, over its "
                f"{context}-token context; render the record with a smaller budget"
            )
        max_new = min(self.max_tokens, context - n_prompt)

        halt = threading.Event()  # set by us: a stop string, the consumer closing, an error
        criteria = _cancel_criteria(lambda: halt.is_set() or bool(should_stop and should_stop()))
        streamer = transformers.TextIteratorStreamer(
            tok, skip_prompt=True, skip_special_tokens=True, timeout=0.05
        )
        sampling = (
            {"do_sample": True, "temperature": self.temperature, "top_p": 1.0}
            if self.temperature > 0
            else {"do_sample": False}
        )
        result: dict[str, Any] = {}

        def run() -> None:
            try:
                import torch

                # Per-thread setting (the rest of the process keeps its own): see _gen_threads.
                torch.set_num_threads(_gen_threads())
                with torch.inference_mode():
                    result["out"] = w.model.generate(
                        **enc,
                        max_new_tokens=max_new,
                        streamer=streamer,
                        stopping_criteria=transformers.StoppingCriteriaList([criteria]),
                        pad_token_id=tok.pad_token_id
                        if tok.pad_token_id is not None
                        else tok.eos_token_id,
                        repetition_penalty=self.repetition_penalty,
                        **sampling,
                    )
            except BaseException as e:  # re-raised in the consumer's thread
                result["error"] = e
            finally:
                streamer.end()  # a second end after a normal finish only repeats the stop signal

        scanner = _StopScanner(stop)
        with w.lock:
            worker = threading.Thread(target=run, name="vidchat-local-llm", daemon=True)
            worker.start()
            try:
                while True:
                    try:
                        piece = next(streamer)
                    except queue.Empty:
                        if should_stop and should_stop():
                            halt.set()
                        continue
                    except StopIteration:
                        break
                    text = scanner.feed(piece)
                    if text:
                        if run_manager:
                            run_manager.on_llm_new_token(text)
                        yield ChatGenerationChunk(message=AIMessageChunk(content=text))
                    if scanner.hit or (should_stop and should_stop()):
                        halt.set()
                        break
            finally:
                # Also reached when the consumer closes the generator: stop the worker and wait
                # for it, so the lock is free and no thread keeps burning CPU.
                halt.set()
                worker.join()
        if "error" in result:
            e = result["error"]
            raise LLMError(f"local model {self.model_name} failed: {type(e).__name__}: {e}") from e
        tail = "" if scanner.hit else scanner.flush()
        n_out = int(result["out"].shape[1]) - n_prompt if "out" in result else 0
        eos = tok.eos_token_id
        ended = "out" in result and n_out > 0 and int(result["out"][0, -1]) == eos
        finish = "stop" if scanner.hit or ended else "length" if n_out >= max_new else "cancelled"
        yield ChatGenerationChunk(
            message=AIMessageChunk(
                content=tail,
                usage_metadata={
                    "input_tokens": n_prompt,
                    "output_tokens": n_out,
                    "total_tokens": n_prompt + n_out,
                },
                response_metadata={"finish_reason": finish, "model_name": self.model_name},
            )
        )


class LlamaCppChatModel(_LocalBase):
    """A GGUF chat model run in process by llama.cpp (``llama_cpp.Llama``), with the chat
    template stored in the GGUF file."""

    _llama: Any = PrivateAttr(default=None)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @property
    def _llm_type(self) -> str:
        return "vidchat-local-llama-cpp"

    @property
    def llama(self) -> Any:
        """The ``llama_cpp.Llama`` instance (created on first use)."""
        if self._llama is None:
            import llama_cpp

            self._llama = llama_cpp.Llama(
                model_path=self.model_path, n_ctx=self.context_tokens, verbose=False
            )
        return self._llama

    def count_tokens(self, text: str) -> int:
        """Tokens of `text` in this model's own tokenizer."""
        return len(self.llama.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        *,
        should_stop: Callable[[], bool] | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        finish: str | None = None
        with self._lock:
            # llama.cpp generates lazily, one token per next(): closing the iterator is the stop.
            stream = self.llama.create_chat_completion(
                messages=_to_chat_dicts(messages),
                stream=True,
                max_tokens=self.max_tokens,
                temperature=self.temperature,
                repeat_penalty=self.repetition_penalty,
                stop=stop or None,
            )
            try:
                for part in stream:
                    choice = part["choices"][0]
                    finish = choice.get("finish_reason") or finish
                    text = choice.get("delta", {}).get("content") or ""
                    if text:
                        if run_manager:
                            run_manager.on_llm_new_token(text)
                        yield ChatGenerationChunk(message=AIMessageChunk(content=text))
                    if should_stop and should_stop():
                        finish = "cancelled"
                        break
            finally:
                close = getattr(stream, "close", None)
                if close is not None:
                    close()
        yield ChatGenerationChunk(
            message=AIMessageChunk(
                content="",
                response_metadata={"finish_reason": finish, "model_name": self.model_name},
            )
        )


# --------------------------------------------------------------------------------------------
# The factory
# --------------------------------------------------------------------------------------------

_models: dict[str, BaseChatModel] = {}
_models_lock = threading.Lock()


def _llama_cpp_available() -> bool:
    return importlib.util.find_spec("llama_cpp") is not None


def _api_key(config: LLMConfig) -> str:
    key = os.environ.get(config.api_key_env)
    if config.backend == "openai" and not key:
        raise LLMError(
            f"the openai backend needs an API key in ${config.api_key_env}; set it, or use "
            "--llm local / --llm openai-compatible:URL"
        )
    return key or _NO_KEY


def _base_url(config: LLMConfig) -> str:
    if config.backend == "openai":
        # Explicit, so that an OPENAI_BASE_URL in the environment (read by the openai client
        # itself) cannot silently redirect a config that says "openai".
        return config.base_url or OPENAI_BASE_URL
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
    if config.backend != "local":
        # A changed key in the environment must give a new client, not the cached old one.
        secret = os.environ.get(config.api_key_env) or ""
        key = hashlib.sha256(secret.encode()).hexdigest()[:16]
    return config.model_dump_json() + key


def _build(config: LLMConfig) -> BaseChatModel:
    if config.backend == "local":
        resolved = _local_source(config)
        path = resolved.require()
        common = {
            "model_name": resolved.name,
            "temperature": config.temperature,
            "max_tokens": config.max_tokens,
            "context_tokens": config.context_tokens,
            "repetition_penalty": config.repetition_penalty,
        }
        if _is_gguf(path) and _llama_cpp_available():
            return LlamaCppChatModel(model_path=str(path), **common)
        return LocalChatModel(model_path=str(_transformers_folder(resolved)), **common)

    from langchain_openai import ChatOpenAI

    return ChatOpenAI(
        model=_remote_model_name(config),
        api_key=_api_key(config),
        base_url=_base_url(config),
        timeout=config.timeout_s,
        max_retries=config.max_retries,
        temperature=config.temperature,
        max_tokens=config.max_tokens,
        # Read back by the error messages ("rejected the API key: check $VAR").
        metadata={"vidchat_api_key_env": config.api_key_env},
    )


def make_chat_model(config: LLMConfig) -> BaseChatModel:
    """The chat model for `config`, built once per process and config (a REPL or notebook
    reuses the loaded weights; local models also share weights across temperatures).

    Local models load their weights on first use, converting a GGUF to a cached transformers
    folder the first time ever (about 20 s for SmolLM2-135M; later starts load in under 1 s).
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
    env = (model.metadata or {}).get("vidchat_api_key_env", "OPENAI_API_KEY")
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
            hint = f"check ${env}" if os.environ.get(env) else f"no key was sent: set ${env}"
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
    stops generation promptly: local models check it after every token; remote streams are
    closed (which closes the HTTP response) as soon as the next chunk arrives.
    """
    halt = threading.Event()

    def should_stop() -> bool:
        return halt.is_set() or (cancel is not None and cancel.is_set())

    kwargs: dict[str, Any] = {"should_stop": should_stop} if isinstance(model, _LocalBase) else {}
    chunks = model.stream(messages, **kwargs)
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
        assert isinstance(model, _LocalBase)
        return model.count_tokens
    from orchestrator.render import estimate_tokens

    return estimate_tokens


def describe(config: LLMConfig) -> str:
    """One line for ``/llm`` and ``ask --format json``: backend, model and where it comes from.

    Never loads a model or calls the network.
    """
    if config.backend == "local":
        name = config.model or DEFAULT_LOCAL_MODEL
        r = resolve(name)
        if not r.available or r.path is None:
            return f"local {name} (unavailable: {r.reason or 'not a local model'})"
        if r.origin == "package":
            where = f"shipped in package {SHIPPED[name].dist}: {r.path.name}"
        else:
            where = str(r.path)
        if _is_gguf(r.path):
            engine = "llama.cpp" if _llama_cpp_available() else "transformers fp32 (cached)"
        else:
            engine = "transformers"
        return (
            f"local {name} ({where}; {engine}; temperature {config.temperature}, "
            f"max {config.max_tokens} tokens)"
        )
    url = config.base_url or (OPENAI_BASE_URL if config.backend == "openai" else "(no base URL)")
    key = f"key from ${config.api_key_env}" if os.environ.get(config.api_key_env) else "no key"
    return (
        f"{config.backend} {_remote_model_name(config)} at {url} ({key}; timeout "
        f"{config.timeout_s:g}s, {config.max_retries} retries)"
    )
