"""The LLM layer: which chat model answers, and one way to call any of them.

One client path for every backend: ``langchain_openai.ChatOpenAI`` (the openai client) against
an OpenAI-compatible ``/v1`` endpoint, so streaming, cancelling, timeouts and fault handling are
the same everywhere. Backends: ``local`` (vidchat's own llama.cpp server on loopback, a shipped
GGUF name such as the default ``llm:qwen2.5-coder-1.5b`` or any path), ``openai``
(api.openai.com only, key from ``$OPENAI_API_KEY``) and ``openai-compatible`` (any ``/v1``
endpoint; a key only when a variable is named for it).

Modules, one job each:

- `vidchat.llm.config` — the settings in force (`resolve_llm_config`: flag > environment >
  profile > defaults), the ``--llm`` syntax, where keys may go (`key_variable`), `describe`;
- `vidchat.llm.factory` — `make_chat_model` (one chat model per backend and settings, cached
  per process) and `prefill` (warm the local server's prompt cache);
- `vidchat.llm.streaming` — `stream_chat` (cancellable) and `invoke_chat`;
- `vidchat.llm.errors` — `LLMError` and `to_llm_error`, one line for any backend failure;
- `vidchat.llm.tokens` — `token_counter` (the local model's tokenizer, or an estimate);
- `vidchat.llm.local` — local model files: `resolve_local_model`, `local_model_path`,
  `transformers_folder` / `export_transformers_folder` (GGUF → transformers, converted once),
  `import_transformers` (public helpers for `vidchat.embed_model` and ``transformers serve``);
- `vidchat.llm.local_chat` — `LocalServerChatModel`, the local backend's chat model;
- `vidchat.llm.server` — the llama.cpp server process itself (start, health, stop).

Importing this package imports none of them; heavy libraries (torch, transformers,
langchain_openai, xllamacpp) are imported inside the functions that need them.
"""
