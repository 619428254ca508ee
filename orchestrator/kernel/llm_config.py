"""LLM settings as they appear in a profile's ``llm:`` section, on the command line and in the
environment. Kept apart from `vidchat.llm` so that loading a profile imports no LLM code."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Backend = Literal["local", "openai", "openai-compatible"]

DEFAULT_LOCAL_MODEL = "llm:qwen2.5-coder-1.5b"


class LLMConfig(BaseModel):
    """Which LLM answers, and how it is called."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    backend: Backend = "local"
    model: str | None = Field(
        None,
        description="local: a shipped name or a GGUF path (default llm:qwen2.5-coder-1.5b); "
        "openai: e.g. gpt-4o-mini; openai-compatible: the server's model name",
    )
    base_url: str | None = Field(
        None, description="openai-compatible endpoint, e.g. http://127.0.0.1:8000/v1"
    )
    api_key_env: str | None = Field(
        None,
        description="the environment variable holding this endpoint's key. openai: default "
        "OPENAI_API_KEY; openai-compatible: no key is sent unless a variable is named here",
    )
    # Greedy by default: an answer read off the record should be the same every time it is asked
    # (at 0.2 the default local model sometimes repeated an instruction quoted from the video).
    temperature: float = Field(0.0, ge=0, le=2)
    max_tokens: int = Field(512, ge=1, description="most tokens in one answer")
    repetition_penalty: float = Field(
        1.15,
        ge=1.0,
        le=2.0,
        description="local models only: discourages the loops small models fall into",
    )
    context_tokens: int = Field(8192, ge=512, description="the model's context window")
    timeout_s: float = Field(60.0, gt=0)
    max_retries: int = Field(3, ge=0)
