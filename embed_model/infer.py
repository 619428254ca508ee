"""Answering with a trained embed-model checkpoint: free text (greedy) or a choice among
options (highest mean log-likelihood), for ``vidchat ask --path embed --checkpoint …``."""

from __future__ import annotations

import functools
import threading
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from vidchat.embed_model.encoder import video_features
from vidchat.embed_model.model import Example
from vidchat.kernel.errors import InputError

__all__ = ["EmbedAnswer", "EmbedChat", "answer_with_embed", "load_embed_chat"]


class EmbedAnswer(BaseModel):
    """One answer from the embed path (the fields `vidchat ask --format json` prints)."""

    question: str
    text: str
    model: str
    seconds: float = Field(description="wall time for the answer, video features included")
    choice_index: int | None = Field(None, description="chosen option for multiple choice")
    scores: list[float] | None = None


class EmbedChat:
    """A loaded checkpoint ready to answer questions about videos."""

    def __init__(self, checkpoint: str | Path, device: str = "cpu") -> None:
        from vidchat.embed_model.train import load_checkpoint

        self.checkpoint = Path(checkpoint)
        self.model, self.encoder, state = load_checkpoint(checkpoint, device)
        self.model.eval()
        self.step = int(state.get("step", 0))
        # A model trained on open-ended answers scores each option as an open answer; one
        # trained on multiple choice scores "(B) option" after the listed options.
        self.open_form = bool(state.get("train", {}).get("open_only", False))
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        c = self.model.config
        blind = " [trained blind]" if c.blind else ""
        return f"embed:{self.checkpoint.name}@{self.step} ({c.encoder} -> {c.llm}){blind}"

    def example(
        self, video: str | Path, instruction: str, question: str, perturb: str | None = None
    ) -> Example:
        """The model's input for one question about `video` (blank frames for a model trained
        blind; `perturb` shuffles or blanks the frames on purpose)."""
        if self.model.config.blind:  # trained without the video: answers without it too
            perturb = "blank"
        feats = video_features(video, self.encoder, self.model.config.n_frames, perturb=perturb)
        return Example(feats.to(self.model.proj.weight.device), instruction, question)

    def answer(self, video: str | Path, question: str, max_new_tokens: int = 64) -> EmbedAnswer:
        from vidchat.apps.instruct import OPEN_INSTRUCTION

        t0 = time.perf_counter()
        with self._lock:
            text = self.model.generate(
                self.example(video, OPEN_INSTRUCTION, question), max_new_tokens
            )
        return EmbedAnswer(
            question=question, text=text, model=self.name, seconds=time.perf_counter() - t0
        )

    def choose(
        self,
        video: str | Path,
        question: str,
        choices: list[str],
        perturb: str | None = None,
    ) -> EmbedAnswer:
        """Pick one of `choices` by mean log-likelihood, the question asked as in training (open,
        or with the options listed). `perturb` (``shuffled``/``blank``) takes the video away on
        purpose, to measure how much the answer depends on it."""
        from vidchat.apps.instruct import LETTERS, MC_INSTRUCTION, OPEN_INSTRUCTION, format_choices

        t0 = time.perf_counter()
        if self.open_form:
            ex = self.example(video, OPEN_INSTRUCTION, question, perturb)
            answers = list(choices)
        else:
            ex = self.example(video, MC_INSTRUCTION, format_choices(question, choices), perturb)
            answers = [f"({LETTERS[k]}) {c}" for k, c in enumerate(choices)]
        with self._lock:
            scores = self.model.score_choices(ex, answers)
        k = max(range(len(scores)), key=scores.__getitem__)
        return EmbedAnswer(
            question=question,
            text=answers[k],
            model=self.name,
            seconds=time.perf_counter() - t0,
            choice_index=k,
            scores=scores,
        )


@functools.lru_cache(maxsize=2)
def _cached(checkpoint: str, mtime_ns: int, device: str) -> EmbedChat:
    return EmbedChat(checkpoint, device)


def load_embed_chat(checkpoint: str | Path, device: str = "cpu") -> EmbedChat:
    """A loaded checkpoint, reused while the file is unchanged (a REPL asks many questions)."""
    p = Path(checkpoint)
    if p.is_dir():
        from vidchat.embed_model.train import CHECKPOINT

        p = p / CHECKPOINT
    if not p.is_file():
        raise InputError(f"no embed-model checkpoint at {p} (expected a file from training)")
    return _cached(str(p.resolve()), p.stat().st_mtime_ns, device)


def _video_of(video_or_record: Any) -> Path:
    from vidchat.kernel.record import VideoContext

    if isinstance(video_or_record, VideoContext):
        path = Path(video_or_record.video.path)
    else:
        path = Path(video_or_record).expanduser()
        if path.suffix.lower() == ".json":
            if not path.is_file():
                raise InputError(f"no such record: {path}")
            path = Path(VideoContext.load(path).video.path)
    if not path.is_file():
        raise InputError(f"video not found: {path} (the embed path reads the frames themselves)")
    return path


def answer_with_embed(
    video_or_record: Any,
    question: str,
    checkpoint: str | Path,
    choices: list[str] | None = None,
    device: str = "cpu",
) -> EmbedAnswer:
    """Answer `question` about a video (path, saved record .json or VideoContext) with a trained
    checkpoint; with `choices`, pick one of them."""
    chat = load_embed_chat(checkpoint, device)
    video = _video_of(video_or_record)
    if choices:
        return chat.choose(video, question, list(choices))
    return chat.answer(video, question)
