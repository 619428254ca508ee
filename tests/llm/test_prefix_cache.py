"""Saved prompt prefixes (`vidchat.llm.prefix_cache`): a record read once is restored by the next
run's server instead of being read again; a bad file is dropped; the folder stays bounded; off
with VIDCHAT_LLM_PREFIX_CACHE=0. Runs the shipped SmolLM2-135M through the real server."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from tests.conversation.chat_helpers import HashingEmbedder, small_record
from vidchat.conversation.session import ChatSession
from vidchat.kernel.llm_config import LLMConfig
from vidchat.llm.factory import make_chat_model
from vidchat.llm.local_chat import LocalServerChatModel
from vidchat.llm.prefix_cache import (
    MIN_SAVE_TOKENS,
    SUFFIX,
    prefix_dir,
    prefix_file,
    prune,
)
from vidchat.llm.server import stop_all

SMOL = "llm:smollm2-135m"
# A record-sized system message: well over MIN_SAVE_TOKENS.
RECORD = SystemMessage(
    "Answer from the record.\n<record>\n"
    + "\n".join(f"00:{i:02d} speech: \"sentence {i} about the harbor\"" for i in range(30))
    + "\n</record>"
)


def _smol() -> LocalServerChatModel:
    model = make_chat_model(LLMConfig(model=SMOL, temperature=0, max_tokens=8, context_tokens=2048))
    assert isinstance(model, LocalServerChatModel)
    return model


@pytest.fixture
def fresh(cache_dir, monkeypatch):
    """Saved prefixes on, in a cache folder of its own; no server left running after the test."""
    monkeypatch.setenv("VIDCHAT_LLM_PREFIX_CACHE", "1")
    stop_all()
    yield cache_dir
    stop_all()


def test_a_saved_reading_is_restored_by_the_next_server(fresh):
    first = _smol().prefill([RECORD])
    assert first["restored_n"] == 0 and first["cache_n"] == 0
    assert first["saved_n"] >= MIN_SAVE_TOKENS
    files = list((fresh / "llm-prefix").glob(f"*{SUFFIX}"))
    assert len(files) == 1 and not list((fresh / "llm-prefix").glob("*.tmp-*"))

    stop_all()  # a new run: a new server, nothing in its prompt cache
    again = _smol().prefill([RECORD])
    assert again["restored_n"] == first["saved_n"]
    assert again["cache_n"] >= first["saved_n"] - 1  # llama.cpp re-reads at most the last token
    assert again["prompt_n"] <= 2 and again["saved_n"] == 0
    # The same server holds it now: no second restore.
    assert _smol().prefill([RECORD])["restored_n"] == 0


def test_a_file_that_does_not_restore_is_deleted(fresh):
    model = _smol()
    name = prefix_file(model.model_path, "f16", [{"role": "system", "content": RECORD.content}])
    bad = fresh / "llm-prefix" / name
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"not a llama.cpp slot file")
    out = model.prefill([RECORD])
    assert out["restored_n"] == 0 and out["cache_n"] == 0  # read afresh
    assert out["saved_n"] >= MIN_SAVE_TOKENS and bad.stat().st_size > 1000  # and saved again


def test_short_prefixes_and_the_switch(fresh, monkeypatch):
    assert _smol().prefill([HumanMessage("Hello there.")])["saved_n"] == 0  # not worth a file
    monkeypatch.setenv("VIDCHAT_LLM_PREFIX_CACHE", str(fresh / "elsewhere"))
    assert prefix_dir() == fresh / "elsewhere"
    monkeypatch.setenv("VIDCHAT_LLM_PREFIX_CACHE", "0")
    assert prefix_dir() is None
    model = _smol()
    assert model.server().spec.slot_dir == ""
    assert model.prefill([RECORD])["saved_n"] == 0
    assert not list((fresh / "llm-prefix").glob(f"*{SUFFIX}"))


def test_a_session_saves_after_its_answer_and_the_next_run_restores(fresh):
    ctx = small_record()
    s = ChatSession(ctx, llm=_smol(), embedder=HashingEmbedder())
    s.ask("What is written on the sign?")
    # Saved in the background (the answer is not held up), by a thread exit waits for.
    savers = [t for t in threading.enumerate() if t.name == "vidchat-llm-save"]
    assert all(not t.daemon for t in savers)
    for t in savers:
        t.join(60)
    saved = list((fresh / "llm-prefix").glob(f"*{SUFFIX}"))
    assert len(saved) == 1
    stop_all()
    s2 = ChatSession(ctx, llm=_smol(), embedder=HashingEmbedder())
    s2.ask("What does the dog do?")
    assert s2.chat_model().server().slot_prefix == saved[0].name  # restored, then answered


def test_names_follow_the_prefix_and_the_kv_type(tmp_path):
    model = tmp_path / "m.gguf"
    model.write_bytes(b"weights" * 1000)
    a = [{"role": "system", "content": "record A"}]
    assert prefix_file(str(model), "f16", a) == prefix_file(str(model), "f16", a)
    assert prefix_file(str(model), "f16", a) != prefix_file(str(model), "q8_0", a)
    assert prefix_file(str(model), "f16", a) != prefix_file(
        str(model), "f16", [{"role": "system", "content": "record B"}]
    )
    before = prefix_file(str(model), "f16", a)
    model.write_bytes(b"other weights" * 1000)  # a changed model file: a different name
    assert prefix_file(str(model), "f16", a) != before


def test_prune_keeps_the_most_recently_used(tmp_path):
    now = time.time()
    for i in range(4):
        p = tmp_path / f"{i}{SUFFIX}"
        p.write_bytes(b"x" * 2**20)  # 1 MiB each
        os.utime(p, (now - 100 + i, now - 100 + i))  # 3 is the newest
    stray = tmp_path / f"9{SUFFIX}.tmp-999999999"  # a dead run's half-written save
    stray.write_bytes(b"x")
    deleted = prune(tmp_path, max_mib=2.5)
    assert sorted(p.name for p in deleted) == sorted([f"0{SUFFIX}", f"1{SUFFIX}", stray.name])
    assert sorted(p.name for p in Path(tmp_path).iterdir()) == [f"2{SUFFIX}", f"3{SUFFIX}"]
