"""The local llama.cpp server: one per process, health-checked, shared, stopped cleanly, and no
orphan after Ctrl-C, a crash or SIGKILL of its parent. Runs the shipped SmolLM2-135M (starts in
about 2 s); the answers' content is not the point here, the process lifecycle is."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from langchain_core.messages import HumanMessage

from vidchat.kernel.llm_config import LLMConfig
from vidchat.kernel.models import resolve
from vidchat.llm.errors import LLMError
from vidchat.llm.factory import make_chat_model, prefill
from vidchat.llm.local_chat import LocalServerChatModel
from vidchat.llm.server import LlamaServer, ServerSpec, running_servers
from vidchat.llm.streaming import invoke_chat, stream_chat
from vidchat.llm.tokens import token_counter

ROOT = Path(__file__).resolve().parents[2]
SMOL = "llm:smollm2-135m"
LONG = [HumanMessage("Write a long story about a dragon who learns to cook. Make it long.")]


def _gone(pid: int, within_s: float = 15.0) -> bool:
    """True once `pid` no longer runs (a zombie of another parent counts as gone)."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().split(") ")[-1].startswith("Z"):
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.1)
    return False


@pytest.fixture(scope="module")
def smol() -> LocalServerChatModel:
    model = make_chat_model(
        LLMConfig(model=SMOL, temperature=0, max_tokens=24, context_tokens=2048)
    )
    assert isinstance(model, LocalServerChatModel)
    return model


def test_one_shared_server_streams_invokes_counts_and_cancels(smol):
    server = smol.server()
    pid = server.pid
    assert pid and server.alive()
    # Another config on the same file (other temperature, answer length) shares the server.
    other = make_chat_model(
        LLMConfig(model=SMOL, temperature=0.7, max_tokens=5, context_tokens=2048)
    )
    assert other is not smol and other.server() is server

    pieces = list(stream_chat(smol, [HumanMessage("What is the capital of France?")]))
    assert len(pieces) >= 2 and "".join(pieces).strip()
    answer = invoke_chat(smol, [HumanMessage("What is the capital of France?")])
    assert answer.content and answer.usage_metadata["output_tokens"] <= 24

    count = token_counter(LLMConfig(model=SMOL, context_tokens=2048))
    assert count("") == 0 and 0 < count("hello world") < count("hello world, person#3 at 00:12")

    # Cancel: the HTTP stream is closed and the server is free for the next question at once.
    long_model = make_chat_model(LLMConfig(model=SMOL, max_tokens=400, context_tokens=2048))
    cancel = threading.Event()
    got = []
    for piece in stream_chat(long_model, LONG, cancel=cancel):
        got.append(piece)
        if len(got) == 3:
            cancel.set()
    assert len(got) == 3
    gen = stream_chat(long_model, LONG)
    next(gen)
    gen.close()
    assert invoke_chat(smol, [HumanMessage("Say yes.")]).content
    assert server.pid == pid and server.starts == 1  # never restarted along the way

    # Prefill warms the prompt cache (a no-op answer of one token).
    assert prefill(smol, [HumanMessage("Remember this record line: 00:01 a red car.")])


def test_a_dead_server_is_restarted_on_next_use(smol):
    server = smol.server()
    old = server.pid
    os.kill(old, signal.SIGKILL)
    # Reaped, not just a zombie leader: llama.cpp's other threads may still be tearing down.
    server.proc.wait(timeout=30)
    assert invoke_chat(smol, [HumanMessage("Say yes.")]).content  # follows it to its new port
    assert server.pid not in (None, old) and server.starts >= 2


def test_the_server_needs_its_token(smol):
    import urllib.error
    import urllib.request

    server = smol.server()
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(server.base_url + "/models", timeout=10)
    assert e.value.code == 401


def test_a_bad_model_file_is_one_line(tmp_path):
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + b"\0" * 64)
    server = LlamaServer(ServerSpec(str(bad), 512, 1))
    with pytest.raises(LLMError, match=r"local LLM server for broken.gguf did not start") as e:
        server.ensure()
    assert "\n" not in str(e.value)
    assert server.pid is None
    with pytest.raises(LLMError, match="model file not found"):
        LlamaServer(ServerSpec(str(tmp_path / "missing.gguf"), 512, 1)).ensure()


# ------------------------------------------------------------------------------------------
# No orphan server: the parent ends every way a process can end
# ------------------------------------------------------------------------------------------

_PARENT = textwrap.dedent(
    """
    import os, sys, time
    from vidchat.llm.server import ServerSpec, local_server
    server = local_server(ServerSpec(sys.argv[1], 1024, 1))
    print(server.pid, flush=True)
    how = sys.argv[2]
    if how == "crash":
        raise RuntimeError("boom")
    if how == "exit":
        sys.exit(0)
    if how == "hard-exit":
        os._exit(3)  # no atexit handlers: only the child's own watchdog can notice
    time.sleep(120)  # "sigint" and "sigkill": wait to be signalled
    """
)


@pytest.mark.parametrize(
    "how",
    [
        pytest.param("exit", marks=pytest.mark.slow),
        pytest.param("crash", marks=pytest.mark.slow),
        pytest.param("hard-exit", marks=pytest.mark.slow),
        "sigint",
        "sigkill",
    ],
)
def test_no_orphan_server_after_the_parent_ends(how):
    gguf = resolve(SMOL).require()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    parent = subprocess.Popen(
        [sys.executable, "-c", _PARENT, str(gguf), how],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        env=env,
    )
    try:
        assert parent.stdout is not None
        line = parent.stdout.readline()
        assert line.strip().isdigit(), (
            parent.stderr.read().decode()[-2000:] if parent.stderr else ""
        )
        child = int(line)
        if how in ("sigint", "sigkill"):
            assert not _gone(child, within_s=0.2)  # it runs while its parent waits
        if how == "sigint":
            parent.send_signal(signal.SIGINT)  # what Ctrl-C in a terminal sends
        elif how == "sigkill":
            parent.kill()
        parent.wait(timeout=30)
        if how == "crash":
            assert parent.returncode == 1
        assert _gone(child), f"llama.cpp server {child} outlived its parent ({how})"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()


def test_stop_all_at_exit_leaves_nothing_running(smol):
    from vidchat.llm.server import stop_all

    pids = [s.pid for s in running_servers()]
    assert pids
    stop_all()
    assert all(_gone(p) for p in pids if p)
    assert running_servers() == []


def test_generation_threads_follow_the_machine_and_the_environment(monkeypatch):
    """Every core while the machine is idle, half beside other work, the environment first;
    decided once per process so equal specs keep sharing one server."""
    from vidchat.llm import server

    monkeypatch.delenv("VIDCHAT_LLM_THREADS", raising=False)
    monkeypatch.setattr(server.os, "cpu_count", lambda: 4)
    monkeypatch.setattr(server, "machine_idle", lambda: True)
    assert server.default_threads() == 4
    monkeypatch.setattr(server, "machine_idle", lambda: False)
    assert server.default_threads() == 2
    monkeypatch.setenv("VIDCHAT_LLM_THREADS", "3")
    assert server.default_threads() == 3 and server.batch_threads() == 3
    monkeypatch.undo()
    server.machine_idle.cache_clear()
    first = server.machine_idle()
    assert server.machine_idle() is first and server.machine_idle.cache_info().hits >= 1

