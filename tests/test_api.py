"""The public Python API (``import vidchat``), end to end on small generated clips with the toy
perceivers and scripted LLMs (a langchain chat model, an OpenAI-shaped loopback server): each
entry point with the strings the command line accepts (profile names and YAML paths, ``--llm``
flags), and the errors a user gets for bad ones."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import vidchat
from tests.conversation.chat_helpers import ScriptedChatModel
from tests.llm.llm_servers import ScriptedServer, Stream
from vidchat.kernel.errors import ConfigError, InputError
from vidchat.kernel.llm_config import LLMConfig
from vidchat.kernel.record import RLE, Event, ObjectTrack
from vidchat.perceivers.base import Media, Perceiver
from vidchat.pipeline import events as ev
from vidchat.testing import toys as toy_perceivers
from vidchat.testing import videos

TOY_YAML = """\
name: toy
description: toy perceivers (no models)
sampling: {slow_fps: 1.0, fast_fps: 4.0}
perceivers:
  brightness: {}
  counter: {}
  marker: {}
render: {budget_tokens: 2000}
llm: {backend: openai-compatible, base_url: "http://127.0.0.1:9/v1", model: from-profile}
"""


@pytest.fixture
def profile_yaml(tmp_path) -> str:
    path = tmp_path / "toy.yaml"
    path.write_text(TOY_YAML)
    return str(path)


@pytest.fixture
def clip(tmp_path) -> Path:
    return videos.no_audio(tmp_path)  # 160x96, 2 s, 10 fps


def test_import_is_light_and_names_the_api():
    code = (
        "import sys, vidchat; heavy = ('torch', 'cv2', 'langchain_core', 'rich', 'openai', "
        "'transformers', 'fastapi'); print([m for m in heavy if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr  # models load only when used
    for name in ("textualize", "open", "chat", "batch", "zoom", "render", "register_perceiver"):
        assert callable(getattr(vidchat, name)), name
        assert getattr(vidchat, name).__doc__, f"vidchat.{name} has no docstring"
    assert set(vidchat.__all__) >= {"Pipeline", "VideoContext", "load_profile", "plan_levels"}


def test_textualize_with_a_profile_path_object_or_name(toys, cache_dir, clip, profile_yaml):
    seen: list[ev.PipelineEvent] = []
    ctx = vidchat.textualize(clip, profile=profile_yaml, on_event=seen.append)
    assert isinstance(ctx, vidchat.VideoContext) and ctx.profile == "toy"
    assert [p.status for p in ctx.provenance] == ["ok", "ok", "ok"]
    assert [o.id for o in ctx.objects] == ["spot#1", "spot#2"]  # one per slow frame
    assert isinstance(seen[0], ev.Probed) and isinstance(seen[-1], ev.Done)
    # A Profile object, and the cache: the same results, served without running.
    prof = vidchat.load_profile(profile_yaml)
    again = vidchat.textualize(clip, prof)
    assert all(p.cached for p in again.provenance) and again.events == ctx.events
    # A built-in profile by name: its plan, without running anything.
    assert vidchat.Pipeline("offline").plan[0][0] in vidchat.load_profile("offline").perceivers
    with pytest.raises(ConfigError, match=r"unknown profile 'nope'; built-in profiles: .*offline"):
        vidchat.textualize(clip, profile="nope")
    with pytest.raises(InputError, match=r"not a usable video|no such file"):
        vidchat.textualize(Path(profile_yaml).with_name("missing.mp4"), profile=profile_yaml)


def test_pipeline_object_runs_many_videos_with_events(toys, cache_dir, tmp_path, profile_yaml):
    pipe = vidchat.Pipeline(profile_yaml, cache=False)
    assert pipe.plan == [["brightness"], ["counter", "marker"]]
    assert vidchat.plan_levels(pipe.perceivers) == pipe.plan
    done: list[float] = []

    def on_event(e: ev.PipelineEvent) -> None:
        if isinstance(e, ev.Done):
            done.append(e.record.video.duration)

    for make in (videos.no_audio, videos.single_frame):
        pipe.run(make(tmp_path), on_event=on_event)
    assert len(done) == 2 and done[0] == pytest.approx(2.0, abs=0.1)


def test_open_a_record_or_a_video(toys, cache_dir, clip, profile_yaml, tmp_path):
    ctx = vidchat.open(clip, profile_yaml)
    path = ctx.save(tmp_path / "record.json")
    assert vidchat.open(path) == ctx
    assert vidchat.open(str(path)) == ctx  # str or Path
    assert all(p.cached for p in vidchat.open(clip, profile_yaml).provenance)
    with pytest.raises(InputError, match="no such file"):
        vidchat.open(tmp_path / "gone.json")
    (tmp_path / "bad.json").write_text('{"video": {"path": 3}}')
    with pytest.raises(InputError, match="not a valid vidchat record"):
        vidchat.open(tmp_path / "bad.json")
    # A record of schema 1.1 with a sam2 mask event opens upgraded: the mask on the track.
    data = json.loads(ctx.to_json())
    data["schema_version"] = "1.1"
    mask = np.zeros((48, 80), bool)
    mask[10:20, 30:50] = True
    counts = RLE.from_mask(mask).counts
    data["events"].append(
        json.loads(
            Event(start=1.0, end=1.0, kind="mask", text="spot#2 mask", source="sam2",
                  objects=["spot#2"],
                  data={"rle": json.dumps(counts), "height": 48, "width": 80}).model_dump_json()
        )
    )  # fmt: skip
    (tmp_path / "old.json").write_text(json.dumps(data))
    old = vidchat.open(tmp_path / "old.json")
    assert old.schema_version == "1.2" and not [e for e in old.events if e.kind == "mask"]
    ((t, rle),) = [(p.t, p.mask) for p in old.object("spot#2").trajectory if p.mask]
    assert t == 1.0 and rle.size == (96, 160) and rle.box() == (60.0, 20.0, 100.0, 40.0)


def test_render_within_a_budget(toys, cache_dir, clip, profile_yaml):
    ctx = vidchat.textualize(clip, profile_yaml)
    full = ctx.render()
    assert "spot#1" in full.text and '"2"' in full.text and not full.over_budget
    budget = full.tokens - 30
    small = ctx.render(budget_tokens=budget)
    assert small.tokens <= budget and small.budget == budget and not small.over_budget
    assert small.dropped and "spot#1" in small.text  # timeline lines dropped, objects kept
    assert vidchat.render(ctx, budget_tokens=budget).text == small.text
    # A budget below the header and object list cannot be met: it says so, cutting nothing.
    assert ctx.render(budget_tokens=50).over_budget


def test_chat_accepts_the_clis_llm_strings(toys, cache_dir, clip, profile_yaml, tmp_path):
    ctx = vidchat.textualize(clip, profile_yaml)
    # The profile's LLM when none is named; flags as on the command line otherwise.
    assert vidchat.chat(ctx, profile=profile_yaml).config.model == "from-profile"
    cases = {
        "local": ("local", None),
        "openai:gpt-4o-mini": ("openai", "gpt-4o-mini"),
        "openai-compatible:http://127.0.0.1:9/v1@m1": ("openai-compatible", "m1"),
        "http://127.0.0.1:9/v1@m2": ("openai-compatible", "m2"),
    }
    for flag, (backend, model) in cases.items():
        config = vidchat.chat(ctx, llm=flag).config
        assert config.backend == backend, flag
        assert model is None or config.model == model, flag
    cfg = LLMConfig(backend="openai", model="gpt-4.1-nano")
    assert vidchat.chat(ctx, llm=cfg).config.model == "gpt-4.1-nano"
    with pytest.raises(ConfigError, match="expected local, local:PATH_OR_NAME, openai:MODEL"):
        vidchat.chat(ctx, llm="ftp://example.com")


def test_chat_answers_through_an_openai_compatible_server(toys, cache_dir, clip, profile_yaml):
    ctx = vidchat.textualize(clip, profile_yaml)
    reply = "The record shows two spots, at [00:00] and [00:01] (spot#1, spot#2)."
    with ScriptedServer([Stream(reply.split(" "))]) as server:
        flag = f"openai-compatible:{server.base_url}@scripted-model"
        session = vidchat.chat(ctx, llm=flag, use_facts=False)
        answer = session.ask("What is marked in this video?")
    assert answer.text.replace(" ", "") == reply.replace(" ", "")
    assert answer.objects == ["spot#1", "spot#2"]
    assert [c.start for c in answer.citations] == [0.0, 1.0]
    (request,) = [s for s in server.seen if s.path.endswith("/chat/completions")]
    assert request.body["model"] == "scripted-model"
    prompt = "\n".join(str(m["content"]) for m in request.body["messages"])
    assert "spot#2" in prompt and "What is marked in this video?" in prompt


def test_chat_on_a_video_or_saved_record_with_a_chat_model(toys, cache_dir, clip, profile_yaml):
    model = ScriptedChatModel(replies=["Two spots are marked [00:01]."] * 2)
    session = vidchat.chat(clip, llm=model, profile=profile_yaml, use_facts=False)
    assert session.ctx.profile == "toy"  # textualized with the profile given
    assert session.ask("what is marked?").text == "Two spots are marked [00:01]."
    saved = session.ctx.save(clip.with_name("rec.json"))
    again = vidchat.chat(str(saved), llm=model, use_facts=False)
    assert again.ctx == session.ctx
    assert again.ask("and then?").text == "Two spots are marked [00:01]."
    sent = "\n".join(str(m.content) for m in model.calls[-1].messages)
    assert "spot#1" in sent and "and then?" in sent  # the record, then the question


def test_batch_many_videos_resumably(toys, cache_dir, tmp_path, profile_yaml):
    folder = tmp_path / "in"
    folder.mkdir()
    videos.no_audio(folder)
    videos.single_frame(folder)
    out = tmp_path / "out"
    summary = vidchat.batch(str(folder), out, profile=profile_yaml, setup=register_toys)
    assert (summary.total, summary.ok, summary.failed) == (2, 2, 0)
    records = sorted(out.rglob("*.json"))
    names = {p.name for p in records}
    assert any("no_audio" in n for n in names) and any("single_frame" in n for n in names)
    again = vidchat.batch([folder], out, profile=profile_yaml, setup=register_toys, resume=True)
    assert again.skipped == 2 and again.ok == 0


def register_toys() -> None:
    """Each batch worker's setup (workers are fresh processes): the toys, by class."""
    for name, cls in toy_perceivers.TOYS.items():
        vidchat.register_perceiver(name, cls)


class Edges(Perceiver):
    """A perceiver defined in a notebook: one object per slow frame with strong edges."""

    name = "edges"
    version = "1"
    inputs = frozenset({"slow"})

    def perceive(self, media: Media):
        for f in media.frames("slow"):
            gray = f.image.mean(axis=2)
            strength = float(np.abs(np.diff(gray, axis=1)).mean())
            yield ObjectTrack(id=f"pattern#{f.index + 1}", label="pattern", first_seen=f.t,
                              last_seen=f.t, source=self.name,
                              attributes={"edges": round(strength, 2)})  # fmt: skip


def test_register_a_perceiver_then_zoom(cache_dir, clip, tmp_path):
    vidchat.register_perceiver("edges", Edges)
    profile = tmp_path / "edges.yaml"
    profile.write_text("name: edges\nperceivers:\n  edges: {}\nsampling: {slow_fps: 1.0}\n")
    ctx = vidchat.textualize(clip, str(profile))
    assert [o.id for o in ctx.objects] == ["pattern#1", "pattern#2"]
    assert all(float(o.attributes["edges"]) > 1 for o in ctx.objects)  # testsrc has edges
    with pytest.raises(ConfigError, match="expected a Perceiver subclass"):
        vidchat.register_perceiver("nope", dict)  # type: ignore[arg-type]
    res = vidchat.zoom(ctx, 0.0, 1.0, ["edges"], fps=5, profile=str(profile))
    assert res.run.provenance[0].status == "ok"
    assert res.context.zooms[0].perceivers == ["edges"] and not ctx.zooms  # input unchanged
