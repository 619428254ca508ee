"""Chat benchmark: how fast the local model answers from a one-minute video's record, how many
tokens of context a minute of video costs, and how well retrieval finds the right part of an
hour-long record.

    python -m bench.chat_bench [--video vtest] [--record record.json] [--questions 3]

(it uses the planted-fact record of `vidchat.testing.records`). Prints a
table and writes bench/results/chat.json.

    python -m bench.chat_bench --latency-only        # the issue's latency targets
    python -m bench.chat_bench --prefill-settings [--settings NAME,...]   # llama.cpp settings

(both write their own key of bench/results/chat_latency_r4.json, or ``--out``).

- **Local model** (llm:smollm2-135m on CPU): the record of the first 60 s of the video (trimmed
  with ffmpeg, textualized with the offline profile through the cache; or ``--record``), then a
  few questions through `ChatSession` with the profile's render budget (as ``vidchat chat``
  runs them): time to first token, prefill tokens/s (prompt tokens over
  time to first token) and decode tokens/s (answer tokens after the first, over the time after
  it). One warm-up question is not counted.
- **Context per minute**: tokens of the full rendering (the model's tokenizer) per minute of
  video, for that record and for the hour-long synthetic one.
- **Retrieval**: recall@1 and recall@3 of the paraphrased planted-fact questions on the 61-minute
  tiled record (target recall@3 >= 0.9), index build time (embedding, cold cache) and query time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.results_io import write_results

RESULTS = Path(__file__).parent / "results"

QUESTIONS = [
    "What happens in this video?",
    "How many people appear, and when does the first one appear?",
    "Is anything said or written in the video?",
    "Which person stays the longest?",
    "Does the scene change at any point?",
]


def one_minute_record(video: str, profile: str, work: Path):
    """The record of the first 60 s of `video` (a sample name or a path)."""
    from vidchat.kernel.samples import SAMPLES, sample_path
    from vidchat.pipeline.core import textualize

    src = sample_path(video) if video in SAMPLES else Path(video)
    clip = work / f"{src.stem}_60s{src.suffix}"
    # Stream copy: no re-encode, so the clip (and its cache key) is the same on every run.
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-i", str(src), "-t", "60", "-c", "copy", str(clip)],
        check=True,
    )
    t0 = time.perf_counter()
    ctx = textualize(clip, profile)
    return ctx, time.perf_counter() - t0


def bench_local_model(ctx, profile: str, n_questions: int, max_tokens: int) -> dict:
    from vidchat.conversation.session import ChatSession
    from vidchat.pipeline.profiles import load_profile

    # As `vidchat chat --profile PROFILE` would run it, with shorter answers.
    prof = load_profile(profile)
    config = prof.llm.model_copy(update={"max_tokens": max_tokens})
    t0 = time.perf_counter()
    session = ChatSession(ctx, llm=config, profile=prof)
    session.chat_model()
    load_s = time.perf_counter() - t0
    session.ask("Describe the video in one sentence.")  # warm-up, not counted
    rows = []
    for q in QUESTIONS[:n_questions]:
        session.reset()  # every question sees the same context size
        a = session.ask(q)
        ttft = a.first_token_seconds or a.seconds
        decode_s = max(a.seconds - ttft, 1e-9)
        rows.append({
            "question": q,
            "record_mode": a.record_mode,
            "prompt_tokens": a.prompt_tokens,
            "completion_tokens": a.completion_tokens,
            "ttft_s": round(ttft, 3),
            "total_s": round(a.seconds, 3),
            "prefill_tok_s": round(a.prompt_tokens / ttft, 1),
            "decode_tok_s": round(max(a.completion_tokens - 1, 0) / decode_s, 1),
            "answer": a.text,
        })  # fmt: skip
    return {
        "model": session.model_name,
        "llm": session.describe_llm(),
        "load_s": round(load_s, 2),
        "record_tokens_full": session.rendered.tokens,
        "render_budget": prof.render.budget_tokens,
        "median_ttft_s": statistics.median(r["ttft_s"] for r in rows),
        "median_prefill_tok_s": statistics.median(r["prefill_tok_s"] for r in rows),
        "median_decode_tok_s": statistics.median(r["decode_tok_s"] for r in rows),
        "questions": rows,
    }


def _record_of_tokens(target: int, count) -> object:
    """The planted-fact synthetic record cut to the shortest length whose rendering reaches
    `target` tokens (a fixed, reproducible record for the latency targets)."""
    from vidchat.testing.records import long_record
    from vidchat.text.render import render

    for minutes in range(2, 62, 2):
        ctx = long_record(60.0 * minutes)
        if render(ctx, window_s=10.0, count_tokens=count).tokens >= target:
            return ctx
    return ctx


FIRST_QUESTION = "What do we learn about the blue ferry?"
# The follow-up the model answers (the prefix is cached; only this turn is read). "And what is
# said right after that?" is answered by code since round 5 (vidchat.conversation.followup),
# at once: it is timed too, as `follow_up_by_code`, but says nothing of the model.
FOLLOW_UP = "And what do we learn about the harbor?"
FOLLOW_UP_BY_CODE = "And what is said right after that?"


def bench_latency(model: str | None, record_tokens: int = 2000, wait_s: float = 20.0) -> dict:
    """The issue's latency targets with the default local model, as a user meets them:

    - **first question**: the record becomes ready, vidchat starts prefilling it at once (as
      the REPL and web app do), the user asks `wait_s` later; time until the answer starts.
    - **follow-up**: a second question on the same record (the prefix is in llama.cpp's prompt
      cache); time until the answer starts.
    - **decode**: tokens per second of the model's reply (evidence and answer).

    "Starts" is measured twice: the model's first token (its evidence) and the first token of
    the answer shown to the user (after the evidence, which is held back and checked).

    Where the clock starts: when the record is ready. The server is started, and reads the
    instructions, before that, as vidchat does while perception runs
    (`vidchat.llm.factory.start_local_server`); both times are reported apart (here nothing else
    runs meanwhile; in vidchat that work shares the cores with perception). Rendering the record
    for the LLM (token counts asked of the server) happens after the record is ready, so it is
    timed: the counts remembered while choosing the record are forgotten first.
    """
    from vidchat.cli.chat import start_prefill
    from vidchat.conversation.prompt import instructions_prefix
    from vidchat.conversation.session import ChatSession
    from vidchat.kernel.llm_config import LLMConfig
    from vidchat.llm.factory import make_chat_model
    from vidchat.llm.local_chat import LocalServerChatModel
    from vidchat.llm.server import llama_build
    from vidchat.llm.tokens import token_counter
    from vidchat.prompts import load_prompt

    config = LLMConfig(model=model, max_tokens=160) if model else LLMConfig(max_tokens=160)
    chat_model = make_chat_model(config)
    assert isinstance(chat_model, LocalServerChatModel), "the latency targets are local-only"
    t0 = time.perf_counter()
    server = chat_model.server()
    server_start_s = time.perf_counter() - t0
    count = token_counter(config)
    ctx = _record_of_tokens(record_tokens, count)
    system_tokens = count(load_prompt("chat").render("system"))
    t0 = time.perf_counter()
    instructions = chat_model.prefill(instructions_prefix())
    instructions_s = time.perf_counter() - t0
    server.forget_token_counts()

    def timed(session, question):
        t0 = time.perf_counter()
        first_shown = None
        for chunk in session.stream(question):
            if first_shown is None and chunk.strip():
                first_shown = time.perf_counter() - t0
        a = session.last_answer
        raw_tokens = count(a.raw_text) if a.raw_text else 0
        first = a.first_token_seconds or a.seconds
        return {
            "question": question,
            "prompt_tokens": a.prompt_tokens,
            "first_token_s": round(first, 2),
            "first_answer_token_s": round(first_shown, 2) if first_shown is not None else None,
            "total_s": round(a.seconds, 2),
            "answered_by": "model" if a.prompt_tokens else "code",
            "decode_tok_s": (
                round(max(raw_tokens - 1, 0) / max(a.seconds - first, 1e-9), 1)
                if a.prompt_tokens and raw_tokens > 1
                else None
            ),
            "evidence_verified": [e.verified for e in a.evidence],
            "answer": a.text,
        }

    load_before = os.getloadavg()
    session = ChatSession(ctx, llm=config)
    t_ready = time.perf_counter()
    prefill = start_prefill(session)
    # Wait as the user would, noting when the record has been read (polled: the product's own
    # prefill thread is what is timed).
    record_read_s = None
    while (waited := time.perf_counter() - t_ready) < wait_s:
        if record_read_s is None and not prefill.is_alive():
            record_read_s = round(waited, 1)
        time.sleep(0.05)
    prefill_done = not prefill.is_alive()
    # A question the model answers: "What does the speaker say about the ferry …?" is now a
    # lookup answered by code (vidchat.text.facts) at once, which says nothing of the model.
    first = timed(session, FIRST_QUESTION)
    if not first["prompt_tokens"]:
        raise SystemExit(f"the first question was answered by code, not the model: {first}")
    prefill.join()
    follow = timed(session, FOLLOW_UP)
    if not follow["prompt_tokens"]:
        raise SystemExit(f"the follow-up was answered by code, not the model: {follow}")
    session.reset()
    timed(session, FIRST_QUESTION)  # the same first turn again (from the cache), then:
    follow_by_code = timed(session, FOLLOW_UP_BY_CODE)
    since_ready = time.perf_counter() - t_ready
    load_after = os.getloadavg()

    # Does the prefill leave exactly the first question's prefix in the cache? Replay both
    # requests on a fresh conversation and read llama.cpp's own counts: the question should
    # reuse every token of the system message (cache_n) and process only its own turn.
    session.reset()
    prefill_timings = chat_model.prefill(session.build_messages("(prefill)").messages[:1])
    q_messages = session.build_messages("Who is seen first in the video?").messages
    q_timings = chat_model.prefill(q_messages)
    system_message_tokens = count(str(q_messages[0].content))
    return {
        "model": session.model_name,
        "threads": {"generation": server.spec.threads, "prefill": server.spec.batch_threads},
        "server": {k: v for k, v in vars(server.spec).items() if k != "model_path"},
        "llama_build": llama_build().system_info,  # the CPU features llama.cpp was built for
        "server_start_s": round(server_start_s, 2),
        "instructions_prefill": {
            "s": round(instructions_s, 2),
            "prompt_n": instructions.get("prompt_n"),
        },
        "record_tokens": session.rendered.tokens,
        "system_prompt_tokens": system_tokens,
        "wait_s": wait_s,
        "prefill_done_before_question": prefill_done,
        "record_read_after_s": record_read_s,  # None: still reading when the question came
        "since_record_ready_s": round(since_ready, 1),
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in load_after],
        "first_question": first,
        "follow_up": follow,
        "follow_up_by_code": follow_by_code,
        "prefix_check": {
            "system_message_tokens": system_message_tokens,
            "prefill_request": {k: prefill_timings.get(k) for k in ("cache_n", "prompt_n")},
            "question_request": {k: q_timings.get(k) for k in ("cache_n", "prompt_n")},
            "question_reuses_whole_prefix": (q_timings.get("cache_n") or 0)
            >= system_message_tokens,
        },
        "targets": {"first_question_s": 5.0, "follow_up_s": 3.0, "decode_tok_s": 20.0},
    }


# llama.cpp settings compared by `bench_prefill_settings`: (name, ServerSpec settings). Each
# is complete, so a name means the same whatever vidchat's defaults are; "default" is llama.cpp's
# own (what vidchat ran before round 4).
LLAMA_DEFAULTS: dict = {"ubatch_tokens": 512, "repack": True, "flash_attn": None, "kv_type": "f16"}
PREFILL_SETTINGS: list[tuple[str, dict]] = [
    ("default", LLAMA_DEFAULTS),
    ("ubatch 256", {**LLAMA_DEFAULTS, "ubatch_tokens": 256}),
    ("ubatch 1024", {**LLAMA_DEFAULTS, "ubatch_tokens": 1024}),
    ("ubatch 2048", {**LLAMA_DEFAULTS, "ubatch_tokens": 2048}),
    ("flash attention off", {**LLAMA_DEFAULTS, "flash_attn": False}),
    ("KV cache q8_0", {**LLAMA_DEFAULTS, "kv_type": "q8_0", "flash_attn": True}),
    ("no repack", {**LLAMA_DEFAULTS, "repack": False}),
    ("1 prefill thread", {**LLAMA_DEFAULTS, "batch_threads": 1}),
    ("default (again)", LLAMA_DEFAULTS),
]
DECODE_TOKENS = 48  # tokens generated after each prefill, to compare decoding too

# Further combinations, for `--settings` (not in the default sweep).
EXTRA_SETTINGS: dict[str, dict] = {
    "no repack + ubatch 2048": {**LLAMA_DEFAULTS, "repack": False, "ubatch_tokens": 2048},
    "no repack + ubatch 1024": {**LLAMA_DEFAULTS, "repack": False, "ubatch_tokens": 1024},
    "repack + ubatch 2048": {**LLAMA_DEFAULTS, "ubatch_tokens": 2048},
    "vidchat default": {},  # ServerSpec's own defaults, whatever they are now
}


def _cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds process `pid` has used (Linux /proc)."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def settings_named(names: str) -> list[tuple[str, dict]]:
    """The settings named in `names` (comma-separated, repeats allowed), from PREFILL_SETTINGS
    and EXTRA_SETTINGS."""
    known = {**dict(PREFILL_SETTINGS), **EXTRA_SETTINGS}
    out = []
    for name in (n.strip() for n in names.split(",")):
        if name not in known:
            raise SystemExit(f"unknown setting {name!r}; known: {', '.join(known)}")
        out.append((name, known[name]))
    return out


def bench_prefill_settings(
    model: str | None, record_tokens: int = 2000, settings: list[tuple[str, dict]] | None = None
) -> dict:
    """Prefill tokens/s of llama.cpp per server setting, on the first question's real prompt
    over the fixed 2,000-token record (system prompt, record, facts, question), with the prompt
    cache off so that every request prefills all of it. One server per setting, one after the
    other in one run; the default runs first and last to show drift from other load."""
    from vidchat.conversation.session import ChatSession
    from vidchat.kernel.llm_config import LLMConfig
    from vidchat.llm.local import local_model_path
    from vidchat.llm.local_chat import wire_messages
    from vidchat.llm.server import LlamaServer, ServerSpec, llama_build
    from vidchat.llm.tokens import token_counter

    config = LLMConfig(model=model, max_tokens=160) if model else LLMConfig(max_tokens=160)
    count = token_counter(config)
    ctx = _record_of_tokens(record_tokens, count)
    session = ChatSession(ctx, llm=config)
    question = "What does the speaker say about the ferry to Harbor Island?"
    messages = wire_messages(session.build_messages(question).messages)
    path = str(local_model_path(config))
    rows = []
    for name, overrides in settings or PREFILL_SETTINGS:
        spec = ServerSpec(path, config.context_tokens, **overrides)
        server = LlamaServer(spec)
        load_before = os.getloadavg()[0]
        t0 = time.perf_counter()
        server.ensure()
        load_s = time.perf_counter() - t0
        try:
            body = {"messages": messages, "max_tokens": 1, "cache_prompt": False,
                    "temperature": 0.0}  # fmt: skip
            cpu0 = _cpu_seconds(server.pid)
            t = server.post("/v1/chat/completions", body, timeout=900)["timings"]
            cpu_s = _cpu_seconds(server.pid) - cpu0
            # Then decoding alone: the same prompt, now all in the cache, and 48 new tokens.
            body = {**body, "cache_prompt": True, "max_tokens": DECODE_TOKENS, "ignore_eos": True}
            cpu0 = _cpu_seconds(server.pid)
            d = server.post("/v1/chat/completions", body, timeout=900)["timings"]
            decode_cpu_s = _cpu_seconds(server.pid) - cpu0
        finally:
            server.stop()
        rows.append({
            "setting": name,
            "spec": {k: v for k, v in vars(spec).items() if k != "model_path"},
            "load_s": round(load_s, 2),
            "prompt_tokens": t["prompt_n"],
            "prefill_s": round(t["prompt_ms"] / 1000, 2),
            "prefill_tok_s": round(t["prompt_per_second"], 1),
            # Tokens per second of the server's own CPU time: what the setting costs in work,
            # much less sensitive to other jobs on the cores than the wall-clock rate.
            "server_cpu_s": round(cpu_s, 2),
            "tok_per_cpu_s": round(t["prompt_n"] / max(cpu_s, 1e-9), 1),
            "decode_tokens": d["predicted_n"],
            "decode_tok_s": round(d["predicted_per_second"], 1),
            "decode_tok_per_cpu_s": round(d["predicted_n"] / max(decode_cpu_s, 1e-9), 1),
            "loadavg_1m_before": round(load_before, 2),
            "loadavg_1m_after": round(os.getloadavg()[0], 2),
        })  # fmt: skip
        r = rows[-1]
        print(f"{name:<22} {r['prompt_tokens']} tokens in {r['prefill_s']:6.2f} s = "
              f"{r['prefill_tok_s']:6.1f} tok/s, {r['tok_per_cpu_s']:6.1f} tok/CPU-s; decode "
              f"{r['decode_tok_s']:5.1f} tok/s, {r['decode_tok_per_cpu_s']:5.1f} tok/CPU-s "
              f"(load {load_s:.1f} s; loadavg "
              f"{r['loadavg_1m_before']} -> {r['loadavg_1m_after']})", flush=True)  # fmt: skip
    return {
        "model": session.model_name,
        "record_tokens": session.rendered.tokens,
        "llama_build": llama_build().system_info,
        "rows": rows,
    }


def bench_retrieval(cache_root: Path) -> dict:
    from vidchat.testing.records import long_record, planted_questions
    from vidchat.text.render import render
    from vidchat.text.retrieval import RetrievalIndex, get_embedder, recall_at_k, record_hash

    ctx = long_record(3660.0)
    questions = planted_questions(ctx.video.duration)
    rendered = render(ctx, window_s=10.0)
    embedder = get_embedder()
    t0 = time.perf_counter()
    embedder.encode(["warm up"])
    load_s = time.perf_counter() - t0
    # A cold embedding cache (thrown away after), so the build time is the real embedding cost;
    # only for this index: the local model's converted weights stay in the usual cache.
    saved = os.environ.get("VIDCHAT_CACHE")
    os.environ["VIDCHAT_CACHE"] = str(cache_root)
    try:
        index = RetrievalIndex(rendered.windows, embedder, record_hash=record_hash(ctx),
                               duration=ctx.video.duration)  # fmt: skip
        t0 = time.perf_counter()
        index.vectors  # noqa: B018 - builds the index
        build_s = time.perf_counter() - t0
    finally:
        if saved is None:
            os.environ.pop("VIDCHAT_CACHE", None)
        else:
            os.environ["VIDCHAT_CACHE"] = saved
    t0 = time.perf_counter()
    r3 = recall_at_k(index, questions, k=3)
    query_s = (time.perf_counter() - t0) / len(questions)
    r1 = recall_at_k(index, questions, k=1)
    return {
        "record_minutes": round(ctx.video.duration / 60, 1),
        "windows": len(rendered.windows),
        "distinct_pieces": len(index._texts),
        "questions": len(questions),
        "recall_at_1": round(r1, 3),
        "recall_at_3": round(r3, 3),
        "target_recall_at_3": 0.9,
        "embedder_load_s": round(load_s, 2),
        "index_build_s": round(build_s, 2),
        "query_ms": round(query_s * 1000, 1),
        "rendered_tokens": rendered.tokens,
    }


COLD_ASK_QUESTIONS = (
    "Describe what the people do in the video.",
    "What happens near the end of the video?",
)
_FIRST_TOKEN_RE = re.compile(r"([\d.]+) s \(first token ([\d.]+) s\)")


def _ask_once(record: Path, question: str, prefix_cache: str) -> dict:
    """One cold ``vidchat ask`` (a new process and server), as a user runs it; its wall time
    and the answer's own timing line (seconds, first token)."""
    env = {**os.environ, "VIDCHAT_LLM_PREFIX_CACHE": prefix_cache}
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    run = subprocess.run(
        [sys.executable, "-m", "vidchat.cli.main", "ask", "--", str(record), question],
        capture_output=True, text=True, env=env, timeout=900,
    )  # fmt: skip
    wall = time.perf_counter() - t0
    m = _FIRST_TOKEN_RE.search(run.stdout)
    modes = re.findall(r"(\d+) windows retrieved|record compacted to fit", run.stdout)
    return {
        "question": question,
        "prefix_cache": prefix_cache if prefix_cache == "0" else "on",
        "rc": run.returncode,
        "wall_s": round(wall, 2),
        "answer_s": float(m.group(1)) if m else None,
        "first_token_s": float(m.group(2)) if m else None,
        "record_mode": "retrieval" if any(modes) else ("compact" if modes else "full"),
        "loadavg_before": round(load, 2),
        "answer": run.stdout.strip().splitlines()[0][:120] if run.stdout.strip() else "",
    }


def bench_cold_ask(record: Path, rounds: int = 2) -> dict:
    """A one-shot ``vidchat ask`` in a new process, without and with a saved reading of the
    record (`vidchat.llm.prefix_cache`), alternating so that load drifts hit both: per round,
    question A with no saved prefixes (cold), A again with saving on in an empty folder (cold,
    and saves), then question B from that folder (restores), and B with saving off (cold)."""
    runs = []
    for r in range(rounds):
        folder = Path(tempfile.mkdtemp(prefix="prefix_bench_"))
        try:
            a, b = COLD_ASK_QUESTIONS
            runs.append({"round": r, "case": "cold", **_ask_once(record, a, "0")})
            runs.append({"round": r, "case": "cold_saving", **_ask_once(record, a, str(folder))})
            runs.append({"round": r, "case": "restored", **_ask_once(record, b, str(folder))})
            runs.append({"round": r, "case": "cold", **_ask_once(record, b, "0")})
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    summary = {}
    for case in ("cold", "cold_saving", "restored"):
        got = [x for x in runs if x["case"] == case and x["first_token_s"] is not None]
        summary[case] = {
            "first_token_s_median": statistics.median(x["first_token_s"] for x in got)
            if got
            else None,
            "wall_s_median": statistics.median(x["wall_s"] for x in got) if got else None,
            "n": len(got),
        }
    return {
        "record": str(record),
        "runs": runs,
        "summary": summary,
        "loadavg_after": round(os.getloadavg()[0], 2),
    }


def _update_results(path: Path, key: str, value: dict) -> None:
    """Set `key` in the JSON results file `path` (other keys, from other modes, stay)."""
    data = json.loads(path.read_text()) if path.is_file() else {}
    data[key] = value
    write_results(path, data)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--video", default="vtest", help="sample name or path (first 60 s are used)")
    ap.add_argument("--record", type=Path, help="use this saved record instead of a video")
    ap.add_argument("--profile", default="offline")
    ap.add_argument("--questions", type=int, default=3, help="measured questions (max 5)")
    ap.add_argument("--max-tokens", type=int, default=64, help="answer length cap")
    ap.add_argument(
        "--latency-only",
        action="store_true",
        help='only the latency targets (into --out, key "latency")',
    )
    ap.add_argument("--model", help="local model for the latency targets (default: the default)")
    ap.add_argument(
        "--prefill-settings",
        action="store_true",
        help="prefill tokens/s per llama.cpp setting on the 2,000-token record's prompt",
    )
    ap.add_argument(
        "--settings",
        help="with --prefill-settings: only these, in this order (comma-separated names)",
    )
    ap.add_argument(
        "--cold-ask",
        action="store_true",
        help="one-shot `vidchat ask` runs without and with a saved reading of the record "
        '(--record, default vtest textualized; key "cold_ask")',
    )
    ap.add_argument("--key", help="the results key to write (default: the mode's own)")
    ap.add_argument(
        "--out",
        type=Path,
        default=RESULTS / "chat_latency_r4.json",
        help="results file of --latency-only and --prefill-settings (each updates its own key)",
    )
    args = ap.parse_args()

    if args.cold_ask:
        record = args.record
        if record is None:
            record = Path(tempfile.mkdtemp(prefix="cold_ask_")) / "vtest.json"
            sample = subprocess.run(
                [sys.executable, "-m", "vidchat.cli.main", "sample", "vtest"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
            cmd = [sys.executable, "-m", "vidchat.cli.main", "textualize", "-o", str(record)]
            subprocess.run([*cmd, "--", sample], check=True, capture_output=True)
        cold = bench_cold_ask(record)
        _update_results(args.out, args.key or "cold_ask", cold)
        for x in cold["runs"]:
            print(
                f"{x['case']:<12} {x['record_mode']:<9} first token {x['first_token_s']} s, "
                f"answer {x['answer_s']} s, wall {x['wall_s']} s (load {x['loadavg_before']})"
            )
        print(json.dumps(cold["summary"]))
        print(f"wrote {args.out}")
        return

    if args.prefill_settings:
        chosen = settings_named(args.settings) if args.settings else None
        sweep = bench_prefill_settings(args.model, settings=chosen)
        _update_results(args.out, args.key or "prefill_settings", sweep)
        print(f"wrote {args.out}")
        return

    if args.latency_only:
        lat = bench_latency(args.model)
        out = args.out
        _update_results(out, "latency", lat)
        for name in ("first_question", "follow_up", "follow_up_by_code"):
            r = lat[name]
            print(f"{name} ({r['answered_by']}): first token {r['first_token_s']} s, answer starts "
                  f"{r['first_answer_token_s']} s, decode {r['decode_tok_s']} tok/s, "
                  f"{r['prompt_tokens']} prompt tokens: {r['answer'][:80]!r}")  # fmt: skip
        print(f"record {lat['record_tokens']} tokens; prefill done before the question "
              f"({lat['wait_s']} s later): {lat['prefill_done_before_question']}")  # fmt: skip
        pc = lat["prefix_check"]
        print(f"server start {lat['server_start_s']} s, instructions read in "
              f"{lat['instructions_prefill']['s']} s (both before the record is ready); system "
              f"prompt {lat['system_prompt_tokens']} tokens; a question after the prefill "
              f"reused {pc['question_request']['cache_n']} of the system message's "
              f"{pc['system_message_tokens']} tokens; loadavg {lat['loadavg_before']} -> "
              f"{lat['loadavg_after']}")  # fmt: skip
        print(f"wrote {out}")
        return

    from vidchat.kernel.record import VideoContext
    from vidchat.text.render import render

    work = Path(tempfile.mkdtemp(prefix="chat_bench_"))
    try:
        textualize_s = None
        if args.record:
            ctx = VideoContext.load(args.record)
            source = str(args.record)
        else:
            ctx, textualize_s = one_minute_record(args.video, args.profile, work)
            source = f"{args.video} (first 60 s), profile {args.profile}"
        n = min(args.questions, len(QUESTIONS))
        local = bench_local_model(ctx, args.profile, n, args.max_tokens)
        minutes = max(ctx.video.duration / 60, 1e-9)
        retrieval = bench_retrieval(work / "cache")
    finally:
        shutil.rmtree(work, ignore_errors=True)

    from vidchat.kernel.llm_config import LLMConfig
    from vidchat.llm.tokens import token_counter
    from vidchat.testing.records import long_record

    count = token_counter(LLMConfig())
    hour = long_record(3660.0)
    per_minute = {
        "one_minute_record": round(render(ctx, count_tokens=count).tokens / minutes, 1),
        "hour_long_synthetic": round(
            render(hour, count_tokens=count).tokens / (hour.video.duration / 60), 1
        ),
    }
    result = {
        "machine": {"cpu": platform.machine(), "cores": os.cpu_count(),
                    "python": platform.python_version()},
        "record": {
            "source": source,
            "duration_s": ctx.video.duration,
            "objects": len(ctx.objects),
            "speech": len(ctx.speech),
            "events": len(ctx.events),
            "textualize_s": round(textualize_s, 1) if textualize_s is not None else None,
        },
        "local_model": local,
        "context_tokens_per_minute": per_minute,
        "retrieval": retrieval,
    }  # fmt: skip
    write_results(RESULTS / "chat.json", result)

    print(f"record: {source}: {ctx.video.duration:.1f} s, {len(ctx.objects)} objects, "
          f"{len(ctx.speech)} speech, {len(ctx.events)} events")  # fmt: skip
    print(f"model: {local['llm']} (load {local['load_s']} s)")
    modes = sorted({r["record_mode"] for r in local["questions"]})
    print(f"record: {local['record_tokens_full']} tokens in full, render budget "
          f"{local['render_budget']}: sent as {', '.join(modes)}")  # fmt: skip
    row = "{:<58} {:>6} {:>6} {:>7} {:>9} {:>8}".format
    print(row("question", "prompt", "answer", "TTFT s", "prefill/s", "decode/s"))
    for r in local["questions"]:
        speeds = (f"{r['ttft_s']:.2f}", f"{r['prefill_tok_s']:.1f}", f"{r['decode_tok_s']:.1f}")
        print(row(r["question"][:58], r["prompt_tokens"], r["completion_tokens"], *speeds))
    medians = (local["median_ttft_s"], local["median_prefill_tok_s"], local["median_decode_tok_s"])
    print(row("median", "", "", f"{medians[0]:.2f}", f"{medians[1]:.1f}", f"{medians[2]:.1f}"))
    print(f"context tokens per minute of video: {per_minute['one_minute_record']} (this record), "
          f"{per_minute['hour_long_synthetic']} (hour-long synthetic)")  # fmt: skip
    r = retrieval
    print(f"retrieval on a {r['record_minutes']} min record ({r['windows']} windows, "
          f"{r['questions']} questions): recall@1 {r['recall_at_1']:.3f}, recall@3 "
          f"{r['recall_at_3']:.3f} (target >= 0.9); index build {r['index_build_s']} s, "
          f"query {r['query_ms']} ms")  # fmt: skip
    print(f"wrote {RESULTS / 'chat.json'}")


if __name__ == "__main__":
    main()
