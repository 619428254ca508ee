"""Token counting for a configured LLM: exact where the model's own tokenizer is at hand."""

from __future__ import annotations

from collections.abc import Callable

from vidchat.kernel.llm_config import LLMConfig
from vidchat.llm.factory import make_chat_model
from vidchat.llm.local_chat import LocalServerChatModel

__all__ = ["token_counter"]


def token_counter(config: LLMConfig) -> Callable[[str], int]:
    """A function counting tokens of a text for `config`'s model: the local model's own
    tokenizer (exact), or for remote models the renderer's tokenizer-free estimate."""
    if config.backend == "local":
        model = make_chat_model(config)
        assert isinstance(model, LocalServerChatModel)
        return model.count_tokens
    from vidchat.text.render import estimate_tokens

    return estimate_tokens
