"""Prefill at ready: the request that prefills the record leaves in llama.cpp's prompt cache
exactly the prefix the first question's prompt starts with, so the question reads only its own
turn (facts and question). Checked with llama.cpp's own counts (cache_n, prompt_n) on the
shipped SmolLM2-135M, through the session's real prompt assembly."""

from __future__ import annotations

from vidchat.conversation.prompt import instructions_prefix
from vidchat.conversation.session import ChatSession
from vidchat.kernel.llm_config import LLMConfig
from vidchat.llm.local_chat import LocalServerChatModel
from vidchat.prompts import load_prompt
from vidchat.testing.records import small_record


def test_the_first_question_reuses_everything_the_prefill_read():
    session = ChatSession(
        small_record(), llm=LLMConfig(model="llm:smollm2-135m", max_tokens=8, context_tokens=4096)
    )
    model = session.chat_model()
    assert isinstance(model, LocalServerChatModel)
    model.server().stop()  # a fresh server: nothing cached from another test
    assert session.prefill()
    for question in ("Who is seen first?", "How many people appear in the video?"):
        plan = session.build_messages(question)
        system, user = plan.messages[0], plan.messages[-1]
        # The question-independent part (instructions, record) is the system message; the
        # question (and any facts) come after it.
        assert str(system.content).startswith(load_prompt("chat").render("system"))
        assert question not in str(system.content) and question in str(user.content)
        t = model.prefill(plan.messages)
        system_tokens = session.count_tokens(str(system.content))
        assert t["cache_n"] >= system_tokens, t  # the whole system message from the cache
        # What was read anew is the user's turn and the chat template's markers, no more.
        assert t["prompt_n"] <= session.count_tokens(str(user.content)) + 12, t
        session.prefill()  # back to the state a fresh question meets


def test_the_record_prefill_continues_from_the_instructions_read_during_perception():
    session = ChatSession(
        small_record(), llm=LLMConfig(model="llm:smollm2-135m", max_tokens=8, context_tokens=4096)
    )
    model = session.chat_model()
    assert isinstance(model, LocalServerChatModel)
    model.server().stop()  # a fresh server: nothing cached from another test
    prefix = instructions_prefix()
    t = model.prefill(prefix)  # what `start_local_server` does while perception runs
    instructions = session.count_tokens(str(prefix[0].content))
    assert t["prompt_n"] >= instructions
    # The record's prefill, exactly as `session.prefill` sends it, reads only the record.
    record = session.build_messages("(prefill)").messages[:1]
    assert str(record[0].content).startswith(str(prefix[0].content))
    t = model.prefill(record)
    assert t["cache_n"] >= instructions - 2, t  # at most the boundary tokens are read again


def test_quotes_are_checked_against_the_record_not_the_instructions():
    from vidchat.conversation.evidence import record_block

    system = str(
        ChatSession(small_record(), llm=LLMConfig(model="llm:smollm2-135m"))
        .build_messages("Who is seen first?")
        .messages[0]
        .content
    )
    instructions = load_prompt("chat").render("system")
    assert "<record>" in instructions  # the instructions name the tag, inline
    block = record_block(system)
    assert block.strip().startswith("VIDEO:")  # the rendering's first line
    assert instructions.splitlines()[0] not in block and "EVIDENCE" not in block
