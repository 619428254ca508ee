"""Saved prompt prefixes: the local model's reading of a record, kept on disk between runs.

Reading a 2,000-token record takes a 1.5B model on two cores about 15-25 s, and a fresh process
(``vidchat ask`` asked twice, a new chat over a video already asked about, the web app after a
restart) used to pay it every time. llama.cpp can save a slot's KV state (the tokens it holds and
their keys and values) to a file and restore it later; a request whose prompt starts with the
same tokens then reuses them, as it does within one server's life (`cache_prompt`).

- The file's name is a hash of the prefix's messages and of everything that changes what their
  KV state is: the model file (`vidchat.kernel.models.file_fingerprint`), the KV cache type and
  the llama.cpp build. A changed record, prompt, model or build is a different name, never a
  wrong reuse; and llama.cpp compares the restored tokens with each prompt anyway, reusing only
  the common start.
- Saved after a prefix of at least `MIN_SAVE_TOKENS` was read (a prefill, or a question's
  answer), under a temporary name renamed into place: a killed run leaves no half file under the
  real name. A file that fails to restore is deleted.
- The folder (`prefix_dir`: the cache root's ``llm-prefix``) keeps at most `PREFIX_CACHE_MIB`,
  the least recently used files going first (Qwen2.5-Coder-1.5B with an f16 KV cache: 28
  layers x 2 KV heads x 128 values x keys and values x 2 bytes = 28 KiB a token, about 60 MiB
  for a 2,150-token record). ``VIDCHAT_LLM_PREFIX_CACHE=0`` turns it off (benchmarks measuring a
  cold start do); an absolute path there puts the files in that folder.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

from vidchat.kernel.models import cache_dir, file_fingerprint

__all__ = [
    "MIN_SAVE_TOKENS",
    "PREFIX_CACHE_ENV",
    "PREFIX_CACHE_MIB",
    "prefix_dir",
    "prefix_file",
    "prune",
]

log = logging.getLogger(__name__)

PREFIX_CACHE_ENV = "VIDCHAT_LLM_PREFIX_CACHE"
# The most the saved prefixes may take on disk (about 17 records of 2,150 tokens at 1.5B).
PREFIX_CACHE_MIB = 1024
# Shorter prefixes are read again faster than a file is worth keeping (about 2 s at 1.5B).
MIN_SAVE_TOKENS = 256
SUFFIX = ".kv"


def prefix_dir() -> Path | None:
    """The folder saved prefixes live in: ``VIDCHAT_LLM_PREFIX_CACHE`` when it names a folder
    (an absolute path), None when it is 0/false/no/off, else the cache root's ``llm-prefix``."""
    value = os.environ.get(PREFIX_CACHE_ENV, "").strip()
    if value.lower() in ("0", "false", "no", "off"):
        return None
    if value.startswith("/"):
        return Path(value)
    return cache_dir() / "llm-prefix"


@functools.cache
def _build() -> str:
    """The llama.cpp build (version and what it was compiled for): one process, one build."""
    try:
        import xllamacpp

        from vidchat.llm.server import llama_build

        return f"{getattr(xllamacpp, '__version__', '?')} {llama_build().system_info}"
    except Exception:  # no llama.cpp here: nothing will be saved by it either
        return "unknown"


@functools.lru_cache(maxsize=8)
def _model_id(path: str, size: int, mtime_ns: int) -> str:
    """`file_fingerprint` of a model file, read once per file version: every question keys its
    prefix by it, and a GGUF does not change under a running server."""
    return file_fingerprint(Path(path))


def prefix_file(model_path: str, kv_type: str, messages: Sequence[dict[str, str]]) -> str:
    """The file name (no folder) of the saved prefix `messages` (OpenAI chat format, as sent)
    for this model file, KV cache type and llama.cpp build."""
    try:
        st = Path(model_path).stat()
        model = _model_id(model_path, st.st_size, st.st_mtime_ns)
    except OSError:
        model = file_fingerprint(Path(model_path))  # no such file: as before, uncached
    h = hashlib.sha256()
    for part in (model, kv_type, _build()):
        h.update(part.encode() + b"\0")
    h.update(json.dumps(list(messages), ensure_ascii=False, sort_keys=True).encode())
    return h.hexdigest()[:32] + SUFFIX


def prune(folder: Path, max_mib: float = PREFIX_CACHE_MIB) -> list[Path]:
    """Delete the least recently used saved prefixes beyond `max_mib` in `folder` (and stray
    temporary files of runs that died while saving); returns what was deleted."""
    files = []
    for p in folder.glob(f"*{SUFFIX}"):
        with contextlib.suppress(OSError):
            st = p.stat()
            files.append((st.st_mtime, st.st_size, p))
    files.sort(reverse=True)
    deleted = []
    total = 0
    for _, size, p in files:
        total += size
        if total > max_mib * 2**20:
            with contextlib.suppress(OSError):
                p.unlink()
                deleted.append(p)
    for p in folder.glob(f"*{SUFFIX}.tmp-*"):
        with contextlib.suppress(OSError, ValueError):
            pid = int(p.name.rsplit("-", 1)[1])
            if pid != os.getpid() and not Path(f"/proc/{pid}").exists():
                p.unlink()
                deleted.append(p)
    return deleted
