"""A conversation as markdown (``/save`` in the chat REPL, the web app's download): the video,
the model, then each question, its answer, the verified evidence and what the answer cites."""

from __future__ import annotations

from collections.abc import Sequence

from vidchat.conversation.answer import Turn
from vidchat.kernel.record import VideoContext
from vidchat.kernel.timecode import fmt_time

__all__ = ["to_markdown"]


def to_markdown(ctx: VideoContext, model_name: str, turns: Sequence[Turn]) -> str:
    """The conversation about `ctx` as markdown: video, model, then each question and answer."""
    v = ctx.video
    lines = [
        f"# vidchat — {v.name}",
        "",
        f"- video: `{v.path}` ({fmt_time(v.duration)}, {v.width}x{v.height})",
        f"- record: {len(ctx.objects)} objects, {len(ctx.speech)} speech segments,"
        f" {len(ctx.events)} events",
        f"- model: {model_name}",
    ]
    for i, t in enumerate(turns, 1):
        a = t.answer
        lines += ["", f"## {i}. {t.question}", "", a.text or "_(empty answer)_", ""]
        verified = [e for e in a.evidence if e.verified]
        for e in verified:
            at = f"[{fmt_time(e.start)}] " if e.start is not None else ""
            lines.append(f"> {at}{e.line or e.quote}")
        if a.answered_by == "llm" and not verified:
            lines.append("> (no evidence for this answer was found in the record)")
        if verified or a.answered_by == "llm":
            lines.append("")
        facts = []
        if a.citations:
            facts.append("times " + ", ".join(c.text for c in a.citations))
        if a.objects:
            facts.append("objects " + ", ".join(a.objects))
        if a.not_in_record:
            facts.append("NOT in the record: " + ", ".join(a.not_in_record))
        facts.append(f"{a.completion_tokens} tokens in {a.seconds:.1f} s")
        lines.append("*" + "; ".join(facts) + "*")
    return "\n".join(lines) + "\n"
