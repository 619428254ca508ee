"""Motion signals into GMHRA (`EmbedConfig.motion`) and the question-conditioned answer head
(`EmbedConfig.aux_answer`): what each computes, that it trains, and that bad values are named."""

from __future__ import annotations

import pytest
import torch

from vidchat.apps.instruct import QA, InstructionRecord
from vidchat.embed_model.config import EmbedConfig
from vidchat.embed_model.data import InstructionDataset
from vidchat.embed_model.gmhra import GMHRA, motion_inputs
from vidchat.embed_model.model import IGNORE, VideoChatEmbed, load_llm
from vidchat.embed_model.scenes import (
    ANSWER_CLASSES,
    ATTRIBUTE_HEADS,
    Scene,
    Shape,
    answer_target,
    write_scene,
)
from vidchat.kernel.errors import ConfigError


def _clip() -> torch.Tensor:
    """``[1, T=4, N=4, C=3]``: channel 0 is an object at token 0 in frames 0-1, at token 1 from
    frame 2 on (it moved between frames 1 and 2); channel 2 is a constant background."""
    f = torch.zeros(1, 4, 4, 3)
    f[0, :2, 0, 0] = 1.0
    f[0, 2:, 1, 0] = 1.0
    f[..., 2] = 0.5
    return f


def test_diff_marks_where_and_when_something_moved():
    (d,) = motion_inputs(_clip(), "diff")
    assert d.shape == (1, 4, 4, 3)
    assert torch.equal(d[0, 0], torch.zeros(4, 3))  # nothing before the first frame
    # The move between frames 1 and 2: left token 0 (-1), reached token 1 (+1), nowhere else.
    assert d[0, 2, 0, 0] == -1.0 and d[0, 2, 1, 0] == 1.0
    changed = d.abs().sum(-1) > 0
    assert changed.nonzero().tolist() == [[0, 2, 0], [0, 2, 1]]
    assert float(d[..., 2].abs().sum()) == 0.0  # the background never changes


def test_centred_is_each_position_minus_its_clip_mean():
    f = _clip()
    (c,) = motion_inputs(f, "centred")
    assert torch.allclose(c.mean(1), torch.zeros(1, 4, 3))
    assert c[0, 0, 0, 0] == pytest.approx(0.5) and c[0, 3, 0, 0] == pytest.approx(-0.5)
    both = motion_inputs(f, "both")
    assert len(both) == 2 and torch.equal(both[1], c)
    assert motion_inputs(f, "") == []
    with pytest.raises(ValueError, match="motion must be one of"):
        motion_inputs(f, "flow")
    with pytest.raises(ConfigError, match="motion must be one of"):
        EmbedConfig.tiny(motion="flow")


def test_gmhra_with_diff_sees_the_order_of_frames_through_its_own_weights():
    torch.manual_seed(0)
    g = GMHRA(3, 16, 2, 1, max_frames=4, n_tokens=4, motion="diff")
    assert len(g.motion_proj) == 1
    f = _clip()
    out = g(f)
    assert out.shape == (1, 1 + 4 * 4, 16)
    out.sum().backward()
    assert g.motion_proj[0].weight.grad is not None
    assert float(g.motion_proj[0].weight.grad.abs().sum()) > 0
    # Without the motion signal (and without time embeddings), a reversed clip gives the same
    # global query; with it, the reversed move (token 1 -> token 0) reads differently.
    with torch.no_grad():
        g.time.zero_()
        plain = GMHRA(3, 16, 2, 1, max_frames=4, n_tokens=4)
        plain.load_state_dict(g.state_dict(), strict=False)
        plain.time.zero_()
        rev = f.flip(1)
        assert torch.allclose(plain(f)[:, 0], plain(rev)[:, 0], atol=1e-5)
        assert not torch.allclose(g(f)[:, 0], g(rev)[:, 0], atol=1e-3)


def test_answer_targets_cover_every_visual_answer_and_no_other():
    assert answer_target("colour", "red") == ANSWER_CLASSES.index("red")
    assert answer_target("first_move", "the blue square") == ANSWER_CLASSES.index("the blue square")
    assert answer_target("count_moving", "2") == ANSWER_CLASSES.index("2")
    assert answer_target("speech", "The train leaves at noon.") == IGNORE
    assert answer_target("description", "A small red circle stays still.") == IGNORE
    assert answer_target("colour", "(A) red") == IGNORE  # multiple-choice form: not a class
    assert len(set(ANSWER_CLASSES)) == len(ANSWER_CLASSES)
    with pytest.raises(ConfigError, match="aux_answer needs aux_weight"):
        EmbedConfig.tiny(aux_answer=True)


def test_the_answer_head_reads_the_question_and_trains_the_bridge(tiny_llm, tmp_path, monkeypatch):
    scene = Scene(
        shapes=(
            Shape("red", "circle", "small", 10, 10, direction="left", start=1.0),
            Shape("blue", "square", "large", 50, 20),
        ),
        word="TAXI",
        sentence="The train leaves at noon.",
        background=30,
        seed=3,
    )
    video, truth, _ = write_scene(scene, tmp_path)
    ask = "Answer the question about the video briefly and exactly."
    qas = [
        QA(i=ask, q="What shape is the red object?", a="circle", type="shape", source="grounded"),
        QA(i=ask, q="What shape is the blue object?", a="square", type="shape", source="grounded"),
        QA(
            i=ask,
            q="What is said in the video?",
            a="The train leaves at noon.",
            type="speech",
            source="grounded",
        ),
    ]
    rec = InstructionRecord(
        video=str(video), sha256=truth.video.sha256, duration=4.0, split="train", QA=qas
    )

    class Encoder:  # never runs: the features are stubbed, the test is about the targets
        pass

    cfg = EmbedConfig.tiny(llm=str(tiny_llm), aux_weight=1.0, aux_answer=True, qformer_text=True)
    feats = torch.rand(4, 4, 12)
    monkeypatch.setattr("vidchat.embed_model.data.video_features", lambda *a, **k: feats)
    ds = InstructionDataset([rec], cfg, Encoder())  # type: ignore[arg-type]
    heads = len(ATTRIBUTE_HEADS)
    got = [ds.example(k).targets for k in range(3)]
    assert all(t is not None and len(t) == heads + 1 for t in got)
    assert [int(t[-1]) for t in got if t is not None] == [
        ANSWER_CLASSES.index("circle"),
        ANSWER_CLASSES.index("square"),
        IGNORE,
    ]
    # The video's own heads are the same whatever the question.
    assert got[0] is not None and got[1] is not None and torch.equal(got[0][:-1], got[1][:-1])

    llm, tok = load_llm(str(tiny_llm))
    torch.manual_seed(0)
    model = VideoChatEmbed(cfg, encoder_dim=12, llm=llm, tokenizer=tok)
    assert model.answer_head.out_features == len(ANSWER_CLASSES)
    exs = [ds.example(0), ds.example(1)]
    loss = model.attribute_loss(exs)
    loss.backward()
    # Only the question tells the two examples' answers apart: its path into the Q-Former
    # receives the head's gradient.
    assert model.text_proj.weight.grad is not None
    assert float(model.text_proj.weight.grad.abs().sum()) > 0
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(60):
        opt.zero_grad()
        model.attribute_loss(exs).backward()
        opt.step()
    with torch.no_grad():
        g, q = model.bridge(torch.stack([feats, feats]), model.bridge_texts(exs))
        picked = model.aux_logits(g, q)[-1].argmax(-1).tolist()
    # Same video, two questions, two answers: the head follows the question.
    assert picked == [ANSWER_CLASSES.index("circle"), ANSWER_CLASSES.index("square")]


def _moving_blobs(n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """`n` clips ``[T=4, N=9, C=4]`` on a 3x3 grid: one object (channel 0) rests at a token for
    two frames, then sits one token over (left, right, up or down: the label) for two; the
    other channels are noise."""
    steps = [(0, -1), (0, 1), (-1, 0), (1, 0)]  # left, right, up, down as (row, col) moves
    clips = torch.randn(n, 4, 9, 4, generator=gen) * 0.1
    labels = torch.randint(4, (n,), generator=gen)
    for k in range(n):
        dr, dc = steps[int(labels[k])]
        r = int(torch.randint(max(0, -dr), 3 - max(0, dr), (1,), generator=gen))
        c = int(torch.randint(max(0, -dc), 3 - max(0, dc), (1,), generator=gen))
        clips[k, :2, r * 3 + c, 0] += 1.0
        clips[k, 2:, (r + dr) * 3 + c + dc, 0] += 1.0
    return clips, labels


def test_a_trained_motion_reader_loses_the_direction_when_the_frames_are_shuffled():
    """The mechanism the scenes' direction questions need: GMHRA with the difference signal
    learns where a token's object went, and the answer depends on the frames' order (the
    bench measures the same on the scenes: bench/results/embed.json, frames shuffled)."""
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    g = GMHRA(4, 32, 2, 1, max_frames=4, n_tokens=9, motion="diff")
    head = torch.nn.Linear(32, 4)
    opt = torch.optim.Adam([*g.parameters(), *head.parameters()], lr=1e-2)
    for _ in range(150):
        x, y = _moving_blobs(64, gen)
        loss = torch.nn.functional.cross_entropy(head(g(x)[:, 0]), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    x, y = _moving_blobs(400, gen)
    perm = torch.tensor([2, 3, 0, 1])  # the same frames, the second half first
    with torch.no_grad():
        ordered = float((head(g(x)[:, 0]).argmax(-1) == y).float().mean())
        shuffled = float((head(g(x[:, perm])[:, 0]).argmax(-1) == y).float().mean())
    assert ordered >= 0.9, ordered
    assert shuffled <= 0.3, shuffled  # the reversed move reads as the opposite direction
