"""The local backend's chat model: a GGUF served by vidchat's own llama.cpp server
(`vidchat.llm.server`), reached through the same OpenAI client as every other backend."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import ConfigDict, PrivateAttr

if TYPE_CHECKING:
    from langchain_core.callbacks import CallbackManagerForLLMRun

__all__ = ["LOCAL_TIMEOUT_S", "LocalServerChatModel", "wire_messages"]

log = logging.getLogger(__name__)

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
        from vidchat.llm.prefix_cache import prefix_dir
        from vidchat.llm.server import ServerSpec, local_server

        folder = prefix_dir()
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
        slot_dir = str(folder) if folder is not None else ""
        return local_server(ServerSpec(self.model_path, self.context_tokens, slot_dir=slot_dir))

    def _prefix_path(self, messages: list[BaseMessage]) -> Path | None:
        from vidchat.llm.prefix_cache import prefix_dir, prefix_file

        folder = prefix_dir()
        if folder is None:
            return None
        return folder / prefix_file(self.model_path, self.server().spec.kv_type,
                                    wire_messages(messages))  # fmt: skip

    def restore_prefix(self, messages: list[BaseMessage]) -> int:
        """Load the saved reading of `messages` (`vidchat.llm.prefix_cache`) into the server,
        unless this server already holds it; returns the tokens restored (0: none saved, or
        already held). A file that does not restore is deleted, and 0 returned."""
        path = self._prefix_path(messages)
        if path is None or not path.is_file():
            return 0
        server = self.server()
        if server.slot_prefix == path.name:
            return 0
        try:
            reply = server.slot_action("restore", path.name)
        except Exception as e:  # a truncated or foreign file: read the prefix again instead
            log.warning("saved LLM prefix %s did not restore (%s); deleting it", path.name, e)
            with contextlib.suppress(OSError):
                path.unlink()
            return 0
        with contextlib.suppress(OSError):
            os.utime(path)  # recently used: pruned last
        server.slot_prefix = path.name
        return int(reply.get("n_restored", 0))

    def save_prefix(
        self, messages: list[BaseMessage], tokens: int | None = None, background: bool = False
    ) -> int:
        """Note that the server's slot now starts with `messages` (call it right after the
        server read them: a prefill, or an answer over them), and save that reading when it is
        not saved yet and `tokens` (the prefix's length, if known) is at least
        `MIN_SAVE_TOKENS`. Returns the tokens saved (0: nothing saved, or saving in the
        `background`: a thread the interpreter waits for at exit, so that a one-shot ``vidchat
        ask`` prints its answer first and still leaves the file). Never raises: a failed save
        only costs the next run the time to read the prefix again."""
        from vidchat.llm.prefix_cache import MIN_SAVE_TOKENS

        path = self._prefix_path(messages)
        if path is None:
            return 0
        server = self.server()
        server.slot_prefix = path.name
        if path.is_file() or (tokens is not None and tokens < MIN_SAVE_TOKENS):
            return 0
        if background:
            threading.Thread(
                target=self._save, args=(server, path), name="vidchat-llm-save", daemon=False
            ).start()
            return 0
        return self._save(server, path)

    @staticmethod
    def _save(server: Any, path: Path) -> int:
        from vidchat.llm.prefix_cache import MIN_SAVE_TOKENS, prune

        tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}-{threading.get_ident()}")
        try:
            reply = server.slot_action("save", tmp.name)
            saved = int(reply.get("n_saved", 0))
            if saved < MIN_SAVE_TOKENS:
                tmp.unlink()
                return 0
            os.replace(tmp, path)
        except Exception as e:
            log.info("saving the LLM prefix %s failed: %s", path.name, e)
            with contextlib.suppress(OSError):
                tmp.unlink()
            return 0
        prune(path.parent)
        return saved

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

    def prefill(self, messages: list[BaseMessage], keep: bool = True) -> dict[str, Any]:
        """Have the server process `messages` now (one token generated), so that a later
        question sharing their prefix starts from llama.cpp's prompt cache.

        Returns llama.cpp's timings for the request: ``cache_n`` (prompt tokens reused from the
        cache), ``prompt_n`` (tokens processed now), ``prompt_ms``; and ``restored_n`` /
        ``saved_n``: tokens restored from / saved to the prefix cache
        (`vidchat.llm.prefix_cache`: a saved reading is restored first, a new one saved; not
        with ``keep=False``, for a prefix too common to be worth a file). The
        request goes to the same chat-completions endpoint, through the same chat template, as
        the questions do, so the tokens it leaves in the cache are the ones a question's prompt
        starts with.
        """
        body = {
            "messages": wire_messages(messages),
            "max_tokens": 1,
            "temperature": 0.0,
            "cache_prompt": True,
        }
        restored = self.restore_prefix(messages) if keep else 0
        reply = self.server().post("/v1/chat/completions", body, timeout=self.timeout_s)
        timings = reply.get("timings") if isinstance(reply, dict) else None
        out = dict(timings) if isinstance(timings, dict) else {}
        read = int(out.get("cache_n", 0)) + int(out.get("prompt_n", 0))
        out["restored_n"] = restored
        out["saved_n"] = self.save_prefix(messages, read) if keep and read else 0
        return out


_ROLES = {"system": "system", "human": "user", "ai": "assistant"}


def wire_messages(messages: list[BaseMessage]) -> list[dict[str, str]]:
    """Messages in the OpenAI chat format (role and text), as the OpenAI client sends them."""
    out = []
    for m in messages:
        if m.type not in _ROLES or not isinstance(m.content, str):
            raise TypeError(f"expected system, human or ai messages with text, got {m.type}")
        out.append({"role": _ROLES[m.type], "content": m.content})
    return out
