"""Streaming and one-shot calls to any chat model, with cancelling and the one error vocabulary
(`vidchat.llm.errors`)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage

from vidchat.llm.errors import LLMError, to_llm_error

__all__ = ["invoke_chat", "stream_chat"]


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
                raise to_llm_error(e, model, mid_stream=started) from e
            if should_stop():
                return
            text = chunk.text
            if text:
                started = True
                yield text
    finally:
        halt.set()
        # A generator (every langchain stream) has close(); it ends the HTTP response.
        close = getattr(chunks, "close", None)
        if close is not None:
            with contextlib.suppress(Exception):
                close()


def invoke_chat(model: BaseChatModel, messages: list[BaseMessage]) -> AIMessage:
    """The whole answer to `messages` in one message (with usage metadata where the backend
    reports it), every backend exception mapped to an LLMError as in `stream_chat`."""
    try:
        result = model.invoke(messages)
    except Exception as e:
        raise to_llm_error(e, model) from e
    if not isinstance(result, AIMessage):  # pragma: no cover - chat models return AIMessage
        raise LLMError(f"the LLM returned {type(result).__name__}, expected an AIMessage")
    return result
