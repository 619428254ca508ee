"""The local server's prefill settings, its start ahead of need, and the idle-machine check.

Runs the shipped SmolLM2-135M where a real server is needed (it starts in about 2 s)."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

from vidchat.kernel.llm_config import LLMConfig
from vidchat.kernel.models import resolve
from vidchat.llm import server as server_mod
from vidchat.llm.errors import LLMError
from vidchat.llm.factory import make_chat_model, start_local_server
from vidchat.llm.local_chat import LocalServerChatModel, wire_messages
from vidchat.llm.server import KV_TYPES, LlamaServer, ServerSpec, share_of_others

SMOL = "llm:smollm2-135m"


def test_spec_checks_its_settings_and_passes_them_to_the_child():
    with pytest.raises(LLMError, match="KV cache type must be one of f16, q8_0, q4_0, got 'q3'"):
        ServerSpec("m.gguf", kv_type="q3")
    with pytest.raises(LLMError, match="ubatch_tokens <= batch_tokens, got 1024 and 512"):
        ServerSpec("m.gguf", batch_tokens=512, ubatch_tokens=1024)
    args = ServerSpec(
        "m.gguf", 1024, 1, 2, batch_tokens=1024, ubatch_tokens=256, flash_attn=False,
        kv_type="q8_0", repack=False,
    ).child_args()  # fmt: skip
    opts = dict(zip(args[::2], args[1::2], strict=False))
    assert opts["--ctx"] == "1024" and opts["--threads"] == "1"
    assert opts["--batch-threads"] == "2" and opts["--batch"] == "1024"
    assert opts["--ubatch"] == "256" and opts["--flash-attn"] == "off"
    assert opts["--kv-type"] == "q8_0" and args[-1] == "--no-repack"
    # vidchat's defaults (bench/chat_bench.py --prefill-settings): whole-record steps,
    # repacked weights, llama.cpp's own flash-attention choice.
    default = ServerSpec("m.gguf", 1024, 1, 2).child_args()
    assert "--no-repack" not in default
    opts = dict(zip(default[::2], default[1::2], strict=False))
    assert opts["--flash-attn"] == "auto" and opts["--ubatch"] == opts["--batch"] == "2048"
    assert ServerSpec("m.gguf", 1024, 1, 2, repack=False).child_args()[-1] == "--no-repack"
    # Equal settings are equal specs (and so share one server); other settings are not.
    assert ServerSpec("m.gguf", 1024, 1, 2) == ServerSpec("m.gguf", 1024, 1, 2)
    assert ServerSpec("m.gguf", 1024, 1, 2) != ServerSpec("m.gguf", 1024, 1, 2, ubatch_tokens=256)
    assert set(KV_TYPES) == {"f16", "q8_0", "q4_0"}


def test_a_server_with_other_prefill_settings_answers_and_reports_its_cache_use():
    path = str(resolve(SMOL).path)
    spec = ServerSpec(
        path, 1024, 1, 1, batch_tokens=256, ubatch_tokens=64, flash_attn=True, kv_type="q8_0",
        repack=False,
    )  # fmt: skip
    server = LlamaServer(spec)
    try:
        server.ensure()
        system = "You answer in one word. " + " ".join(f"Line {i}: a red car." for i in range(40))
        first = [{"role": "system", "content": system}, {"role": "user", "content": "Colour?"}]
        body = {"messages": first, "max_tokens": 4, "temperature": 0.0}
        reply = server.post("/v1/chat/completions", body, timeout=120)
        t1 = reply["timings"]
        # More prompt tokens than one ubatch (64) and one batch (256): several steps ran.
        assert t1["prompt_n"] > 256
        assert reply["choices"][0]["message"]["content"].strip()
        again = [*first[:1], {"role": "user", "content": "And the shape?"}]
        t2 = server.post("/v1/chat/completions", {**body, "messages": again}, timeout=120)[
            "timings"
        ]
        # The shared system message came from the prompt cache; only the new turn was read.
        assert t2["cache_n"] >= server.count_tokens(system)
        assert t2["prompt_n"] < 20
    finally:
        server.stop()


def test_the_server_starts_ahead_of_need_and_is_then_shared(caplog):
    assert start_local_server(LLMConfig(backend="openai-compatible", base_url="http://x")) is None
    config = LLMConfig(model=SMOL, max_tokens=8, context_tokens=1024)
    thread = start_local_server(config)
    assert thread is not None
    thread.join(120)
    model = make_chat_model(config)
    assert isinstance(model, LocalServerChatModel)
    running = [s for s in server_mod.running_servers() if s.spec.model_path == model.model_path]
    assert running and running[0].alive()
    pid = running[0].pid
    # The first question uses the server started ahead of it, not a new one.
    assert model.server().pid == pid and model.server().starts == 1
    model.server().stop()

    # A failure in the background is logged, not raised; the question reports it later.
    bad = LLMConfig(model="/nonexistent/model.gguf")
    with caplog.at_level("INFO"):
        t = start_local_server(bad)
        assert t is not None
        t.join(30)
    assert not t.is_alive()
    assert "starting the local LLM server failed" in caplog.text


def test_prefill_returns_timings_and_messages_go_out_as_the_client_sends_them():
    msgs = [SystemMessage("rules"), HumanMessage("q?"), AIMessage("a."), HumanMessage("q2?")]
    assert wire_messages(msgs) == [
        {"role": "system", "content": "rules"},
        {"role": "user", "content": "q?"},
        {"role": "assistant", "content": "a."},
        {"role": "user", "content": "q2?"},
    ]
    with pytest.raises(TypeError, match="expected system, human or ai messages"):
        wire_messages([HumanMessage(content=[{"type": "text", "text": "x"}])])
    model = make_chat_model(LLMConfig(model=SMOL, max_tokens=8, context_tokens=1024))
    assert isinstance(model, LocalServerChatModel)
    t = model.prefill([SystemMessage("You are brief. " * 20)])
    assert t["prompt_n"] + t.get("cache_n", 0) > 20 and t["prompt_ms"] > 0
    t = model.prefill([SystemMessage("You are brief. " * 20)])  # all of it from the cache
    assert t["cache_n"] > 20 and t["prompt_n"] <= 2


def test_only_other_work_counts_against_an_idle_machine():
    # (machine-wide busy CPU-s, this process tree's CPU-s) 1 s apart on 2 cores
    assert share_of_others((10.0, 4.0), (12.0, 6.0), 1.0, 2) == 0.0  # all of it was ours
    assert share_of_others((10.0, 4.0), (11.0, 4.0), 1.0, 2) == 0.5  # one core of others
    assert share_of_others((10.0, 4.0), (13.0, 4.0), 1.0, 2) == 1.0  # clamped
    assert share_of_others((10.0, 4.0), (10.0, 5.0), 1.0, 2) == 0.0  # never negative
    # The real sample runs (psutil, this process tree) and gives a share.
    assert 0.0 <= server_mod.others_cpu_share(0.2) <= 1.0


AVX2_WHEEL_INFO = (
    "CPU : SSE3 = 1 | SSSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | BMI2 = 1 | "
    "LLAMAFILE = 1 | OPENMP = 1 | REPACK = 1 | "
)
AVX512_CPU = "processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma avx512f avx512_vnni avx_vnni\n"


def test_an_avx2_build_on_an_avx512_cpu_leaves_those_features_unused() -> None:
    from vidchat.llm.server import cpu_flags, parse_llama_build

    build = parse_llama_build(AVX2_WHEEL_INFO, cpu_flags(AVX512_CPU))
    assert {"AVX2", "FMA", "REPACK"} <= build.used
    assert build.unused == {"AVX512", "AVX512_VNNI", "AVX_VNNI"}


def test_a_native_build_or_an_avx2_only_cpu_leaves_nothing_unused() -> None:
    from vidchat.llm.server import cpu_flags, parse_llama_build

    native = AVX2_WHEEL_INFO + "AVX512 = 1 | AVX512_VNNI = 1 | AVX_VNNI = 1 | "
    assert not parse_llama_build(native, cpu_flags(AVX512_CPU)).unused
    avx2_cpu = cpu_flags("flags\t: fpu sse2 avx avx2 fma\n")
    assert not parse_llama_build(AVX2_WHEEL_INFO, avx2_cpu).unused
    assert cpu_flags("no flags line here") == frozenset()


def test_the_installed_build_is_read() -> None:
    from vidchat.llm.server import llama_build

    build = llama_build()
    assert build.used, build.system_info  # every build reports the CPU features it uses
    assert build.unused <= build.cpu
