"""``vidchat eval`` on public benchmarks' file formats: small question files written in each
format over generated videos, run end to end (textualize with the real ``shots`` perceiver,
multiple-choice answers, blind baseline, chance, the ASR conditions).

The videos are plain colour segments of one second, so their number of shot cuts is known; the
answering model reads the record in its prompt (a careful reader, not a real LLM): it answers the
cut count from the record's "shot cut" lines and a spoken word from its speech lines, and admits
it cannot tell when the prompt has no record (the blind baseline).
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conversation.chat_helpers import ScriptedChatModel
from vidchat.apps.benchmarks import (
    condition_record,
    read_benchmark,
    read_srt,
    run_benchmark,
)
from vidchat.kernel.errors import InputError

COLOURS = ("red", "green", "blue", "yellow")
CUTS = {"one": 1, "two": 2, "three": 3}  # video name -> shot cuts
OPTIONS = ["0", "1", "2", "3"]
LETTERED = [f"{k}. {o}" for k, o in zip("ABCD", OPTIONS, strict=True)]  # Video-MME style
QUESTION = "How many shot cuts are there in the video?"


def _reader(messages) -> str:
    text = "\n".join(str(m.content) for m in messages)
    last = str(messages[-1].content)
    options = dict(re.findall(r"^\(([A-H])\) (.+)$", last, re.M))
    if "TIMELINE" not in text and "VIDEO:" not in text:
        return "I cannot tell without seeing the video."
    if "shot cuts" in last:
        n = str(len(re.findall(r"\d\d:\d\d shot cut", text)))
        return next((f"({k}) {v}" for k, v in options.items() if v == n), "none of them")
    if "word" in last:
        said = re.findall(r'speech: "([^"]+)"', text)
        for k, v in options.items():
            if any(v.lower() in s.lower() for s in said):
                return f"({k}) {v}"
        return "Nothing is said."
    return "I do not know."


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bench-clips")
    out = {}
    for name, cuts in CUTS.items():
        segs = COLOURS[: cuts + 1]
        src = ";".join(f"color={c}:s=160x96:r=10:d=1[v{i}]" for i, c in enumerate(segs))
        src += ";" + "".join(f"[v{i}]" for i in range(len(segs)))
        src += f"concat=n={len(segs)}:v=1:a=0"
        path = root / f"{name}.mp4"
        subprocess.run(
            ["ffmpeg", "-nostdin", "-y", "-loglevel", "error", "-f", "lavfi", "-i", src,
             "-c:v", "libx264", "-pix_fmt", "yuv420p", str(path)],
            check=True,
        )  # fmt: skip
        out[name] = path
    return out


@pytest.fixture
def profile(tmp_path, monkeypatch) -> str:
    monkeypatch.setenv("VIDCHAT_CACHE", str(tmp_path / "cache"))
    p = tmp_path / "cuts.yaml"
    p.write_text("name: cuts\nperceivers:\n  shots: {detector: content}\n")
    return str(p)


def _videos(tmp_path: Path, clips: dict[str, Path], names: dict[str, str]) -> Path:
    """A videos folder holding each clip under the benchmark's own file name."""
    folder = tmp_path / "videos"
    for clip, target in names.items():
        dest = folder / target
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(clips[clip], dest)
    return folder


def _run(bench, profile, **kw):
    model = ScriptedChatModel(reply_fn=_reader)
    return run_benchmark(bench, profile=profile, llm=model, **kw)


def _check(report, n: int, types: set[str]) -> None:
    text = report.conditions["asr"]
    assert report.questions == n and text.overall.n == n
    assert text.overall.accuracy == 1.0 and set(text.per_type) == types
    assert report.conditions["no_asr"].overall.accuracy == 1.0  # cuts need no speech
    assert report.blind.overall.accuracy == 0.0 and report.blind.overall.unparsed == n
    assert 0 < report.chance.overall.accuracy < 1
    table = report.text()
    assert "## asr" in table and "## no_asr" in table and "blind acc" in table
    assert "tokens per question" in table
    data = report.to_json()
    assert data["per_question"]["asr"]["seconds"] >= 0
    assert json.dumps(data)  # serializable


# -------------------------------------------------------------------------------- formats


def test_egoschema(tmp_path, clips, profile):
    videos = _videos(tmp_path, clips, {"one": "q-1.mp4", "two": "q-2.mp4", "three": "q-3.mp4"})
    rows = [
        {"q_uid": f"q-{k}", "google_drive_id": "x", "question": QUESTION,
         **{f"option {i}": o for i, o in enumerate(OPTIONS)}}
        for k in (1, 2, 3, 4)
    ]  # fmt: skip
    q = tmp_path / "questions.json"
    q.write_text(json.dumps(rows))
    answers = tmp_path / "subset_answers.json"
    answers.write_text(json.dumps({"q-1": 1, "q-2": 2, "q-3": 3, "q-4": 0}))
    bench = read_benchmark("egoschema", q, videos, answers=answers)
    assert bench.skipped == {"video not in the videos folder": 1}
    _check(_run(bench, profile), 3, {"egoschema"})
    # Without the answers file there is nothing to score: a clear error.
    with pytest.raises(InputError, match=r"no usable egoschema question .*no answer key"):
        read_benchmark("egoschema", q, videos)


def test_nextqa_csv_with_video_map(tmp_path, clips, profile):
    videos = _videos(
        tmp_path, clips, {"one": "0000/111.mp4", "two": "0000/222.mp4", "three": "0001/333.mp4"}
    )
    (videos / "map_vid_vidorID.json").write_text(
        json.dumps({"5001": "0000/111", "5002": "0000/222", "5003": "0001/333"})
    )
    q = tmp_path / "val.csv"
    with open(q, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["video", "frame_count", "width", "height", "question", "answer", "qid",
                    "type", "a0", "a1", "a2", "a3", "a4"])  # fmt: skip
        for vid, n, qtype in (("5001", 1, "DC"), ("5002", 2, "DC"), ("5003", 3, "TN")):
            w.writerow([vid, 30, 160, 96, QUESTION, n, 0, qtype, *OPTIONS, "4"])
    bench = read_benchmark("nextqa", q, videos)
    assert [i.video.name for i in bench.items] == ["111.mp4", "222.mp4", "333.mp4"]
    _check(_run(bench, profile), 3, {"DC", "TN"})


def test_videomme_with_and_without_subtitles(tmp_path, clips, profile):
    videos = _videos(tmp_path, clips, {"one": "abcDEF12345.mp4", "two": "xyzXYZ00000.mp4"})
    subs = tmp_path / "subtitle"
    subs.mkdir()
    (subs / "abcDEF12345.srt").write_text(
        "1\n00:00:00,200 --> 00:00:01,500\n<i>The password is</i> <b>banana</b>.\n\n"
        "2\n00:00:01,600 --> 00:00:01,900\nThank you.\n"
    )
    rows = [
        {"video_id": "001", "duration": "short", "domain": "Knowledge", "sub_category": "x",
         "videoID": "abcDEF12345", "question_id": "001-1", "task_type": "Counting Problem",
         "question": QUESTION, "options": LETTERED,
         "answer": "B"},
        {"video_id": "002", "duration": "short", "domain": "Knowledge", "sub_category": "x",
         "videoID": "xyzXYZ00000", "question_id": "002-1", "task_type": "Counting Problem",
         "question": QUESTION, "options": LETTERED,
         "answer": "C"},
        {"video_id": "001", "duration": "short", "domain": "Knowledge", "sub_category": "x",
         "videoID": "abcDEF12345", "question_id": "001-2", "task_type": "Speech Recognition",
         "question": "Which word is the password?",
         "options": ["A. apple", "B. banana", "C. cherry", "D. grape"], "answer": "B"},
    ]  # fmt: skip
    q = tmp_path / "videomme.jsonl"
    q.write_text("\n".join(json.dumps(r) for r in rows))
    bench = read_benchmark("videomme", q, videos, subtitles=subs)
    assert bench.items[0].choices == tuple(OPTIONS) and bench.items[0].answer_index == 1
    report = _run(bench, profile)
    assert set(report.conditions) == {"asr", "no_asr", "subtitles"}
    by = {c: r.per_type for c, r in report.conditions.items()}
    assert by["asr"]["Counting Problem"].accuracy == 1.0
    # The silent clip has no speech: only the subtitles say the word.
    assert by["asr"]["Speech Recognition"].accuracy == 0.0
    assert by["no_asr"]["Speech Recognition"].accuracy == 0.0
    assert by["subtitles"]["Speech Recognition"].accuracy == 1.0
    assert by["subtitles"]["Counting Problem"].accuracy == 1.0


def test_lvbench(tmp_path, clips, profile):
    videos = _videos(tmp_path, clips, {"one": "lv1.mp4", "three": "lv3.mp4"})
    lines = []
    for key, n in (("lv1", 1), ("lv3", 3)):
        qtext = QUESTION + "\n" + "\n".join(f"({x[0]}) {x[3:]}" for x in LETTERED)
        lines.append(json.dumps({
            "key": key, "type": "documentary",
            "qa": [{"uid": f"{key}-0", "question": qtext, "answer": "ABCD"[n],
                    "question_type": ["key information retrieval", "reasoning"],
                    "time_reference": "00:00-00:04"}],
            "video_info": {"duration_minutes": 0.1},
        }))  # fmt: skip
    q = tmp_path / "video_info.meta.jsonl"
    q.write_text("\n".join(lines) + "\n")
    bench = read_benchmark("lvbench", q, videos)
    assert bench.items[0].question == QUESTION and bench.items[0].choices == tuple(OPTIONS)
    _check(_run(bench, profile), 2, {"key information retrieval"})


def test_mvbench_folder_of_tasks(tmp_path, clips, profile):
    videos = _videos(tmp_path, clips, {"one": "star/a.mp4", "two": "star/b.mp4", "three": "c.mp4"})
    tasks = tmp_path / "json"
    tasks.mkdir()
    (tasks / "action_count.json").write_text(json.dumps([
        {"video": "star/a.mp4", "question": QUESTION, "candidates": OPTIONS, "answer": "1"},
        {"video": "b.mp4", "question": QUESTION, "candidates": OPTIONS, "answer": "2"},
    ]))  # fmt: skip
    (tasks / "scene_transition.json").write_text(json.dumps([
        {"video": "c.mp4", "question": QUESTION, "candidates": OPTIONS, "answer": "3",
         "start": 0.0, "end": 4.0},
        {"video": "missing.mp4", "question": QUESTION, "candidates": OPTIONS, "answer": "3"},
    ]))  # fmt: skip
    bench = read_benchmark("mvbench", tasks, videos)
    assert bench.skipped == {"video not in the videos folder": 1}
    assert bench.items[2].bound == (0.0, 4.0)
    _check(_run(bench, profile), 3, {"action_count", "scene_transition"})


# ------------------------------------------------------------------------------ the command


def test_vidchat_eval_command_with_a_benchmark(tmp_path, clips, profile, capsys, monkeypatch):
    from vidchat.apps import benchmarks
    from vidchat.cli.main import main

    videos = _videos(tmp_path, clips, {"two": "q-2.mp4"})
    q = tmp_path / "questions.json"
    q.write_text(json.dumps([{"q_uid": "q-2", "question": QUESTION, "answer": 2,
                              **{f"option {i}": o for i, o in enumerate(OPTIONS)}}]))  # fmt: skip
    real = benchmarks.run_benchmark

    def with_reader(bench, **kw):  # the command's LLM, swapped for the reading model
        kw["llm"] = ScriptedChatModel(reply_fn=_reader)
        return real(bench, **kw)

    monkeypatch.setattr(benchmarks, "run_benchmark", with_reader)
    out = tmp_path / "report.json"
    rc = main(["eval", str(q), "--format", "egoschema", "--videos", str(videos),
               "--profile", profile, "-o", str(out), "-q"])  # fmt: skip
    assert rc == 0
    printed = capsys.readouterr().out
    assert "egoschema: 1 questions on 1 videos" in printed and "## no_asr" in printed
    assert json.loads(out.read_text())["conditions"]["asr"]["overall"]["accuracy"] == 1.0
    assert main(["eval", str(q), "--format", "egoschema", "-q"]) == 2
    assert "needs --videos" in capsys.readouterr().err
    assert main(["eval", str(tmp_path / "nope.json"), "--format", "lvbench",
                 "--videos", str(videos)]) == 2  # fmt: skip
    assert "no such question file" in capsys.readouterr().err


# ---------------------------------------------------------------------------------- helpers


def test_srt_and_conditions(tmp_path):
    from tests.conversation.chat_helpers import small_record

    srt = tmp_path / "a.srt"
    srt.write_text("1\r\n01:02:03,450 --> 01:02:05,000\r\nHello <i>there</i>\r\nfriend\r\n\r\n")
    assert read_srt(srt) == [(3723.45, 3725.0, "Hello there friend")]
    ctx = small_record()
    assert condition_record(ctx, "asr").speech == ctx.speech
    quiet = condition_record(ctx, "no_asr")
    assert quiet.speech == [] and ctx.speech  # a copy: the input keeps its speech
    subs = condition_record(ctx, "subtitles", srt)
    assert [s.text for s in subs.speech] == ["Hello there friend"]
    assert subs.speech[0].source == "subtitles"
    with pytest.raises(InputError, match="unknown condition"):
        condition_record(ctx, "loud")
    with pytest.raises(InputError, match="unknown benchmark format 'kinetics'"):
        read_benchmark("kinetics", srt, tmp_path)
