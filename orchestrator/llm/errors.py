"""One error vocabulary for every backend: `LLMError`, and `to_llm_error`, which maps whatever a
backend raised (openai client, httpx, langchain, pydantic) to one line naming the endpoint or
model and the cause.

Network failures are retried by the openai client itself (exponential backoff on connection
errors, timeouts, 408/409/429 and 5xx — including a failing *start* of a stream, whose status
is checked before the first chunk); what is left surfaces here. openai, httpx and pydantic are
imported only when an error is being mapped.
"""

from __future__ import annotations

import importlib.util
import json
import os
from typing import TYPE_CHECKING, Any

from vidchat.kernel.errors import VidchatError

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

__all__ = ["LLMError", "to_llm_error"]


class LLMError(VidchatError):
    """An LLM call failed; the message is one line naming the endpoint or model and the cause."""


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


def to_llm_error(e: BaseException, model: BaseChatModel, mid_stream: bool = False) -> LLMError:
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
