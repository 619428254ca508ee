"""Test helpers for the chat layer: a scripted chat model that records what it was sent, and a
hashing embedder. The synthetic records live in `vidchat.testing.records` (the bench uses them too).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import ConfigDict, Field

from vidchat.testing.records import PLANTED, long_record, planted_questions, small_record

__all__ = [
    "PLANTED",
    "Call",
    "HashingEmbedder",
    "ScriptedChatModel",
    "long_record",
    "planted_questions",
    "small_record",
]


# ---------------------------------------------------------------------------------------------
# A chat model that follows a script


@dataclass
class Call:
    """One request the scripted model received."""

    messages: list[BaseMessage]


class ScriptedChatModel(BaseChatModel):
    """Answers from a list of replies (or a function of the messages), streamed word by word.

    Every request is recorded in `calls`. `delay_s` sleeps between chunks (to test cancelling);
    `fail` raises that exception instead of answering. `stopped` is set when a stream is closed
    before its last chunk.
    """

    replies: list[str] | None = None
    reply_fn: Callable[[list[BaseMessage]], str] | None = None
    delay_s: float = 0.0
    fail: Exception | None = None
    calls: list[Call] = Field(default_factory=list)
    stopped: threading.Event = Field(default_factory=threading.Event)
    chunks_sent: int = 0

    model_config = ConfigDict(arbitrary_types_allowed=True)

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def _reply(self, messages: list[BaseMessage]) -> str:
        self.calls.append(Call(list(messages)))
        if self.fail is not None:
            raise self.fail
        if self.reply_fn is not None:
            return self.reply_fn(messages)
        assert self.replies, "ScriptedChatModel ran out of replies"
        return self.replies.pop(0)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=AIMessage(self._reply(messages)))])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        text = self._reply(messages)
        words = text.split(" ")
        done = False
        try:
            for i, w in enumerate(words):
                if self.delay_s:
                    time.sleep(self.delay_s)
                self.chunks_sent += 1
                yield ChatGenerationChunk(message=AIMessageChunk(w if i == 0 else " " + w))
            done = True
        finally:
            if not done:
                self.stopped.set()


class HashingEmbedder:
    """A deterministic bag-of-words embedder (words hashed into 256 dimensions), for testing the
    index's mechanics without loading a model. Counts the texts it was asked to encode."""

    identity = "test:hashing-256"

    def __init__(self) -> None:
        self.encoded = 0

    def encode(self, texts: list[str]) -> Any:
        import re

        import numpy as np

        self.encoded += len(texts)
        out = np.zeros((len(texts), 256), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in re.findall(r"[a-z]+", text.lower()):
                out[i, int(hashlib.md5(word.encode()).hexdigest(), 16) % 256] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1.0, norms)
