"""``caption`` and ``region_caption`` with a tiny GIT captioner built locally.

No captioning weights ship in any registry package: the tests build a GIT model (transformers'
own `GitConfig`/`GitForCausalLM`, random weights) with a real `GitProcessor` (CLIP image
processor, a BERT word-piece tokenizer over a small vocabulary), save it as a folder, and load it
back through the perceivers' real path (model resolver -> AutoProcessor ->
AutoModelForImageTextToText). Random weights give nonsense words, so the tests assert the
record's structure: one caption per keyframe at the keyframe's time, one description per object.
Real models this code was written for: Salesforce/blip-image-captioning-base,
microsoft/git-base-coco, microsoft/Florence-2-base.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.media import ListMedia, video_info
from vidchat.kernel.errors import ConfigError
from vidchat.kernel.record import ObjectTrack, TrackPoint, VideoContext
from vidchat.kernel.samples import sample_path
from vidchat.perceivers.base import Frame
from vidchat.perceivers.caption import CaptionPerceiver, RegionCaptionPerceiver, import_transformers
from vidchat.perceivers.keyframes import KeyframeOptions, select_keyframes
from vidchat.testing.videos import decode_frames

_WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "person", "walking", "on", "the"]
_WORDS += ["street", "man", "woman", "car", "red", "two", "people", "standing", "in", "room"]


def build_tiny_git(folder: Path) -> Path:
    """A tiny random GIT captioner and its processor saved as a transformers folder."""
    import torch

    T = import_transformers()
    folder.mkdir(parents=True, exist_ok=True)
    vocab = folder / "vocab.txt"
    vocab.write_text("\n".join(_WORDS) + "\n")
    processor = T.GitProcessor(
        image_processor=T.CLIPImageProcessor(
            size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
        ),
        tokenizer=T.BertTokenizer(str(vocab)),
    )
    config = T.GitConfig(
        vision_config=dict(
            hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
            image_size=32, patch_size=8,
        ),
        vocab_size=len(_WORDS), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=64, bos_token_id=2, eos_token_id=3,
        pad_token_id=0,
    )  # fmt: skip
    torch.manual_seed(0)
    out = folder / "git-tiny"
    T.GitForCausalLM(config).save_pretrained(out)
    processor.save_pretrained(out)
    return out


def build_tiny_blip(folder: Path) -> Path:
    """A tiny random BLIP captioner (BlipForConditionalGeneration) and its BlipProcessor."""
    import torch

    T = import_transformers()
    folder.mkdir(parents=True, exist_ok=True)
    words = [*_WORDS[:5], "[DEC]", *_WORDS[5:]]  # BLIP starts captions with its [DEC] token
    vocab = folder / "vocab.txt"
    vocab.write_text("\n".join(words) + "\n")
    processor = T.BlipProcessor(
        image_processor=T.BlipImageProcessor(size={"height": 32, "width": 32}),
        tokenizer=T.BertTokenizer(str(vocab), bos_token="[DEC]"),
    )
    config = T.BlipConfig(
        vision_config=dict(
            hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
            image_size=32, patch_size=8,
        ),
        text_config=dict(
            vocab_size=len(words), hidden_size=16, encoder_hidden_size=16, intermediate_size=32,
            num_hidden_layers=1, num_attention_heads=2, max_position_embeddings=32,
            bos_token_id=5, eos_token_id=3, sep_token_id=3, pad_token_id=0,
        ),
        projection_dim=16,
    )  # fmt: skip
    torch.manual_seed(0)
    out = folder / "blip-tiny"
    T.BlipForConditionalGeneration(config).save_pretrained(out)
    processor.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def tiny_git(tmp_path_factory) -> Path:
    return build_tiny_git(tmp_path_factory.mktemp("git"))


@pytest.fixture(scope="module", params=["git", "blip"])
def tiny_captioner(request, tmp_path_factory) -> Path:
    build = {"git": build_tiny_git, "blip": build_tiny_blip}[request.param]
    return build(tmp_path_factory.mktemp(request.param))


@pytest.fixture(scope="module")
def megamind_frames() -> list[Frame]:
    return decode_frames(sample_path("megamind"), fps=1.0, max_side=320)


def test_options_and_requirements(tmp_path) -> None:
    assert CaptionPerceiver().requires == ()
    assert CaptionPerceiver({"use_shots": True}).requires == ("shots",)
    assert RegionCaptionPerceiver().requires == ("detect",)
    with pytest.raises(ConfigError, match="caption: unknown key 'beams'"):
        CaptionPerceiver({"beams": 2})
    with pytest.raises(ConfigError, match=r"keyframes\.max_interval_s"):
        CaptionPerceiver({"keyframes": {"max_interval_s": 0}})
    missing = CaptionPerceiver({"model": str(tmp_path / "nothing")}).availability()
    assert not missing.ok and "not found" in (missing.reason or "")
    from vidchat.perceivers.caption import torch_device

    assert torch_device("cuda:1") == "cuda:1" and torch_device("auto") in ("cpu", "cuda")
    hub = RegionCaptionPerceiver({"model": "microsoft/git-base-coco"})
    assert hub.availability().ok and hub.model_identity() == "hub:microsoft/git-base-coco"


@pytest.mark.slow
def test_one_caption_per_keyframe(tiny_captioner, megamind_frames) -> None:
    frames = megamind_frames
    opts = KeyframeOptions(max_interval_s=4.0)
    expected = [f.t for f in select_keyframes(frames, opts)]
    ends = [t - 1e-9 for t in expected[1:]]  # each caption holds until the next keyframe
    assert 2 <= len(expected) < len(frames)  # keyframes are a real subset
    p = CaptionPerceiver(
        {"model": str(tiny_captioner), "max_new_tokens": 6, "keyframes": opts.model_dump()}
    )
    assert p.availability().ok and p.model_identity().startswith("local:")
    events = list(p.perceive(ListMedia(video_info(duration=11.3), slow=frames)))
    assert [e.start for e in events] == expected
    assert [e.data["keyframe"] for e in events] == list(range(1, len(expected) + 1))
    assert all(e.end <= nxt for e, nxt in zip(events, ends, strict=False))
    assert events[-1].end == pytest.approx(frames[-1].t)
    for e in events:
        assert e.kind == "caption" and e.source == "caption" and e.end >= e.start
        words = e.text.split()
        assert 1 <= len(words) <= 6 and set(words) <= set(_WORDS[4:])


@pytest.mark.slow
def test_region_caption_describes_each_object_from_its_best_crop(tiny_git) -> None:
    rng = np.random.default_rng(1)
    frames = [
        Frame(i, float(i), (rng.random((120, 160, 3)) * 255).astype(np.uint8), 0.5)
        for i in range(5)
    ]
    info = video_info(width=320, height=240, duration=5.0)

    def track(oid: str, t0: float, t1: float, boxes: list[tuple[float, ...]]) -> ObjectTrack:
        pts = [TrackPoint(t=t0 + i, box=b, score=0.9) for i, b in enumerate(boxes)]
        return ObjectTrack(id=oid, label=oid.split("#")[0], first_seen=t0, last_seen=t1,
                           source="detect", trajectory=pts)  # fmt: skip

    ctx = VideoContext(
        video=info,
        objects=[
            track("person#1", 0.0, 2.0, [(10, 10, 60, 100), (20, 10, 120, 200), (0, 0, 40, 40)]),
            track("person#2", 3.0, 4.0, [(100, 50, 200, 150), (110, 50, 210, 150)]),
            track("car#1", 1.0, 1.0, [(5, 5, 10, 10)]),  # too small to describe
        ],
    )
    p = RegionCaptionPerceiver({"model": str(tiny_git), "max_new_tokens": 5})
    events = list(p.perceive(ListMedia(info, slow=frames, context=ctx)))
    by_id = {e.objects[0]: e for e in events}
    assert set(by_id) == {"person#1", "person#2"}
    one = by_id["person#1"]
    assert one.kind == "object_description" and (one.start, one.end) == (0.0, 2.0)
    assert one.data["crop_t"] == 1.0 and one.data["box"] == "20.0,10.0,120.0,200.0"  # largest
    assert by_id["person#2"].start == 3.0 and by_id["person#2"].text


@pytest.mark.slow
def test_prompt_is_not_echoed(tiny_captioner) -> None:
    from vidchat.perceivers.caption import Captioner, CaptionOptions

    prompt = "a person"
    c = Captioner(str(tiny_captioner), CaptionOptions(prompt=prompt, max_new_tokens=4))
    assert c.prompt == prompt and not c.chat
    image = (np.random.default_rng(0).random((40, 50, 3)) * 255).astype(np.uint8)
    (text,) = c.caption([image])
    assert text and not text.startswith(prompt) and len(text.split()) <= 4


@pytest.mark.slow
def test_chat_template_processor_gets_a_user_turn(tiny_git, tmp_path) -> None:
    import shutil

    from vidchat.perceivers.caption import Captioner, CaptionOptions

    T = import_transformers()
    folder = tmp_path / "chat"
    shutil.copytree(tiny_git, folder)
    processor = T.AutoProcessor.from_pretrained(folder)
    # A minimal chat template: the user's text parts (a real VLM's template adds roles/images).
    processor.chat_template = (
        "{% for m in messages %}{% for c in m['content'] %}{% if c['type'] == 'text' %}"
        "{{ m['role'] }}: {{ c['text'] }}{% endif %}{% endfor %}{% endfor %}"
    )
    processor.save_pretrained(folder)
    c = Captioner(str(folder), CaptionOptions(max_new_tokens=3))
    assert c.chat and c.prompt == "Describe this image in one sentence."
    assert c._text_input() == "user: Describe this image in one sentence."
    image = (np.random.default_rng(0).random((40, 50, 3)) * 255).astype(np.uint8)
    (text,) = c.caption([image])
    assert len(text.split()) <= 3 and "describe" not in text.lower()
