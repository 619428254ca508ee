"""bench/chat_bench.py's pieces that do not need the default model: the settings it compares,
the results file it updates, the CPU-time reading. (The measurements themselves are the bench's
job, never a test's: no test depends on how fast the machine is.)"""

from __future__ import annotations

import json
import os

import pytest

from bench import chat_bench
from vidchat.llm.server import ServerSpec


def test_every_compared_setting_is_a_valid_server_spec():
    settings = [*chat_bench.PREFILL_SETTINGS, *chat_bench.EXTRA_SETTINGS.items()]
    base = {"threads": 2, "batch_threads": 2}
    specs = {name: ServerSpec("m.gguf", 8192, **{**base, **o}) for name, o in settings}
    # The sweep starts and ends with llama.cpp's own defaults, to show drift from other load.
    llama = specs["default"]
    assert chat_bench.PREFILL_SETTINGS[-1][1] == chat_bench.LLAMA_DEFAULTS
    assert (llama.ubatch_tokens, llama.repack, llama.flash_attn) == (512, True, None)
    # Every other setting changes something; vidchat's defaults are the measured winner.
    others = [n for n in specs if n not in ("default", "default (again)")]
    assert all(specs[n] != llama for n in others)
    assert specs["vidchat default"] == specs["repack + ubatch 2048"]


def test_settings_are_chosen_by_name_in_order_with_repeats():
    chosen = chat_bench.settings_named("default, no repack + ubatch 2048,default")
    assert [name for name, _ in chosen] == ["default", "no repack + ubatch 2048", "default"]
    assert chosen[1][1] == {**chat_bench.LLAMA_DEFAULTS, "repack": False, "ubatch_tokens": 2048}
    with pytest.raises(SystemExit, match="unknown setting 'turbo'; known: default"):
        chat_bench.settings_named("turbo")


def test_results_file_keeps_the_other_modes_keys(tmp_path):
    out = tmp_path / "r.json"
    chat_bench._update_results(out, "latency", {"a": 1})
    chat_bench._update_results(out, "prefill_settings", {"b": 2})
    chat_bench._update_results(out, "latency", {"a": 3})
    assert json.loads(out.read_text()) == {"latency": {"a": 3}, "prefill_settings": {"b": 2}}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]  # no temporary file left


def test_cpu_seconds_of_a_process():
    sum(i * i for i in range(200_000))  # some CPU work of our own
    assert chat_bench._cpu_seconds(os.getpid()) > 0
    assert chat_bench._cpu_seconds(None) == 0.0
