"""The answer model: what one answer says, what it cites and the evidence it rests on.

Typed data between the conversation's stages (`vidchat.conversation.session` fills it; the
chat REPL, web app, MCP server, evaluation and benchmarks read it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, Field

__all__ = ["Answer", "Citation", "Evidence", "RecordMode", "Turn"]

RecordMode = Literal["full", "retrieval", "compact"]


class Citation(BaseModel):
    """A time the answer cites: ``[01:02]`` (start == end) or a range ``[01:02-01:10]``."""

    text: str = Field(description="as written in the answer, brackets included")
    start: float = Field(description="seconds")
    end: float = Field(description="seconds; equal to start for a single time")
    in_video: bool = Field(True, description="False when the time lies past the video's end")


class Evidence(BaseModel):
    """A record line the answer relies on, as quoted by the model (or computed by code), and
    whether it was found in the record. Only verified evidence is shown as a citation."""

    quote: str = Field(description="as the model wrote it (or the computed fact)")
    verified: bool = Field(description="found in the record (exact or near-exact line match)")
    relevant: bool | None = Field(
        None,
        description="whether the line bears on the question (shares one of its topic words, "
        "times or objects; `vidchat.conversation.relevance`); false: a real line about something "
        "else, never shown as a citation; None: not checked (the question names nothing to "
        "check against, or the line was computed for the question)",
    )
    source: Literal["record", "computed", "answer"] = Field(
        "record",
        description="record: quoted by the model; computed: a fact computed by code; answer: "
        "a line the answer reproduces or cites, found by code when the model quoted none",
    )
    line: str | None = Field(None, description="the matching record line, when verified")
    start: float | None = Field(None, description="seconds: the line's time, when it has one")
    end: float | None = None
    objects: list[str] = Field(default_factory=list, description="object ids on the line")


class Answer(BaseModel):
    """One answer and where it came from."""

    question: str
    text: str
    evidence: list[Evidence] = Field(
        default_factory=list, description="quoted record lines, each checked against the record"
    )
    answered_by: Literal["llm", "facts"] = Field(
        "llm", description="facts: a pure lookup answered by code from the record, no model"
    )
    facts: list[str] = Field(
        default_factory=list, description="facts computed from the record and given to the model"
    )
    raw_text: str = Field("", description="the model's whole reply (evidence, then answer)")
    resolved_question: str | None = Field(
        None,
        description="a follow-up with its reference made explicit from the previous answer "
        '("what is said right after that?" -> after the speech at [00:12–00:14]), as answered',
    )
    off_topic: bool = Field(
        False,
        description="the evidence verified but none of it bears on the question (every verified "
        "quote has relevant=false): the answer rests on record lines about something else",
    )
    citations: list[Citation] = Field(default_factory=list)
    objects: list[str] = Field(default_factory=list, description="cited ids found in the record")
    unknown_objects: list[str] = Field(
        default_factory=list, description="cited ids that are NOT in the record (likely invented)"
    )
    unsupported: list[str] = Field(
        default_factory=list,
        description="specific details the answer states (clock times, long numbers, amounts, "
        "names) that nothing said, shown or computed in the record holds "
        "(`vidchat.conversation.details`): likely invented",
    )
    model: str
    prompt_tokens: int
    completion_tokens: int
    seconds: float = Field(description="wall time from sending the prompt to the last token")
    first_token_seconds: float | None = None
    cancelled: bool = False
    loop_stopped: bool = Field(
        False,
        description="generation was stopped because the model repeated itself; `text` keeps "
        "one copy of the repeated passage",
    )
    record_mode: RecordMode = Field(
        "full", description="full record, retrieved windows, or the renderer's compacted record"
    )
    windows: list[tuple[float, float]] = Field(
        default_factory=list, description="retrieved timeline windows (record_mode='retrieval')"
    )

    @property
    def not_in_record(self) -> list[str]:
        """What the answer names that the record does not hold: object ids, then details."""
        return [*self.unknown_objects, *self.unsupported]


@dataclass
class Turn:
    """One finished exchange of the conversation."""

    question: str
    answer: Answer
