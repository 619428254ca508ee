"""Local model files: which file a local LLM setting names, and the same weights as a
transformers folder.

Public helpers for every caller that needs the local weights themselves rather than a chat
model: the llama.cpp backend (a GGUF file), ``transformers serve`` and `vidchat.embed_model`
(a transformers folder, converted once from the GGUF into the cache).

- `resolve_local_model` — a local LLMConfig, shipped name (``llm:qwen2.5-coder-1.5b``) or path
  → the resolved model (file present, or a ConfigError that says what is missing);
- `local_model_path` — the GGUF file llama.cpp loads;
- `transformers_folder` — a transformers model folder for it (a folder is used as it is; a
  GGUF is dequantized once, atomically, into ``<cache>/models/…-transformers``);
- `export_transformers_folder` — that folder linked or copied to a destination of your choice;
- `import_transformers` — transformers, importable on CPU torch (`vidchat.kernel.compat`).

torch and transformers are imported only when a conversion runs.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path

from vidchat.kernel.compat import import_transformers
from vidchat.kernel.errors import ConfigError
from vidchat.kernel.llm_config import DEFAULT_LOCAL_MODEL, LLMConfig
from vidchat.kernel.models import ResolvedModel, cache_dir, resolve

__all__ = [
    "export_transformers_folder",
    "import_transformers",
    "is_gguf",
    "local_model_path",
    "resolve_local_model",
    "transformers_folder",
]

_MARKER = "vidchat-source.json"  # inside a converted folder: which GGUF it came from


def resolve_local_model(config_or_path: LLMConfig | str | Path) -> ResolvedModel:
    """The local model a local LLMConfig, a shipped name or a path names, with its file present.

    Raises ConfigError for a non-local config, a hub name (nothing is downloaded here) or a
    model whose file is missing (the message says which package or path would provide it).
    """
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


def is_gguf(path: Path) -> bool:
    """Whether `path` is a GGUF file (llama.cpp's format), judged by its suffix."""
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
    transformers = import_transformers()
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


def transformers_folder(model: ResolvedModel | LLMConfig | str | Path) -> Path:
    """The transformers folder for a local model, converting a GGUF once into the cache.

    `model` is a resolved model or anything `resolve_local_model` takes. A transformers folder
    is returned as it is; a GGUF file is dequantized to fp32 once (atomically: a killed
    conversion leaves nothing behind) and the cached folder is reused while the GGUF's identity
    is unchanged. Raises ConfigError for anything else.
    """
    resolved = model if isinstance(model, ResolvedModel) else resolve_local_model(model)
    path = resolved.require()
    if path.is_dir():
        if not (path / "config.json").exists():
            raise ConfigError(
                f"local LLM folder {path}: expected a transformers model folder "
                "(config.json missing)"
            )
        return path
    if not is_gguf(path):
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
    folder = transformers_folder(config_or_gguf)
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


def local_model_path(config: LLMConfig) -> Path:
    """The GGUF file a local config names (a shipped name or a path), or a ConfigError."""
    resolved = resolve_local_model(config)
    path = resolved.require()
    if not is_gguf(path):
        raise ConfigError(
            f"local LLM model {path}: expected a .gguf file (llama.cpp); for a transformers "
            "folder run an OpenAI-compatible server (e.g. `transformers serve FOLDER`) and use "
            "--llm http://HOST:PORT/v1"
        )
    return path
