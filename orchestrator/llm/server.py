"""The local LLM: a llama.cpp server (xllamacpp) on loopback that vidchat starts and stops itself.

One server per (model file, context size, threads) and process, started on first need, shared
by every question of the process (REPL, web app, eval, instruction data), health-checked before
each use, restarted once if it died, and stopped when the process exits.

Lifecycle, and why it is built this way:

- The server runs in a **child process** (this file run as a script), not in vidchat's own
  process: a crash of llama.cpp cannot take vidchat down, and the OS reclaims its memory.
- The child is started in its own session, so a Ctrl-C typed in the terminal reaches vidchat
  (which cancels the answer in progress) and not the server.
- The child **watches its parent**: it holds the read end of a pipe whose write end only the
  parent holds, and it checks its parent pid once a second. When the parent exits for any
  reason — a normal exit, an uncaught exception, Ctrl-C, SIGKILL — the kernel closes the pipe
  (EOF) or re-parents the child, and the child exits at once. ``PR_SET_PDEATHSIG`` is not used:
  it fires when the *thread* that forked the child ends, and the web app starts the server from
  a worker thread that ends long before the process.
- The server requires a bearer token generated per start, which only this process knows:
  another local user cannot use (or read the prompts of) a loopback port it finds open.
- Readiness: the child prints one line after the model has loaded and the port listens; the
  parent waits for it (bounded), then checks ``/health``. A start failure is one line naming
  the model and the server's last log line.

The parent talks to the server only over HTTP (OpenAI-compatible ``/v1`` plus ``/tokenize``),
so the same client code serves this server, vLLM, Ollama and OpenAI.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import json
import os
import secrets
import select
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "CPU_FEATURES",
    "KV_TYPES",
    "LlamaBuild",
    "LlamaServer",
    "ServerSpec",
    "cpu_flags",
    "default_threads",
    "llama_build",
    "local_server",
    "machine_idle",
    "others_cpu_share",
    "parse_llama_build",
    "running_servers",
    "stop_all",
]

READY_TIMEOUT_S = 300.0  # model load on a busy 2-core machine; a 1.1 GB GGUF loads in 2-10 s
_READY = "VIDCHAT-LLAMA-SERVER-READY"
_WATCH_S = 1.0  # how often the child checks that its parent is alive
_TOKENIZE_CACHE = 4096  # texts whose token counts are remembered (record lines recur a lot)


def default_threads() -> int:
    """llama.cpp threads for generating: $VIDCHAT_LLM_THREADS, else every core when the machine
    is otherwise idle as the first server starts, half the cores when other work is running.

    Generation is memory-bound and llama.cpp's workers wait for each other, so extra threads only
    pay while nothing else wants the cores. Measured on 2 cores, Qwen2.5-Coder-1.5B, 64 tokens:
    idle, 1 thread 23.7 tok/s vs 2 threads 34.9 (22.3 vs 14.4 over a 2,770-token chat prompt);
    beside two busy processes, 1 thread 16.0 tok/s vs 2 threads 9.7 (llama.cpp's polling level
    made no difference). Decided once per process (`_machine_idle` is cached): equal specs must
    keep sharing one server whatever the load does later.
    """
    env = os.environ.get("VIDCHAT_LLM_THREADS", "")
    if env.strip().isdigit() and int(env) > 0:
        return int(env)
    cores = os.cpu_count() or 2
    return cores if machine_idle() else max(1, cores // 2)


# Below this share of the machine's CPU in use by everything else, generation takes every core.
IDLE_CPU_SHARE = 0.25


@functools.cache
def machine_idle() -> bool:
    """Whether the machine's CPUs are mostly idle now, apart from this process and its
    children (`others_cpu_share`, sampled once per process)."""
    return others_cpu_share() < IDLE_CPU_SHARE


def others_cpu_share(sample_s: float = 0.3) -> float:
    """The share (0-1) of all cores busy with work other than this process and its children,
    over `sample_s` seconds.

    vidchat's own work does not count: the server is started while this process textualizes
    the video (`vidchat.llm.factory.start_local_server`), and that work is over by the time
    questions are answered.
    """
    import psutil

    def busy() -> tuple[float, float]:
        total = psutil.cpu_times()
        everything = sum(total) - total.idle - getattr(total, "iowait", 0.0)
        me = psutil.Process()
        own = sum(me.cpu_times()[:4])  # user, system, and those of children already reaped
        for child in me.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                own += sum(child.cpu_times()[:2])
        return everything, own

    t0 = time.monotonic()
    before = busy()
    time.sleep(sample_s)
    after = busy()
    return share_of_others(before, after, time.monotonic() - t0, psutil.cpu_count() or 1)


def share_of_others(
    before: tuple[float, float], after: tuple[float, float], seconds: float, cores: int
) -> float:
    """From two samples of (CPU seconds busy machine-wide, CPU seconds of this process tree)
    `seconds` apart: the share of `cores` the rest of the machine kept busy, in [0, 1]."""
    others = (after[0] - before[0]) - (after[1] - before[1])
    return min(1.0, max(0.0, others / max(seconds, 1e-6) / max(cores, 1)))


def batch_threads() -> int:
    """llama.cpp threads for prefill: $VIDCHAT_LLM_THREADS, else every core."""
    env = os.environ.get("VIDCHAT_LLM_THREADS", "")
    if env.strip().isdigit() and int(env) > 0:
        return int(env)
    return max(1, os.cpu_count() or 1)


# CPU features llama.cpp's kernels can use, as /proc/cpuinfo names them and as llama.cpp's
# system info names them. The prebuilt xllamacpp wheel is an AVX2 build; a build compiled on the
# machine (GGML_NATIVE, `.ci/setup.d/41-llm-native.sh`) uses whichever of these the CPU has.
CPU_FEATURES = {
    "avx512f": "AVX512",
    "avx512_vnni": "AVX512_VNNI",
    "avx512_bf16": "AVX512_BF16",
    "avx512vbmi": "AVX512_VBMI",
    "avx_vnni": "AVX_VNNI",
}


@dataclass(frozen=True)
class LlamaBuild:
    """Which CPU features the installed llama.cpp (xllamacpp) was compiled for, against the ones
    this machine's CPU has: a feature in `unused` is speed left on the table (measured on a
    2-core AVX-512 machine: the native build prefills about 1.6x the tokens per CPU-second of
    the prebuilt AVX2 wheel, bench/results/chat_prefill_native.json)."""

    system_info: str
    used: frozenset[str]  # llama.cpp's names of the features the build uses ("AVX2", ...)
    cpu: frozenset[str]  # llama.cpp's names of the CPU_FEATURES this CPU has

    @property
    def unused(self) -> frozenset[str]:
        """Features of this CPU that the build does not use."""
        return self.cpu - self.used


def cpu_flags(cpuinfo: str) -> frozenset[str]:
    """The feature flags of the first processor in /proc/cpuinfo's text."""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return frozenset(value.split())
    return frozenset()


def parse_llama_build(system_info: str, flags: frozenset[str]) -> LlamaBuild:
    """`LlamaBuild` from llama.cpp's system info ("CPU : AVX2 = 1 | ...") and the CPU's flags."""
    used = frozenset(
        name.strip()
        for part in system_info.replace("CPU :", "|").split("|")
        for name, eq, value in [part.partition("=")]
        if eq and value.strip() == "1"
    )
    cpu = frozenset(llama for flag, llama in CPU_FEATURES.items() if flag in flags)
    return LlamaBuild(system_info=system_info.strip(), used=used, cpu=cpu)


def llama_build() -> LlamaBuild:
    """The installed llama.cpp build against this CPU (imports xllamacpp; Linux reads
    /proc/cpuinfo, elsewhere the CPU side is empty and nothing counts as unused)."""
    import xllamacpp

    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:
        cpuinfo = ""
    return parse_llama_build(str(xllamacpp.get_system_info()), cpu_flags(cpuinfo))


# llama.cpp's KV cache element types by name (ggml_type numbers, as `CommonParams` takes them).
KV_TYPES = {"f16": 1, "q8_0": 8, "q4_0": 2}


@dataclass(frozen=True)
class ServerSpec:
    """What a server is started with; equal specs share one server.

    The prefill settings were measured with `bench/chat_bench.py --prefill-settings` on the
    first question's prompt over a 2,000-token record (Qwen2.5-Coder-1.5B Q4_K_M, 2 cores).
    Under load, per CPU-second of the server (bench/results/chat_latency_r4.json), no
    repacking prefilled more tokens (41.7 against 35.2-35.4; with 2,048-token steps 44.7), but
    on an idle machine it is the wall clock that counts, and there repacking won both ways:
    82.2 tok/s prefill and 23.7 tok/s decoding with repacking against 60.8 and 6.9 without,
    side by side (bench/results/chat_prefill_repack_r4.json), and a quiet latency run without
    repacking decoded at 18.1 tok/s, below the 20 tok/s target, where with repacking it decodes
    23.2 (bench/README.md, "Quiet re-runs by the lead"). So weights are repacked (llama.cpp's
    default) and prompt steps are 2,048 tokens (35.2 -> 37.9 per CPU-second with repacking).
    Flash attention off (26.4) and a q8_0 KV cache (23.9) were slower; smaller steps (256: 30.3)
    too.

    With llama.cpp compiled for an AVX-512 CPU (`.ci/setup.d/41-llm-native.sh`), quiet, side by
    side (bench/results/chat_prefill_native.json, key native_repack_quiet): repacked 133 tok/s
    prefill and 25-26 tok/s decoding, not repacked 187-189 and 21.1. Both meet the latency
    targets (chat_latency_r5_repack.json / _norepack.json: first question 1.28 / 1.29 s, decode
    23.9 / 20.5 tok/s); repacking keeps the decode target's margin, so it stays on.
    """

    model_path: str
    context_tokens: int = 8192
    threads: int = field(default_factory=default_threads)
    batch_threads: int = field(default_factory=batch_threads)
    # Prompt tokens per llama_decode call (n_batch) and per compute step (n_ubatch): a whole
    # 2,000-token record in one step.
    batch_tokens: int = 2048
    ubatch_tokens: int = 2048
    # Flash attention: True, False, or None for llama.cpp's own choice ("auto": on, on CPU).
    flash_attn: bool | None = None
    kv_type: str = "f16"  # a key of KV_TYPES
    # llama.cpp can copy Q4_0/Q4_K weights into interleaved layouts at load ("repack"): faster
    # decoding and, on an idle machine, faster prefill (see above).
    repack: bool = True
    # Where the server may save and restore its slot (the KV state of a prompt prefix) on
    # request (`vidchat.llm.prefix_cache`); empty: no saving. The folder is the only place
    # llama.cpp reads or writes such files (it refuses names with a path in them).
    slot_dir: str = ""

    def __post_init__(self) -> None:
        if self.kv_type not in KV_TYPES:
            raise _error(
                f"local LLM: KV cache type must be one of {', '.join(KV_TYPES)}, "
                f"got {self.kv_type!r}"
            )
        if not 1 <= self.ubatch_tokens <= self.batch_tokens:
            raise _error(
                "local LLM: need 1 <= ubatch_tokens <= batch_tokens, got "
                f"{self.ubatch_tokens} and {self.batch_tokens}"
            )

    def child_args(self) -> list[str]:
        """The child's command-line options for these settings (see `child_main`)."""
        fa = {None: "auto", True: "on", False: "off"}[self.flash_attn]
        return [
            "--ctx", str(self.context_tokens), "--threads", str(self.threads),
            "--batch-threads", str(self.batch_threads), "--batch", str(self.batch_tokens),
            "--ubatch", str(self.ubatch_tokens), "--flash-attn", fa, "--kv-type", self.kv_type,
            *([] if self.repack else ["--no-repack"]),
            *(["--slot-dir", self.slot_dir] if self.slot_dir else []),
        ]  # fmt: skip


def _error(message: str) -> Exception:
    from vidchat.llm.errors import LLMError

    return LLMError(message)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _log_dir() -> Path:
    root = os.environ.get("VIDCHAT_CACHE") or str(Path.home() / ".cache" / "vidchat")
    d = Path(root) / "logs"
    d.mkdir(parents=True, exist_ok=True)
    return d


def _last_line(path: Path) -> str:
    try:
        lines = [ln.strip() for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return "(no log)"
    # llama.cpp's own errors carry an " E " level marker; prefer the last of those.
    errors = [ln for ln in lines if " E " in ln or "error" in ln.lower()]
    return (errors or lines or ["(empty log)"])[-1][:300]


class LlamaServer:
    """One llama.cpp server child process. Use `local_server(spec)` rather than this class."""

    def __init__(self, spec: ServerSpec) -> None:
        self.spec = spec
        self.port: int | None = None
        self.token = ""
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path: Path | None = None
        self.starts = 0
        self._lock = threading.RLock()
        self._counts: OrderedDict[str, int] = OrderedDict()
        self._counts_lock = threading.Lock()
        # The saved prefix (`vidchat.llm.prefix_cache` file name) the slot starts with now, as
        # far as vidchat knows: set when one is restored, saved or answered over; None after a
        # start. A restore of what the slot already holds is skipped.
        self.slot_prefix: str | None = None

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1`` (starting the server if needed)."""
        self.ensure()
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def pid(self) -> int | None:
        """The server process id while it runs."""
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

    def alive(self) -> bool:
        """True when the process runs and answers ``/health`` with 200."""
        if self.proc is None or self.proc.poll() is not None or self.port is None:
            return False
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=5) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def ensure(self) -> LlamaServer:
        """Start the server if it is not running (or has died); returns self."""
        with self._lock:
            if self.proc is not None and self.proc.poll() is None:
                return self
            if self.proc is not None:  # it died: say so once, then start a fresh one
                import logging

                logging.getLogger(__name__).warning(
                    "the local LLM server (pid %s) exited with %s; starting it again",
                    self.proc.pid, self.proc.returncode,
                )  # fmt: skip
                self._close_pipe()
            self._start()
            return self

    def _start(self) -> None:
        model = Path(self.spec.model_path)
        if not model.is_file():
            raise _error(f"local LLM: model file not found: {model}")
        self.port = _free_port()
        self.token = secrets.token_urlsafe(24)
        self.log_path = _log_dir() / f"llama-server-{os.getpid()}-{self.port}.log"
        launcher = (
            "import importlib.util, sys\n"
            "spec = importlib.util.spec_from_file_location('vidchat_llama_child', sys.argv[1])\n"
            "mod = importlib.util.module_from_spec(spec)\n"
            "sys.modules[spec.name] = mod\n"
            "spec.loader.exec_module(mod)\n"
            "mod.child_main(sys.argv[2:])\n"
        )
        args = [
            sys.executable, "-c", launcher, str(Path(__file__).resolve()),
            "--model", str(model), "--port", str(self.port), *self.spec.child_args(),
        ]  # fmt: skip
        env = {**os.environ, "VIDCHAT_LLAMA_TOKEN": self.token}  # not on the command line
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                args,
                stdin=subprocess.PIPE,  # the watchdog pipe: EOF when this process is gone
                stdout=subprocess.PIPE,
                stderr=log,
                env=env,
                start_new_session=True,  # a terminal Ctrl-C is vidchat's, not the server's
                close_fds=True,
            )
        self.starts += 1
        self._counts.clear()
        self.slot_prefix = None
        assert self.proc.stdout is not None
        deadline = time.monotonic() + READY_TIMEOUT_S
        line = b""
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.5)
            if ready:
                line = self.proc.stdout.readline()
                if not line or _READY.encode() in line:
                    break
            elif self.proc.poll() is not None:
                break
        if _READY.encode() not in line:
            self._kill()
            raise _error(
                f"local LLM server for {model.name} did not start "
                f"({'timed out' if time.monotonic() >= deadline else 'exited'}): "
                f"{_last_line(self.log_path)} (log: {self.log_path})"
            )
        if not self.alive():
            self._kill()
            raise _error(f"local LLM server for {model.name} started but /health does not answer")

    def _close_pipe(self) -> None:
        if self.proc is not None:
            for f in (self.proc.stdin, self.proc.stdout):
                if f is not None:
                    with contextlib.suppress(OSError):
                        f.close()

    def _kill(self) -> None:
        if self.proc is None:
            return
        self._close_pipe()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)

    def stop(self) -> None:
        """Stop the server (closing the watchdog pipe, then SIGTERM, then SIGKILL)."""
        with self._lock:
            if self.proc is not None:
                self._close_pipe()
                try:
                    # Closing the pipe is enough: the child exits within a moment.
                    self.proc.wait(timeout=3)
                except subprocess.TimeoutExpired:
                    self._kill()
            self.proc = None
            self.port = None

    # -- requests --------------------------------------------------------------------------

    def headers(self) -> dict[str, str]:
        """The per-start bearer token the server requires."""
        return {"Authorization": f"Bearer {self.token}"}

    def post(self, path: str, body: dict[str, Any], timeout: float = 60.0) -> Any:
        """POST `body` as JSON to the server's `path` (``/tokenize``, ``/completion``,
        ``/v1/chat/completions`` without streaming); returns the decoded JSON answer."""
        self.ensure()
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", **self.headers()},
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return json.loads(r.read())
        except (urllib.error.URLError, OSError, ValueError) as e:
            raise _error(f"local LLM server {path} failed: {e}") from e

    def slot_action(self, action: Literal["save", "restore"], filename: str) -> dict[str, Any]:
        """Save the slot's KV state (the tokens it holds) to `filename` in the spec's
        `slot_dir`, or restore it from there; returns llama.cpp's answer (``n_saved`` /
        ``n_restored`` tokens). Raises LLMError when the server has no slot folder or fails."""
        if not self.spec.slot_dir:
            raise _error("local LLM server: started without a slot folder (ServerSpec.slot_dir)")
        if "/" in filename or filename.startswith("."):
            raise _error(f"local LLM server: expected a plain slot file name, got {filename!r}")
        reply = self.post(f"/slots/0?action={action}", {"filename": filename}, timeout=30.0)
        if not isinstance(reply, dict) or "error" in reply:
            raise _error(f"local LLM server: slot {action} of {filename} failed: {reply}")
        return reply

    def forget_token_counts(self) -> None:
        """Forget the remembered token counts (a benchmark's cold start)."""
        with self._counts_lock:
            self._counts.clear()

    def count_tokens(self, text: str) -> int:
        """Tokens of `text` in the model's own tokenizer (asked of the server, remembered)."""
        if not text:
            return 0
        with self._counts_lock:  # a prefill thread and a question may count at once
            hit = self._counts.get(text)
            if hit is not None:
                self._counts.move_to_end(text)
                return hit
        n = len(self.post("/tokenize", {"content": text, "add_special": False})["tokens"])
        with self._counts_lock:
            self._counts[text] = n
            if len(self._counts) > _TOKENIZE_CACHE:
                self._counts.popitem(last=False)
        return n


_servers: dict[ServerSpec, LlamaServer] = {}
_servers_lock = threading.Lock()


def local_server(spec: ServerSpec) -> LlamaServer:
    """The process's server for `spec`, started (or restarted) on first need."""
    with _servers_lock:
        server = _servers.get(spec)
        if server is None:
            server = _servers[spec] = LlamaServer(spec)
    return server.ensure()


def running_servers() -> list[LlamaServer]:
    """Servers this process started that are still running."""
    with _servers_lock:
        return [s for s in _servers.values() if s.pid is not None]


def stop_all() -> None:
    """Stop every server this process started (also run at exit)."""
    with _servers_lock:
        servers = list(_servers.values())
    for s in servers:
        s.stop()


atexit.register(stop_all)


# ------------------------------------------------------------------------------------------
# The child process
# ------------------------------------------------------------------------------------------


def _watch_parent(parent: int) -> None:
    """Exit this process as soon as the parent is gone: EOF on stdin (the parent's end of the
    pipe closed, which the kernel does for any kind of exit) or a new parent pid."""
    fd = sys.stdin.fileno()
    while True:
        try:
            ready, _, _ = select.select([fd], [], [], _WATCH_S)
            if ready and not os.read(fd, 4096):
                os._exit(0)
        except OSError:
            os._exit(0)
        if os.getppid() != parent:
            os._exit(0)


def child_main(argv: list[str]) -> None:
    """Run a llama.cpp server until the parent goes away (the child side of `LlamaServer`)."""
    import argparse

    p = argparse.ArgumentParser(prog="vidchat-llama-server")
    p.add_argument("--model", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--ctx", type=int, default=8192)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch-threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=2048)
    p.add_argument("--ubatch", type=int, default=2048)
    p.add_argument("--flash-attn", choices=("auto", "on", "off"), default="auto")
    p.add_argument("--kv-type", choices=sorted(KV_TYPES), default="f16")
    p.add_argument("--no-repack", action="store_true")
    p.add_argument("--slot-dir", default="")
    a = p.parse_args(argv)
    parent = os.getppid()
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()

    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = a.model
    params.port = a.port
    params.hostnames = ["127.0.0.1"]
    params.n_ctx = a.ctx
    params.n_parallel = 1  # one answer at a time: two would only fight over the same cores
    params.cpuparams.n_threads = a.threads
    params.cpuparams_batch.n_threads = a.batch_threads
    params.n_batch = a.batch
    params.n_ubatch = a.ubatch
    params.flash_attn_type = {"auto": -1, "off": 0, "on": 1}[a.flash_attn]
    params.cache_type_k = params.cache_type_v = KV_TYPES[a.kv_type]
    params.no_extra_bufts = a.no_repack
    params.cache_prompt = True  # follow-ups reuse the record prefix
    if a.slot_dir:
        # llama.cpp joins folder and file name by plain concatenation: the slash is needed.
        params.slot_save_path = a.slot_dir.rstrip("/") + "/"
    params.warmup = False
    token = os.environ.pop("VIDCHAT_LLAMA_TOKEN", "")
    if token:
        params.api_keys = [token]
    server = xllamacpp.Server(params)  # loads the model and listens; raises on failure
    sys.stdout.write(_READY + "\n")
    sys.stdout.flush()
    try:
        while True:
            time.sleep(3600)
    finally:
        del server
