"""Retrieval over timeline windows: time expressions, the embedding index and its disk cache,
and recall on an hour-long record with planted facts (real all-MiniLM-L6-v2, marked slow)."""

from __future__ import annotations

import pytest

from tests.conversation.chat_helpers import (
    PLANTED,
    HashingEmbedder,
    long_record,
    planted_questions,
)
from vidchat.kernel.timecode import fmt_time
from vidchat.text.render import TimelineWindow, render
from vidchat.text.retrieval import (
    RetrievalIndex,
    get_embedder,
    parse_time_mentions,
    recall_at_k,
    record_hash,
)


@pytest.mark.parametrize(
    ("question", "spans"),
    [
        ("what happens at 12:30?", [(750, 750)]),
        ("and at 1:02:03", [(3723, 3723)]),
        ("between 10:00 and 12:00 who talks?", [(600, 720)]),
        ("from 90 s to 2 minutes", [(90, 120)]),
        ("12:30-13:00 please", [(750, 780)]),
        ("at 5 minutes", [(300, 300)]),
        ("after 12 min 30 s", [(750, 750)]),
        ("1 hour and 5 minutes in", [(3900, 3900)]),
        ("in minute 12", [(720, 780)]),
        ("what about 00:10 and then 00:50?", [(10, 10), (50, 50)]),
        ("at the very beginning", [(0, 0)]),
        ("at the end", [(3600, 3600)]),
        # not times
        ("are there 2 men and 3 dogs?", []),
        ("score was 12:75", []),
        ("version 1.2:3", []),
    ],
)
def test_parse_time_mentions(question, spans):
    got = parse_time_mentions(question, duration=3600.0)
    assert [(s.start, s.end) for s in got] == spans


def windows(n: int, width: float = 10.0) -> list[TimelineWindow]:
    topics = ["a red car parks", "two people talk", "a dog barks loudly", "rain starts falling"]
    out = []
    for i in range(n):
        a, b = i * width, (i + 1) * width
        lines = [f"[{fmt_time(a)}–{fmt_time(b)}]", f'  {fmt_time(a)} caption: "{topics[i % 4]}"',
                 "  visible: person#1"]  # fmt: skip
        out.append(TimelineWindow(a, b, "\n".join(lines)))
    return out


def test_time_matches_come_first_then_similar_windows(cache_dir):
    idx = RetrievalIndex(windows(40), HashingEmbedder(), record_hash="r1")
    hits = idx.search("what does the dog do at 05:05?", k=2)
    assert hits[0].index == 30 and hits[0].reason == "time"
    semantic = [h for h in hits if h.reason == "semantic"]
    assert len(semantic) == 2
    assert all(h.index % 4 == 2 for h in semantic)  # the dog windows
    assert all(h.index != 30 for h in semantic)  # no repeats
    ranged = idx.time_hits("between 01:00 and 01:30")
    assert [h.index for h in ranged] == [6, 7, 8]


def test_select_fits_the_budget_and_returns_time_order(cache_dir):
    idx = RetrievalIndex(windows(40), HashingEmbedder(), record_hash="r1")
    per_window = len(idx.windows[0].text.split()) + 1
    chosen = idx.select("the dog barks at 03:20", 2 * per_window + 1,
                        lambda t: len(t.split()), k=5)  # fmt: skip
    assert len(chosen) == 2
    assert chosen[0].start < chosen[1].start
    assert 20 in [h.index for h in chosen]  # the time match always makes it


def test_left_over_budget_goes_to_the_neighbours_of_hits(cache_dir):
    idx = RetrievalIndex(windows(40), HashingEmbedder(), record_hash="r1")
    words = lambda t: len(t.split())  # noqa: E731
    chosen = idx.select("what happens at 03:20?", 10_000, words, k=0, neighbors=2)
    assert [(h.index, h.reason) for h in chosen] == [
        (18, "neighbor"), (19, "neighbor"), (20, "time"), (21, "neighbor"), (22, "neighbor")
    ]  # fmt: skip
    per_window = words(idx.windows[0].text) + 1
    tight = idx.select("what happens at 03:20?", 2 * per_window, words, k=0, neighbors=2)
    assert [h.index for h in tight] == [19, 20]  # the nearest neighbour first


def test_embeddings_are_cached_per_record_and_model(cache_dir):
    emb = HashingEmbedder()
    first = RetrievalIndex(windows(40), emb, record_hash="r1")
    first.search("dog")
    # identical lines are embedded once: 4 topics (+ the question)
    assert emb.encoded == 4 + 1
    assert first.cache_path.is_file() and first.cache_path.parent == cache_dir / "retrieval"
    assert not first.loaded_from_cache

    again = RetrievalIndex(windows(40), emb, record_hash="r1")
    again.search("dog")
    assert again.loaded_from_cache and emb.encoded == 4 + 2  # only the question
    assert again.cache_path == first.cache_path

    other_record = RetrievalIndex(windows(40), emb, record_hash="r2")
    assert other_record.cache_path != first.cache_path
    other_model = HashingEmbedder()
    other_model.identity = "test:another-model"
    assert RetrievalIndex(windows(40), other_model, record_hash="r1").cache_path != first.cache_path

    uncached = RetrievalIndex(windows(40), HashingEmbedder(), record_hash="r3", cache=False)
    uncached.search("dog")
    assert uncached.cache_path is None
    assert sorted(p.name for p in (cache_dir / "retrieval").iterdir()) == [first.cache_path.name]


def test_a_damaged_cache_file_is_rebuilt(cache_dir):
    emb = HashingEmbedder()
    idx = RetrievalIndex(windows(8), emb, record_hash="r1")
    idx.search("dog")
    idx.cache_path.write_bytes(b"not an npz")
    again = RetrievalIndex(windows(8), emb, record_hash="r1")
    assert again.search("dog") and not again.loaded_from_cache


def test_windows_with_nothing_to_embed_are_never_similar(cache_dir):
    ws = [TimelineWindow(0, 10, "[00:00–00:10]\n  visible: person#1"),
          TimelineWindow(10, 20, '[00:10–00:20]\n  00:12 speech: "hello there"')]  # fmt: skip
    idx = RetrievalIndex(ws, HashingEmbedder(), record_hash="r")
    scores = idx.semantic_scores("hello")
    assert scores[0] == -1.0 and scores[1] > 0.5
    assert idx.search("what happens at 00:05?")[0].index == 0  # still reachable by time


def test_an_index_needs_windows():
    with pytest.raises(ValueError, match="at least one timeline window"):
        RetrievalIndex([], HashingEmbedder())


@pytest.mark.slow
def test_recall_on_an_hour_long_record_with_the_real_embedder(cache_dir):
    """Planted facts in a tiled 61-minute record: each paraphrased question (no shared key words,
    no times) must retrieve the fact's 10 s window among the top 3 of 366."""
    ctx = long_record(3660.0)
    assert ctx.video.duration >= 3600
    rendered = render(ctx, window_s=10.0)
    questions = planted_questions(ctx.video.duration)
    assert len(questions) >= 20
    idx = RetrievalIndex(rendered.windows, get_embedder(), record_hash=record_hash(ctx),
                         duration=ctx.video.duration)  # fmt: skip
    recall = recall_at_k(idx, questions, k=3)
    assert recall >= 0.9, f"recall@3 {recall:.3f} over {len(questions)} questions"

    # a question naming a time pulls that window first, whatever its words
    _, _, text, _ = PLANTED[0]
    hits = idx.search("what is said at 2:13?", k=3)
    assert hits[0].reason == "time" and text in idx.windows[hits[0].index].text

    # the embeddings were cached: a new index over the same record embeds only questions
    again = RetrievalIndex(rendered.windows, get_embedder(), record_hash=record_hash(ctx),
                           duration=ctx.video.duration)  # fmt: skip
    again.search("anything")
    assert again.loaded_from_cache


@pytest.mark.slow
def test_loading_the_real_embedder_writes_no_weights_bar(capfd):
    """transformers' "Loading weights" bar went to stderr in the middle of `vidchat ask`: the
    embedder loads without it, and leaves transformers' progress bars as it found them."""
    from transformers.utils import logging as hf_logging

    from vidchat.text.retrieval import DEFAULT_EMBED_MODEL, SentenceEmbedder

    # Another test in the same process may have turned the bars off: start from "on", as a
    # fresh `vidchat ask` does, and leave the setting as it was.
    was_on = hf_logging.is_progress_bar_enabled()
    hf_logging.enable_progress_bar()
    try:
        embedder = SentenceEmbedder(DEFAULT_EMBED_MODEL)  # a fresh instance: loads here
        assert embedder.encode(["the train leaves early"]).shape == (1, 384)
        assert "Loading weights" not in capfd.readouterr().err
        assert hf_logging.is_progress_bar_enabled()  # back on for other users of transformers
    finally:
        if not was_on:
            hf_logging.disable_progress_bar()
