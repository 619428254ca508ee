"""The comparison harness: answers read back as options, accuracy per type, chance, the table."""

from __future__ import annotations

import pytest

from tests.conversation.chat_helpers import ScriptedChatModel, small_record
from vidchat.apps.evaluate import (
    chance_report,
    comparison_table,
    evaluate_blind,
    evaluate_text,
    mc_items,
    parse_choice,
    wilson_interval,
)
from vidchat.apps.instruct import build_dataset, write_jsonl
from vidchat.cli.instruct import main
from vidchat.kernel.errors import InputError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("(B) 00:20", 1),
        ("B", 1),
        ("C. moves left", 2),
        ("The answer is D", 3),
        ("I think it is 00:50 [00:50].", 2),
        ("person#1 or dog#1, hard to say", None),
        ("(E) nothing", None),  # only four options
        ("no idea", None),
        # "A" the article is not option A: the sentence names option B by its text.
        ("A person is seen at 00:20.", 1),
        ("A person appears, then leaves.", None),
        ("The answer is A person at 00:50.", 2),
        ("A", 0),
        ("A.", 0),
        ("A) 00:03", 0),
        ("A: 00:03", 0),
        ("A 00:03", 0),
        ("(A) is right", 0),
        ("Option A", 0),
        ("answer: C", 2),
        ("B is my guess", 1),
        ("  D, the last one", 3),
    ],
)
def test_parse_choice(text, expected):
    assert parse_choice(text, ["00:03", "00:20", "00:50", "moves"]) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("A moves left", 0),  # option A's own text after the letter: the letter
        ("A square moves right", 1),  # the article, then option B's text
        ("A red square", None),
    ],
)
def test_parse_choice_tells_the_article_from_option_a(text, expected):
    assert parse_choice(text, ["moves left", "moves right", "stays in place"]) == expected


def test_wilson_interval():
    lo, hi = wilson_interval(8, 10)
    assert lo == pytest.approx(0.490, abs=1e-3) and hi == pytest.approx(0.943, abs=1e-3)
    assert wilson_interval(0, 5)[0] == 0.0 and wilson_interval(5, 5)[1] == 1.0
    assert wilson_interval(0, 0) == (0.0, 1.0)
    # More questions, narrower interval around the same rate.
    a, b = wilson_interval(30, 60), wilson_interval(300, 600)
    assert b[1] - b[0] < a[1] - a[0] and a[0] < 0.5 < a[1]


def _items(tmp_path):
    recs = []
    for k in range(3):
        ctx = small_record()
        ctx.video.sha256 = f"{k:064x}"
        recs.append(ctx)
    data = build_dataset(recs, ratios=(0.0, 0.0, 1.0))
    write_jsonl(data, tmp_path / "d.jsonl")
    return tmp_path / "d.jsonl", {r.video.sha256: r for r in recs}


def test_text_path_scores_per_type_against_the_known_answers(tmp_path):
    path, contexts = _items(tmp_path)
    items = mc_items(path, "test")
    # A model that always answers (A): its accuracy is exactly the share of items whose answer
    # is the first option, per type and overall.
    model = ScriptedChatModel(reply_fn=lambda m: "(A)")
    report = evaluate_text(items, llm=model, contexts=contexts)
    assert report.overall.n == len(items) == len(model.calls)
    assert report.overall.correct == sum(it.qa.answer_index == 0 for it in items)
    for t, score in report.per_type.items():
        its = [it for it in items if it.qa.type == t]
        assert score.accuracy == pytest.approx(
            sum(it.qa.answer_index == 0 for it in its) / len(its)
        )
    assert report.overall.unparsed == 0 and report.overall.mean_seconds >= 0
    # The model saw the record and the options (the real text path, not a shortcut).
    user = model.calls[0].messages[-1].content
    assert "Options:" in user and "(A)" in user
    assert any("<record>" in m.content for m in model.calls[0].messages)

    # An oracle reading the right option from the question gets everything right.
    answers = {it.qa.q: it.qa.a for it in items}

    def oracle(messages):
        # The user's turn may open with facts computed from the record (a <facts> block).
        question = messages[-1].content.split("</facts>\n\n")[-1]
        return answers[question.rsplit("\n", 1)[0]]

    perfect = evaluate_text(items, llm=ScriptedChatModel(reply_fn=oracle), contexts=contexts)
    assert perfect.overall.accuracy == 1.0

    chance = chance_report(items)
    assert chance.overall.accuracy == pytest.approx(
        sum(1 / len(it.qa.choices) for it in items) / len(items)
    )
    table = comparison_table([report, perfect, chance])
    lines = table.splitlines()
    assert lines[0].startswith("| question type | n | text acc | text acc | chance acc")
    assert any(line.startswith("| count |") for line in lines)
    assert "| **all** |" in table and "1.00 [" in table
    lo, hi = perfect.overall.ci95
    assert hi == 1.0 and 0.5 < lo < 1.0


def test_blind_baseline_sees_the_question_and_options_only(tmp_path):
    path, _ = _items(tmp_path)
    items = mc_items(path, "test")
    # A model that picks option B: its accuracy is the share of items answered by B.
    model = ScriptedChatModel(reply_fn=lambda m: "(B)")
    blind = evaluate_blind(items, llm=model)
    assert blind.path == "blind" and blind.overall.n == len(items) == len(model.calls)
    assert blind.overall.correct == sum(it.qa.answer_index == 1 for it in items)
    for call, it in zip(model.calls, items, strict=True):
        sent = "\n".join(m.content for m in call.messages)
        assert "Options:" in sent and it.qa.q.split("\nOptions:")[0] in sent
        # Nothing from the record: no record block, no speech, no on-screen text.
        assert "<record>" not in sent
        assert "Good morning" not in sent or "Good morning" in it.qa.q
        assert "CITY PARK" not in sent or "CITY PARK" in it.qa.q
    table = comparison_table([blind, chance_report(items)])
    assert "blind acc" in table.splitlines()[0]


def test_eval_cli_errors(tmp_path, capsys):
    path, _ = _items(tmp_path)
    assert main(["eval", str(path), "--path", "embed"]) == 2
    assert "--checkpoint" in capsys.readouterr().err
    assert main(["eval", str(path), "--split", "train"]) == 2
    assert "no multiple-choice questions in split 'train'" in capsys.readouterr().err
    with pytest.raises(InputError, match="no such instruction file"):
        mc_items(tmp_path / "nope.jsonl")
