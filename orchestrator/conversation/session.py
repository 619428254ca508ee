"""Conversation about one video: `ChatSession` answers questions from the video's record.

`ChatSession` is the public entry; it holds the session's state (the LLM, the record, the
history of turns, the last answer and prompt) and delegates each job to its module:

- `vidchat.conversation.prompt` — the messages for one question within the token budget
  (record as a fixed prefix, then history, then the question);
- `vidchat.conversation.record_view` — what the record block holds (full, compacted, or the
  windows retrieved for the question on long records);
- `vidchat.conversation.reply` — the model's reply read as evidence and answer, streamed
  answer-first, stopped when the model loops;
- `vidchat.conversation.evidence` — every quote checked against the record;
- `vidchat.conversation.relevance` — and whether it bears on the question at all;
- `vidchat.conversation.followup` — "right after that", "the same person": a follow-up read
  against the previous answer's evidence (the session's `focus`);
- `vidchat.conversation.citations` — the times and object ids an answer cites;
- `vidchat.conversation.answer` — `Answer`, `Evidence`, `Citation`, `Turn`;
- `vidchat.conversation.transcript` — the conversation as markdown.

Questions that are lookups are answered from facts computed by code (`vidchat.text.facts`),
which the model only phrases; pure lookups are answered without a model (and without building
the model's prompt: on a long record that embeds the whole record for retrieval).

Usable from a notebook::

    from vidchat.conversation.session import ChatSession
    chat = ChatSession(VideoContext.load("record.json"))
    print(chat.ask("Who enters first?").text)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any, Literal

from vidchat.conversation.answer import Answer, Evidence, Turn
from vidchat.conversation.citations import line_times, parse_citations, parse_object_ids
from vidchat.conversation.evidence import record_block, verify_evidence
from vidchat.conversation.followup import Focus, focus_of, resolve
from vidchat.conversation.prompt import (
    DEFAULT_RECORD_SHARE,
    DEFAULT_RETRIEVAL_K,
    MESSAGE_OVERHEAD,
    PromptPlan,
    build_prompt,
    format_messages,
)
from vidchat.conversation.record_view import RecordView
from vidchat.conversation.reply import AnswerGate, LoopGuard, split_reply
from vidchat.conversation.transcript import to_markdown
from vidchat.kernel.errors import ConfigError, InputError
from vidchat.kernel.llm_config import DEFAULT_LOCAL_MODEL, LLMConfig
from vidchat.kernel.record import VideoContext

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel
    from langchain_core.messages import BaseMessage

    from vidchat.pipeline.profiles import Profile
    from vidchat.text.render import Rendered
    from vidchat.text.retrieval import Embedder, RetrievalIndex

__all__ = ["ChatSession"]


class ChatSession:
    """A conversation about one video record.

    Args:
        ctx: the record.
        llm: None (the profile's LLM, after environment overrides), an `LLMConfig` (used as
            given), or a ready langchain chat model.
        profile: a profile name, path or `Profile` (render window and budget, LLM settings);
            None uses the defaults.
        budget_tokens: total tokens the prompt may use (system + record + history + question);
            default: the LLM's context window minus its answer's max_tokens.
        record_share: the most of the available budget the record may take.
        retrieval_k: windows retrieved by similarity per question on long records.
        count_tokens: token counter; default the LLM's tokenizer (local) or an estimate.
        embedder: the retrieval embedder; default the shipped all-MiniLM-L6-v2.
        cache: keep retrieval embeddings on disk between sessions.
        use_facts: compute facts from the record for lookup questions (`vidchat.text.facts`)
            and answer pure lookups directly; off only to measure what the model does alone.
    """

    def __init__(
        self,
        ctx: VideoContext,
        llm: LLMConfig | BaseChatModel | None = None,
        profile: str | Profile | None = None,
        budget_tokens: int | None = None,
        *,
        record_share: float = DEFAULT_RECORD_SHARE,
        retrieval_k: int = DEFAULT_RETRIEVAL_K,
        count_tokens: Callable[[str], int] | None = None,
        embedder: Embedder | None = None,
        cache: bool = True,
        use_facts: bool = True,
    ) -> None:
        if not isinstance(ctx, VideoContext):
            raise InputError(f"ChatSession needs a VideoContext, got {type(ctx).__name__}")
        if not 0 < record_share <= 1:
            raise ConfigError(f"record_share must be in (0, 1], got {record_share}")
        if budget_tokens is not None and budget_tokens < 256:
            raise ConfigError(f"budget_tokens must be at least 256, got {budget_tokens}")
        self.ctx = ctx
        self.profile = self._load_profile(profile)
        self.record_share = record_share
        self.retrieval_k = retrieval_k
        self.cache = cache
        self.use_facts = use_facts
        self._embedder = embedder
        self._count = count_tokens
        self._model: BaseChatModel | None = None
        self.config = self._config_for(llm)
        # A chat model given directly is used as it is; otherwise one is made from the config.
        self._given_model: BaseChatModel | None = None
        if llm is not None and not isinstance(llm, LLMConfig):
            self._given_model = self._model = llm
        self.budget_tokens = budget_tokens or (self.config.context_tokens - self.config.max_tokens)
        self.turns: list[Turn] = []
        self.last_answer: Answer | None = None
        self.last_messages: list[BaseMessage] | None = None
        self.last_plan: PromptPlan | None = None
        # What the last answer was about (its verified evidence): what "that" refers to next.
        self.focus: Focus | None = None
        self._cancel = threading.Event()
        self._record = self._view(ctx)
        self._known_ids = {o.id for o in ctx.objects}

    # -- set-up ------------------------------------------------------------------------------

    @staticmethod
    def _load_profile(profile: str | Profile | None) -> Profile | None:
        if profile is None:
            return None
        from vidchat.pipeline.profiles import load_profile

        return load_profile(profile)

    def _config_for(self, llm: Any) -> LLMConfig:
        if isinstance(llm, LLMConfig):
            return llm
        base = self.profile.llm if self.profile else None
        if llm is None:
            from vidchat.llm.config import resolve_llm_config

            return resolve_llm_config(base)
        from langchain_core.language_models import BaseChatModel

        if not isinstance(llm, BaseChatModel):
            raise ConfigError(
                "llm must be None, an LLMConfig or a langchain BaseChatModel, "
                f"got {type(llm).__name__}"
            )
        # A model given directly: its settings are its own; the config only sizes the budget.
        return base or LLMConfig()

    def _view(self, ctx: VideoContext) -> RecordView:
        return RecordView(
            ctx,
            window_s=self.window_s,
            count_tokens=self.count_tokens,
            embedder=self._embedder,
            cache=self.cache,
        )

    @property
    def window_s(self) -> float:
        """The timeline window of the rendering, in seconds (the profile's, or the default)."""
        from vidchat.pipeline.profiles import RenderConfig

        return (self.profile.render if self.profile else RenderConfig()).window_s

    @property
    def render_budget(self) -> int | None:
        """The profile's cap on the record's tokens (``render.budget_tokens``), if any."""
        return self.profile.render.budget_tokens if self.profile else None

    def count_tokens(self, text: str) -> int:
        """Tokens of `text` for this session's LLM (its tokenizer, or an estimate)."""
        if self._count is None:
            self._count = self._make_counter()
        return self._count(text)

    def _make_counter(self) -> Callable[[str], int]:
        from vidchat.text.render import estimate_tokens

        if self._given_model is not None:
            # A model given directly: no tokenizer we can rely on without loading more.
            return estimate_tokens
        from vidchat.llm.tokens import token_counter

        return token_counter(self.config)

    def chat_model(self) -> BaseChatModel:
        """The langchain chat model, created on first use (loading a local model takes time)."""
        if self._model is None:
            from vidchat.llm.factory import make_chat_model

            self._model = make_chat_model(self.config)
        return self._model

    @property
    def model_name(self) -> str:
        """A short name of the answering model, for answers and transcripts."""
        if self._given_model is not None:
            m = self._given_model
            for attr in ("model_name", "model", "model_id"):
                v = getattr(m, attr, None)
                if isinstance(v, str) and v:
                    return v
            return type(m).__name__
        c = self.config
        if c.backend == "local":
            return f"local:{c.model or DEFAULT_LOCAL_MODEL}"
        if c.backend == "openai":
            return f"openai:{c.model or 'default'}"
        return f"openai-compatible:{c.model or 'default'}@{c.base_url}"

    def describe_llm(self) -> str:
        """Which LLM answers and where it comes from (for /llm)."""
        if self._given_model is not None:
            return f"{self.model_name} (a {type(self._given_model).__name__} given directly)"
        from vidchat.llm.config import describe

        return describe(self.config)

    # -- the record ----------------------------------------------------------------------------

    @property
    def rendered(self) -> Rendered:
        """The full rendering of the record (no budget), computed once."""
        return self._record.rendered

    def retrieval_index(self) -> RetrievalIndex:
        """The retrieval index over the full rendering's windows, built on first need."""
        return self._record.retrieval_index()

    @property
    def retrieval_error(self) -> str | None:
        """Why retrieval is unavailable (no embedding model here), once it was tried; else None."""
        return self._record.retrieval_error

    # -- prompt assembly ---------------------------------------------------------------------

    def build_messages(self, question: str, facts: list[str] | None = None) -> PromptPlan:
        """The messages the LLM would receive for `question` now, with their budget.

        `facts`: lines computed from the record for this question (`vidchat.text.facts`); they
        go into the user's turn, after the record, so the record stays a fixed prefix.
        """
        return build_prompt(
            question,
            turns=self.turns,
            record_view=self._record,
            budget_tokens=self.budget_tokens,
            count_tokens=self.count_tokens,
            facts=facts,
            record_share=self.record_share,
            render_budget=self.render_budget,
            retrieval_k=self.retrieval_k,
        )

    def context_text(self, question: str | None = None) -> str:
        """Exactly what the LLM saw for the last question, or would see for `question`."""
        if question is None and self.last_messages is not None:
            messages = self.last_messages
            head = "(the context of the last question)"
        else:
            plan = self.build_messages(question or "(your next question)")
            messages = plan.messages
            head = f"(the context for {'this' if question else 'the next'} question)"
        total = sum(self.count_tokens(str(m.content)) + MESSAGE_OVERHEAD for m in messages)
        return f"{head} {total} of {self.budget_tokens} tokens\n\n" + format_messages(
            messages, self.count_tokens
        )

    # -- asking ------------------------------------------------------------------------------

    def cancel(self) -> None:
        """Stop the generation in progress (from another thread or a signal handler)."""
        self._cancel.set()

    def stream(
        self, question: str, cancel: threading.Event | None = None
    ) -> Generator[str, None, None]:
        """Stream the answer's text; afterwards `last_answer` holds the full `Answer`.

        Closing the iterator early or setting `cancel` stops generation; the partial answer is
        then `last_answer` with ``cancelled=True`` and is not added to the history. LLM errors
        propagate (as `vidchat.llm.errors.LLMError`) and leave the history unchanged.
        """
        question = (question or "").strip()
        if not question:
            raise InputError("empty question: ask something about the video")
        from vidchat.text.facts import facts_for

        self.last_answer = None
        self._cancel = cancel or threading.Event()
        # A follow-up ("what is said right after that?") is read against the previous answer.
        resolved = resolve(question, self.focus, self.ctx) if self.use_facts else None
        asked = resolved.question if resolved is not None else question
        read_as = None
        to_model = question
        if resolved is not None:
            # As read: the rewritten question, or the question with what "that" was taken for.
            # The model gets the question as asked, and how its reference was read.
            rewritten = resolved.question != " ".join(question.split())
            read_as = resolved.question if rewritten else f"{question} ({resolved.reading})"
            to_model = f"{question} (read as: {read_as})" if rewritten else question
        if resolved is not None and resolved.direct:
            return self._direct(question, resolved.direct, list(resolved.lines), read_as)
        facts = facts_for(asked, self.ctx) if self.use_facts else None
        if facts is not None and facts.direct:
            # Code answers: the model's prompt is never built (on a long record, building it
            # embeds the whole record for retrieval - seconds for nothing).
            return self._direct(question, facts.direct, facts.lines, read_as)
        plan = self.build_messages(to_model, facts.lines if facts else None)
        self.last_messages = plan.messages
        self.last_plan = plan
        lines = facts.lines if facts else []
        return self._generate(question, plan, self._cancel, lines, asked, read_as)

    def _direct(
        self, question: str, text: str, lines: list[str], read_as: str | None = None
    ) -> Generator[str, None, None]:
        """A pure lookup, answered by code from the record: no model, nothing invented."""
        self.last_messages = None
        self.last_plan = None
        t0 = time.perf_counter()
        yield text
        evidence = []
        for ln in lines:
            ids, _ = parse_object_ids(ln, self._known_ids)
            # A computed line that starts with a time (a speech line, a reading) is cited there.
            start, end = line_times(ln)
            evidence.append(Evidence(quote=ln, verified=True, source="computed", line=ln,
                                     start=start, end=end, objects=ids))  # fmt: skip
        self._finish(question, None, text, t0, time.perf_counter() - t0, cancelled=False,
                     evidence=evidence, answered_by="facts", facts=lines, raw=text,
                     read_as=read_as)  # fmt: skip

    def _generate(
        self,
        question: str,
        plan: PromptPlan,
        cancel: threading.Event,
        facts: list[str],
        asked: str,
        read_as: str | None,
    ) -> Generator[str, None, None]:
        from vidchat.llm.factory import restore_prefix, save_prefix
        from vidchat.llm.streaming import stream_chat

        model = self.chat_model()
        parts: list[str] = []
        first: float | None = None
        t0 = time.perf_counter()
        finished = False
        failed = False
        guard = LoopGuard()
        gate = AnswerGate()
        # A reading of this record saved by an earlier run (a local model only): the question
        # then starts from it instead of reading the whole record. Keyed by the part of the
        # system message every question shares (in retrieval mode: up to the windows).
        prefix = self._shared_prefix(plan)
        restore_prefix(model, prefix)
        chunks = stream_chat(model, plan.messages, cancel=cancel)
        try:
            for chunk in chunks:
                if first is None:
                    first = time.perf_counter() - t0
                parts.append(chunk)
                shown = gate.feed(chunk)
                if shown:
                    yield shown
                if cancel.is_set():
                    break
                if guard.feed(chunk):
                    break  # the model is looping: stop it (closing the stream below)
            finished = not cancel.is_set()
            if finished:
                tail = gate.rest()
                if tail:
                    yield tail
        except GeneratorExit:
            cancel.set()
            raise
        except BaseException as e:
            # KeyboardInterrupt is a cancellation; anything else is a failure of the LLM.
            if isinstance(e, KeyboardInterrupt):
                cancel.set()
            else:
                failed = True
            raise
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
            if not failed:
                # The server read the prefix: note it, and save it for later runs.
                n = self.count_tokens(str(prefix[0].content)) if finished else 0
                save_prefix(model, prefix, n, background=True)
                raw = guard.kept() if guard.looping else "".join(parts)
                quotes, text = split_reply(raw) if not gate.plain else ([], raw)
                record_text = record_block(str(plan.messages[0].content))
                evidence = verify_evidence(quotes, record_text + "\n" + "\n".join(facts),
                                           self._known_ids)  # fmt: skip
                evidence = self._checked(evidence, asked, record_text, facts)
                if not any(e.verified for e in evidence):
                    # No quote verified: the lines the answer itself reproduces or cites, found
                    # by code. (Quotes that verified but bear on something else are not
                    # replaced: the answer rests on them, and says so as off-topic.)
                    from vidchat.conversation.grounding import answer_evidence

                    found = answer_evidence(text, record_text, facts, self._known_ids)
                    evidence += self._checked(found, asked, record_text, facts)
                from vidchat.conversation.details import record_support, unsupported_details

                support = record_support(self.ctx, facts, asked, record_text)
                self._finish(
                    question, plan, text, t0, first,
                    cancelled=not finished, loop_stopped=guard.looping,
                    evidence=evidence, facts=facts, raw=raw, read_as=read_as,
                    unsupported=unsupported_details(text, support),
                )  # fmt: skip

    @staticmethod
    def _shared_prefix(plan: PromptPlan) -> list[BaseMessage]:
        """The start of `plan`'s system message that every question about this record shares
        (on a retrieval-mode record: up to the windows retrieved for the question)."""
        from langchain_core.messages import SystemMessage

        system = str(plan.messages[0].content)
        return [SystemMessage(system[: plan.prefix_chars or len(system)])]

    def _checked(
        self, evidence: list[Evidence], asked: str, record_text: str, facts: list[str]
    ) -> list[Evidence]:
        """Verified quotes marked relevant or not to the question (`mark_relevance`)."""
        from vidchat.conversation.grounding import record_lines
        from vidchat.conversation.relevance import mark_relevance

        return mark_relevance(evidence, asked, self.ctx, [*record_lines(record_text), *facts])

    def _finish(
        self,
        question: str,
        plan: PromptPlan | None,
        text: str,
        t0: float,
        first: float | None,
        cancelled: bool,
        loop_stopped: bool = False,
        *,
        evidence: list[Evidence] | None = None,
        answered_by: Literal["llm", "facts"] = "llm",
        facts: list[str] | None = None,
        raw: str = "",
        read_as: str | None = None,
        unsupported: list[str] | None = None,
    ) -> None:
        seconds = time.perf_counter() - t0
        text = text.strip()
        cited, unknown = parse_object_ids(text, self._known_ids)
        evidence = evidence or []
        verified = [e for e in evidence if e.verified]
        by_model = answered_by == "llm" and plan is not None
        answer = Answer(
            question=question,
            text=text,
            evidence=evidence,
            answered_by=answered_by,
            facts=facts or [],
            raw_text=raw.strip(),
            resolved_question=read_as,
            off_topic=bool(verified) and all(e.relevant is False for e in verified),
            citations=parse_citations(text, self.ctx.video.duration),
            objects=cited,
            unknown_objects=unknown,
            unsupported=unsupported or [],
            model=self.model_name if answered_by == "llm" else "facts computed from the record",
            prompt_tokens=plan.prompt_tokens if by_model and plan is not None else 0,
            completion_tokens=self.count_tokens(text) if text and by_model else 0,
            seconds=round(seconds, 3),
            first_token_seconds=round(first, 3) if first is not None else None,
            cancelled=cancelled,
            loop_stopped=loop_stopped,
            record_mode=plan.record_mode if plan is not None else "full",
            windows=plan.windows if plan is not None else [],
        )
        self.last_answer = answer
        if not cancelled:
            self.turns.append(Turn(question, answer))
            self.focus = focus_of(answer, self.ctx) or self.focus

    def prefill(self) -> bool:
        """Process the record now (the system prompt and record, the prefix every question
        shares), so that the first question starts from the prompt cache. Local server only;
        returns whether anything was done. Safe to call from a background thread."""
        from vidchat.llm.factory import prefill

        plan = self.build_messages("(prefill)")
        return prefill(self.chat_model(), self._shared_prefix(plan))

    def ask(self, question: str) -> Answer:
        """Ask and wait for the whole answer."""
        for _ in self.stream(question):
            pass
        assert self.last_answer is not None  # set by the stream's completion
        return self.last_answer

    def reset(self) -> None:
        """Forget the conversation (the record, model and retrieval index stay)."""
        self.turns.clear()
        self.focus = None
        self.last_answer = None
        self.last_messages = None
        self.last_plan = None

    def update_record(self, ctx: VideoContext) -> None:
        """Answer from `ctx` from now on (e.g. the record after a zoom); the conversation and
        the model stay, every rendering and index made from the old record is dropped."""
        if not isinstance(ctx, VideoContext):
            raise InputError(f"update_record needs a VideoContext, got {type(ctx).__name__}")
        self.ctx = ctx
        self._record = self._view(ctx)
        self._known_ids = {o.id for o in ctx.objects}
        self.focus = None  # its times and ids may not hold in the new record

    # -- transcript --------------------------------------------------------------------------

    def to_markdown(self) -> str:
        """The conversation as markdown: video, model, then each question and answer."""
        return to_markdown(self.ctx, self.model_name, self.turns)
