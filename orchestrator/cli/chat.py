"""``vidchat chat`` (an interactive REPL) and ``vidchat ask`` (one question, for scripts).

Both take a video (textualized first, with progress, through the cache) or a saved record
(``record.json``). The REPL streams answers; slash commands inspect the record and the context
the LLM sees (``/help`` lists them). Ctrl-C during an answer cancels it and returns to the prompt;
Ctrl-D, ``/quit`` or the end of piped input exit with status 0. With stdin not a terminal the REPL
reads plain lines (no prompt, no line editing), so it can be scripted::

    printf 'who appears first?\\n/objects\\n' | vidchat chat record.json --llm local

`run_repl(session, input_fn, output)` is the loop itself, usable with any input function and
stream (tests drive it directly with a `ChatSession` over a fake chat model).
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from vidchat.kernel.errors import ConfigError, InputError, VidchatError
from vidchat.kernel.timecode import fmt_time, parse_timecode

if TYPE_CHECKING:
    from vidchat.conversation.answer import Answer
    from vidchat.conversation.session import ChatSession

__all__ = [
    "COMMANDS",
    "add_commands",
    "format_answer_facts",
    "main",
    "make_input_fn",
    "make_session",
    "run_repl",
]

PROMPT = "you> "

COMMANDS: dict[str, str] = {
    "/help": "this list",
    "/objects": "every object in the record, with its id",
    "/timeline [FROM] [TO]": "the record's timeline, all of it or between two times (mm:ss)",
    "/at TIME": "what the record has around one time (mm:ss or h:mm:ss)",
    "/find TEXT": "lines of the record that contain TEXT (speech, text, objects, events)",
    "/zoom START END [PERCEIVERS] [FPS]": "look closer at a window: re-run perceivers there",
    "/context": "exactly what the LLM saw for the last question (or will see for the next)",
    "/llm": "which LLM answers",
    "/save FILE.md": "write the conversation as markdown",
    "/reset": "forget the conversation so far (the record stays)",
    "/quit": "leave (Ctrl-D too)",
}


def make_session(
    target: str | Path,
    profile: str | None = None,
    llm_flag: str | None = None,
    progress: bool = True,
) -> ChatSession:
    """The session the CLI commands use: record, profile, and the LLM after flag/env overrides."""
    from vidchat.conversation.prompt import instructions_prefix
    from vidchat.conversation.session import ChatSession
    from vidchat.llm.config import resolve_llm_config
    from vidchat.llm.factory import start_local_server
    from vidchat.pipeline.open import open_context
    from vidchat.pipeline.profiles import load_profile

    prof = load_profile(profile)
    config = resolve_llm_config(prof.llm, llm_flag)
    # The local model loads, and reads the instructions, while perception runs.
    start_local_server(config, instructions_prefix())
    ctx = open_context(target, prof, progress=progress)
    return ChatSession(ctx, llm=config, profile=prof)


# ---------------------------------------------------------------------------------------------
# Output helpers


def format_answer_facts(answer: Answer) -> str:
    """One line: cited times, objects (and ids not in the record), tokens and time."""
    parts = []
    if answer.citations:
        parts.append("times " + ", ".join(c.text.strip("[]") for c in answer.citations))
    if answer.objects:
        parts.append("objects " + ", ".join(answer.objects))
    if answer.not_in_record:
        parts.append("NOT in the record: " + ", ".join(answer.not_in_record))
    if answer.loop_stopped:
        parts.append("stopped: the model kept repeating itself")
    if answer.record_mode == "retrieval":
        parts.append(f"{len(answer.windows)} windows retrieved")
    elif answer.record_mode == "compact":
        parts.append("record compacted to fit")
    timing = f"{answer.prompt_tokens}+{answer.completion_tokens} tokens, {answer.seconds:.1f} s"
    if answer.first_token_seconds is not None:
        timing += f" (first token {answer.first_token_seconds:.1f} s)"
    parts.append(timing)
    return "[" + " · ".join(parts) + "]"


def format_evidence(answer: Answer) -> list[str]:
    """Lines shown after the answer: the verified evidence that bears on the question as
    citations ([time] record line), or a plain statement that the evidence could not be found in
    the record, or does not bear on the question. Unverified quotes, and real lines about
    something else, are never shown as citations."""
    if answer.cancelled:
        return []
    verified = [e for e in answer.evidence if e.verified]
    shown = [e for e in verified if e.relevant is not False]
    off = [e for e in verified if e.relevant is False]
    lines = []
    if answer.answered_by == "facts":
        lines.append("  (computed from the record, no model needed)")
    for e in shown:
        if e.source == "computed":
            lines.append(f"  · {e.line}")
            continue
        where = f"[{fmt_time(e.start)}] " if e.start is not None else ""
        line = e.line or e.quote
        lines.append(f"  · {where}{line}")
    unverified = [e for e in answer.evidence if not e.verified]
    if not shown and off:
        lines.append(
            "  (the evidence does not bear on the question: the record line(s) the model quoted "
            "are about something else; treat this answer as unsupported)"
        )
    elif not shown and answer.answered_by == "llm":
        if unverified:
            lines.append(
                f"  (evidence NOT found in the record: the {len(unverified)} line(s) the model "
                "quoted are not in it; treat this answer as unsupported)"
            )
        else:
            lines.append("  (no evidence: the model quoted no record line for this answer)")
    else:
        if unverified:
            lines.append(f"  ({len(unverified)} quoted line(s) not found in the record, not shown)")
        if off:
            lines.append(f"  ({len(off)} quoted line(s) about something else, not shown)")
    if answer.unsupported:
        # The quotes may be real and relevant while the answer adds to them.
        lines.append(
            f"  (the answer says {', '.join(answer.unsupported)}: nothing said, shown or computed "
            "in the record holds that; treat it as invented)"
        )
    out = ["evidence:", *lines] if lines and shown else lines
    if answer.resolved_question:
        # How a follow-up's "that" was read, before the evidence it led to.
        out.insert(0, f"  (read as: {answer.resolved_question})")
    return out


def start_prefill(session: ChatSession) -> threading.Thread:
    """Prefill the record in the background (the local server's prompt cache) so the first
    question starts sooner; a failure here is only logged: the question will report it."""

    def run() -> None:
        try:
            session.prefill()
        except Exception as e:  # reported again, as one line, by the first question
            logging.getLogger(__name__).info("prefill failed: %s", e)

    t = threading.Thread(target=run, name="vidchat-prefill", daemon=True)
    t.start()
    return t


# ---------------------------------------------------------------------------------------------
# The REPL


class _Repl:
    def __init__(self, session: ChatSession, output: TextIO) -> None:
        self.session = session
        self.out = output

    def say(self, text: str = "") -> None:
        self.out.write(text + "\n")
        self.out.flush()

    # -- questions ---------------------------------------------------------------------------

    def ask(self, question: str) -> None:
        stream = self.session.stream(question)
        try:
            for chunk in stream:
                self.out.write(chunk)
                self.out.flush()
        except KeyboardInterrupt:
            # Ctrl-C during an answer: stop generating, keep the REPL.
            self.session.cancel()
            stream.close()
            self.say("\n[cancelled]")
            return
        answer = self.session.last_answer
        self.say()
        if answer is not None:
            for line in format_evidence(answer):
                self.say(line)
            self.say(format_answer_facts(answer))

    # -- slash commands ------------------------------------------------------------------------

    def command(self, line: str) -> bool:
        """Run a slash command; False means leave the REPL."""
        try:
            words = shlex.split(line)
        except ValueError:
            words = line.split()
        name, args = words[0].lower(), words[1:]
        rest = line.strip()[len(words[0]) :].strip()
        if name in ("/quit", "/exit", "/q"):
            return False
        handler = {
            "/help": self.cmd_help,
            "/objects": self.cmd_objects,
            "/timeline": self.cmd_timeline,
            "/at": self.cmd_at,
            "/find": self.cmd_find,
            "/context": self.cmd_context,
            "/llm": self.cmd_llm,
            "/save": self.cmd_save,
            "/reset": self.cmd_reset,
            "/zoom": self.cmd_zoom,
        }.get(name)
        if handler is None:
            self.say(
                f"unknown command {name}; commands: {', '.join(c.split()[0] for c in COMMANDS)}"
            )
            return True
        handler(args, rest)
        return True

    def cmd_help(self, args: list[str], rest: str) -> None:
        self.say("Ask anything about the video, or use a command:")
        width = max(len(c) for c in COMMANDS)
        for c, what in COMMANDS.items():
            self.say(f"  {c:<{width}}  {what}")

    def cmd_objects(self, args: list[str], rest: str) -> None:
        self.say(self.session.rendered.objects)

    def cmd_timeline(self, args: list[str], rest: str) -> None:
        r = self.session.rendered
        start = parse_timecode(args[0], strict=False) if args else 0.0
        end = parse_timecode(args[1], strict=False) if len(args) > 1 else float("inf")
        if end < start:
            raise InputError(f"/timeline: the end ({args[1]}) is before the start ({args[0]})")
        shown = [w for w in r.windows if w.end > start and w.start <= end]
        if not shown:
            self.say("nothing observed in that part of the video")
        for w in shown:
            self.say(w.text)

    def cmd_at(self, args: list[str], rest: str) -> None:
        if len(args) != 1:
            raise InputError("/at needs one time, e.g. /at 01:30")
        t = parse_timecode(args[0], strict=False)
        ctx = self.session.ctx
        if t > ctx.video.duration + 0.5:
            raise InputError(
                f"/at {args[0]}: the video is only {fmt_time(ctx.video.duration)} long"
            )
        windows = [w for w in self.session.rendered.windows if w.start <= t <= w.end]
        for w in windows[:1]:
            self.say(w.text)
        seen = [o for o in ctx.objects if o.first_seen <= t <= o.last_seen]
        if seen:
            self.say(f"objects on screen at {fmt_time(t)}: " + ", ".join(o.id for o in seen))
        if not windows and not seen:
            self.say(f"nothing observed at {fmt_time(t)}")

    def cmd_find(self, args: list[str], rest: str) -> None:
        if not rest:
            raise InputError("/find needs some text, e.g. /find hello")
        needle = rest.strip("\"'").lower()
        r = self.session.rendered
        hits = [ln for ln in r.objects.splitlines()[1:] if needle in ln.lower()]
        for w in r.windows:
            hits += [ln.strip() for ln in w.text.splitlines()[1:] if needle in ln.lower()]
        for ln in hits:
            self.say(ln)
        self.say(f"{len(hits)} line(s) contain {needle!r}")

    def cmd_context(self, args: list[str], rest: str) -> None:
        self.say(self.session.context_text(rest or None))

    def cmd_llm(self, args: list[str], rest: str) -> None:
        self.say(self.session.describe_llm())

    def cmd_save(self, args: list[str], rest: str) -> None:
        from vidchat.kernel.record import atomic_write_text

        if len(args) != 1:
            raise InputError("/save needs one file name, e.g. /save notes.md")
        path = atomic_write_text(Path(args[0]).expanduser(), self.session.to_markdown())
        self.say(f"saved {len(self.session.turns)} turn(s) to {path}")

    def cmd_zoom(self, args: list[str], rest: str) -> None:
        from vidchat.cli.zoom import repl_zoom

        repl_zoom(self.session, args, self.say)

    def cmd_reset(self, args: list[str], rest: str) -> None:
        self.session.reset()
        self.say("conversation cleared")


def run_repl(
    session: ChatSession,
    input_fn: Callable[[str], str],
    output: TextIO,
    *,
    banner: bool = True,
) -> int:
    """The chat loop: read a line, answer it or run its slash command, until /quit or EOF.

    `input_fn(prompt)` returns one line and raises EOFError at the end (like `input`);
    KeyboardInterrupt from it (Ctrl-C at the prompt) only clears the line. Errors from the LLM or
    a command print one line and the loop goes on. Returns the exit status (0).
    """
    repl = _Repl(session, output)
    if banner:
        v = session.ctx.video
        repl.say(
            f"vidchat: {v.name} — {len(session.ctx.objects)} objects, "
            f"{len(session.ctx.speech)} speech segments. /help for commands, Ctrl-D to leave."
        )
    while True:
        try:
            line = input_fn(PROMPT)
        except EOFError:
            return 0
        except KeyboardInterrupt:
            continue
        line = line.strip()
        if not line:
            continue
        try:
            if line.startswith("/"):
                if not repl.command(line):
                    return 0
            else:
                repl.ask(line)
        except VidchatError as e:
            repl.say(f"error: {e}")
        except KeyboardInterrupt:
            # Ctrl-C while a command (not an answer) ran: back to the prompt.
            repl.say("[cancelled]")


def make_input_fn(history_file: Path | None = None) -> Callable[[str], str]:
    """prompt_toolkit with persistent history on a terminal; plain line reading otherwise."""
    if sys.stdin.isatty() and sys.stdout.isatty():
        from prompt_toolkit import PromptSession
        from prompt_toolkit.history import FileHistory, History, InMemoryHistory

        history: History = InMemoryHistory()
        if history_file is not None:
            history_file.parent.mkdir(parents=True, exist_ok=True)
            history = FileHistory(str(history_file))
        return PromptSession(history=history).prompt

    def read_line(prompt: str) -> str:
        # Piped input: no prompt echo, so the output is just the answers.
        line = sys.stdin.readline()
        if not line:
            raise EOFError
        return line.rstrip("\n")

    return read_line


# ---------------------------------------------------------------------------------------------
# Commands


def _cmd_chat(args: argparse.Namespace) -> int:
    from vidchat.kernel.models import cache_dir

    session = make_session(args.target, args.profile, args.llm, progress=not args.quiet)
    start_prefill(session)  # the record is ready: process it while the user types
    input_fn = make_input_fn(cache_dir() / "chat_history")
    return run_repl(session, input_fn, sys.stdout, banner=not args.quiet)


def _cmd_ask(args: argparse.Namespace) -> int:
    if args.path == "embed":
        return _ask_embed(args)
    session = make_session(args.target, args.profile, args.llm, progress=not args.quiet)
    if args.format == "json":
        asked = session.ask(args.question)
        data = asked.model_dump(mode="json")
        data["llm"] = session.describe_llm()
        sys.stdout.write(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
        return 0
    # Text: stream the answer as it comes, then the facts line.
    for chunk in session.stream(args.question):
        sys.stdout.write(chunk)
        sys.stdout.flush()
    answer = session.last_answer
    sys.stdout.write("\n")
    if answer is not None:
        for line in format_evidence(answer):
            sys.stdout.write(line + "\n")
        sys.stdout.write(format_answer_facts(answer) + f"\n[model: {answer.model}]\n")
    return 0


def _ask_embed(args: argparse.Namespace) -> int:
    """`ask --path embed`: the trained VideoChat-Embed-style model answers from the frames."""
    if not args.checkpoint:
        raise ConfigError("--path embed needs --checkpoint CHECKPOINT (from embed_model.train)")
    from vidchat.embed_model.infer import answer_with_embed

    answer = answer_with_embed(args.target, args.question, args.checkpoint)
    if args.format == "json":
        sys.stdout.write(answer.model_dump_json(indent=1) + "\n")
    else:
        sys.stdout.write(answer.text + f"\n[model: {answer.model}, {answer.seconds:.1f} s]\n")
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", help="a video file or a saved record (.json)")
    p.add_argument("--profile", help="profile name (offline, full) or YAML path")
    p.add_argument(
        "--llm",
        help="which LLM answers: local, local:PATH_OR_NAME, openai:MODEL, "
        "openai-compatible:URL[@MODEL][#KEY_VAR], or an http(s) URL; an endpoint other than "
        "OpenAI gets a key only from the variable named after #",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress or banner")


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``chat`` and ``ask`` to the ``vidchat`` command line (handlers set as ``func``)."""
    c = sub.add_parser("chat", help="talk about a video (interactive; /help inside)")
    _common(c)
    c.set_defaults(func=_cmd_chat)

    a = sub.add_parser("ask", help="ask one question about a video and print the answer")
    _common(a)
    a.add_argument("question", help="the question (quote it)")
    a.add_argument(
        "--format", choices=["text", "json"], default="text", help="text, or JSON for scripts"
    )
    a.add_argument(
        "--path",
        choices=["text", "embed"],
        default="text",
        help="text: an LLM reads the record; embed: a trained VideoChat-Embed-style model",
    )
    a.add_argument("--checkpoint", help="embed path: the trained checkpoint file")
    a.set_defaults(func=_cmd_ask)


def main(argv: Sequence[str] | None = None) -> int:
    """``chat``/``ask`` through the ``vidchat`` command line (one place for error handling)."""
    from vidchat.cli.main import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
