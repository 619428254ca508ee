"""``vidchat mcp``: the SDK's own client talks to the server over stdio (a real subprocess) and
in process; the answers come from a loopback OpenAI-compatible server that reads the record in
its prompt, so a right answer proves the record reached the model through `ask`.

The clip is generated: three plain colours, two seconds each, so the ``shots`` perceiver (real
PySceneDetect) finds cuts at 00:02 and 00:04.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import anyio
import pytest

pytest.importorskip("mcp")

from mcp import Client
from mcp.client.stdio import StdioServerParameters

from vidchat import perceivers
from vidchat.apps.mcp_server import VideoTools, build_server

ROOT = Path(__file__).resolve().parents[2]
TOOLS = {"textualize", "ask", "search", "window", "object", "frame", "zoom"}
CUT_RE = re.compile(r"(\d\d:\d\d) shot cut")


# ------------------------------------------------------------------------------ a reading LLM


def _answer_from(messages: list[dict]) -> str:
    """What a careful reader of the record answers: the cuts the record lists, with times."""
    text = "\n".join(str(m.get("content") or "") for m in messages)
    question = str(messages[-1].get("content") or "").lower()
    cuts = sorted(set(CUT_RE.findall(text)))
    if "cut" in question:
        times = " and ".join(f"[{t}]" for t in cuts)
        return f"There are {len(cuts)} shot cuts, at {times}." if cuts else "No shot cuts."
    return "The record does not say."


class ReadingLLM:
    """An OpenAI-compatible chat server on 127.0.0.1 (streamed and plain) answering with
    `_answer_from`; it records every request."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _send(self, status: int, body: bytes, ctype: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                models = {"object": "list", "data": [{"id": "reader", "object": "model"}]}
                self._send(200, json.dumps(models).encode(), "application/json")

            def do_POST(self) -> None:
                req = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append(req)
                text = _answer_from(req["messages"])
                base = {"id": "c1", "created": int(time.time()), "model": "reader"}
                usage = {"prompt_tokens": 100, "completion_tokens": 12, "total_tokens": 112}
                if not req.get("stream"):
                    body = {
                        **base,
                        "object": "chat.completion",
                        "usage": usage,
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": text},
                                "finish_reason": "stop",
                            }
                        ],
                    }
                    self._send(200, json.dumps(body).encode(), "application/json")
                    return
                chunks = [
                    {
                        **base,
                        "object": "chat.completion.chunk",
                        "choices": [
                            {
                                "index": 0,
                                "delta": {"role": "assistant", "content": w},
                                "finish_reason": None,
                            }
                        ],
                    }
                    for w in re.findall(r"\S+\s*", text)
                ]
                chunks.append(
                    {
                        **base,
                        "object": "chat.completion.chunk",
                        "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                    }
                )
                chunks.append(
                    {**base, "object": "chat.completion.chunk", "choices": [], "usage": usage}
                )
                body = b"".join(f"data: {json.dumps(c)}\n\n".encode() for c in chunks)
                self._send(200, body + b"data: [DONE]\n\n", "text/event-stream")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> ReadingLLM:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


# --------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def cuts_video(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("mcp") / "three colours.mp4"
    src = ";".join(
        f"color={c}:s=160x96:r=10:d=2[v{i}]" for i, c in enumerate(("red", "green", "blue"))
    )
    subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-y",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            f"{src};[v0][v1][v2]concat=n=3:v=1:a=0",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            str(path),
        ],
        check=True,
    )
    return path


@pytest.fixture(scope="module")
def shots_profile(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("mcp-profile") / "cuts.yaml"
    p.write_text("name: cuts\nperceivers:\n  shots: {detector: content}\n")
    return p


@contextmanager
def _env(**kw: str) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in kw}
    os.environ.update(kw)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _text(result) -> str:
    return "\n".join(c.text for c in result.content if getattr(c, "type", "") == "text")


def _data(result) -> dict:
    if result.structured_content is not None:
        sc = result.structured_content
        return sc.get("result", sc) if isinstance(sc, dict) and set(sc) == {"result"} else sc
    return json.loads(_text(result))


# ------------------------------------------------------------------------------------ stdio


def test_stdio_client_lists_tools_and_ask_answers_from_the_clip(
    cuts_video, shots_profile, tmp_path
):
    notvideo = tmp_path / "notes.mp4"
    notvideo.write_text("this is not a video\n")

    async def session(llm_url: str) -> dict:
        params = StdioServerParameters(
            command=sys.executable,
            args=[
                "-m",
                "vidchat.cli.main",
                "mcp",
                "--profile",
                str(shots_profile),
                "--llm",
                f"openai-compatible:{llm_url}@reader",
            ],
            cwd=str(ROOT),
            env={
                "PYTHONPATH": str(ROOT),
                "VIDCHAT_CACHE": str(tmp_path / "cache"),
                "HF_HUB_OFFLINE": "1",
            },
        )
        out: dict = {}
        with anyio.fail_after(240):
            async with Client(params) as client:
                tools = (await client.list_tools()).tools
                out["tools"] = {t.name: t for t in tools}
                video = str(cuts_video)
                out["textualize"] = await client.call_tool("textualize", {"video": video})
                out["ask"] = await client.call_tool(
                    "ask", {"video": video, "question": "How many shot cuts are there, and when?"}
                )
                out["missing"] = await client.call_tool(
                    "ask", {"video": str(tmp_path / "nope.mp4"), "question": "what?"}
                )
                out["notvideo"] = await client.call_tool("textualize", {"video": str(notvideo)})
                out["backwards"] = await client.call_tool(
                    "window", {"video": video, "start": 5, "end": 3}
                )
                out["past_end"] = await client.call_tool("frame", {"video": video, "time": 60})
                out["negative"] = await client.call_tool(
                    "window", {"video": video, "start": -1, "end": 3}
                )
                out["window"] = await client.call_tool(
                    "window", {"video": video, "start": 1, "end": 5}
                )
                out["frame"] = await client.call_tool("frame", {"video": video, "time": 3.0})
                out["again"] = await client.call_tool(
                    "ask", {"video": video, "question": "When are the shot cuts?"}
                )
                out["resources"] = (await client.list_resources()).resources
                rid = _data(out["textualize"])["record_id"]
                out["record"] = await client.read_resource(f"vidchat://records/{rid}")
        return out

    with ReadingLLM() as llm:
        out = anyio.run(session, llm.url)

    tools = out["tools"]
    assert set(tools) == TOOLS
    for name, tool in tools.items():
        schema = tool.input_schema
        assert schema["type"] == "object" and "video" in schema["properties"], name
        assert "video" in schema["required"] and len(tool.description or "") > 80, name
    assert set(tools["zoom"].input_schema["required"]) == {"video", "start", "end"}
    assert tools["window"].input_schema["properties"]["start"]["minimum"] == 0

    info = _data(out["textualize"])
    assert not out["textualize"].is_error and info["perceivers"] == {"shots": "ok"}
    assert abs(info["duration_s"] - 6.0) < 0.2 and info["events"] == 2

    answer = _data(out["ask"])
    assert not out["ask"].is_error
    assert answer["text"] == "There are 2 shot cuts, at [00:02] and [00:04]."
    assert [c["start"] for c in answer["citations"]] == [2.0, 4.0]
    assert all(c["in_video"] for c in answer["citations"])
    assert _data(out["again"])["text"].startswith("There are 2 shot cuts")

    for key, needle in [
        ("missing", "no such file"),
        ("notvideo", "not a readable video"),
        ("backwards", "end (3) must be after start (5)"),
        ("past_end", "past the end of the video"),
        (
            "negative",
            "window: invalid arguments: start: Input should be greater than or equal to 0 (got -1)",
        ),
    ]:
        res = out[key]
        assert res.is_error, key
        msg = _text(res)
        assert needle in msg and "\n" not in msg.strip() and "Traceback" not in msg, (key, msg)

    assert "00:02 shot cut" in _data(out["window"])["text"]
    (img,) = out["frame"].content
    assert img.type == "image" and img.mime_type == "image/jpeg"
    assert base64.b64decode(img.data)[:2] == b"\xff\xd8"
    uris = {str(r.uri) for r in out["resources"]}
    assert {f"vidchat://records/{info['record_id']}", "vidchat://records"} <= uris
    record = json.loads(out["record"].contents[0].text)
    assert [e["kind"] for e in record["events"]] == ["shot", "shot"]


# ------------------------------------------------------------------------------- in process


def test_in_process_zoom_search_and_object(tmp_path, monkeypatch):
    """The zoom tool merges into the record the other tools read (toy tracker, no models)."""
    from tests.pipeline.test_zoom import Squares

    monkeypatch.setenv("VIDCHAT_CACHE", str(tmp_path / "cache"))
    perceivers.register_perceiver("squares", Squares)
    video = tmp_path / "squares.mp4"
    vf = (
        "color=black:s=320x240:r=10:d=10[bg];color=white:s=40x40:r=10:d=10[sq];"
        "[bg][sq]overlay=x='20+25*t':y=100,"
        "drawbox=x=250:y=20:w=40:h=40:color=white:t=fill:enable='between(t,4.3,4.75)'"
    )
    subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-y",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            vf,
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            str(video),
        ],
        check=True,
    )
    prof = tmp_path / "sq.yaml"
    prof.write_text("name: sq\nperceivers: {squares: null}\nsampling: {fast_fps: 1.0}\n")
    server = build_server(VideoTools(str(prof), "openai-compatible:http://127.0.0.1:9/v1@x"))

    async def go() -> dict:
        out = {}
        async with Client(server) as client:
            v = str(video)
            out["before"] = await client.call_tool("window", {"video": v, "start": 4, "end": 5})
            out["zoom"] = await client.call_tool(
                "zoom", {"video": v, "start": 3, "end": 6, "perceivers": ["squares"], "fps": 10}
            )
            out["object"] = await client.call_tool("object", {"video": v, "id": "square#2"})
            out["unknown"] = await client.call_tool("object", {"video": v, "id": "cat#1"})
            out["bad_zoom"] = await client.call_tool(
                "zoom", {"video": v, "start": 3, "end": 60, "fps": 100}
            )
            out["search"] = await client.call_tool("search", {"video": v, "text": "square#2"})
        return out

    out = anyio.run(go)
    assert "square#2" not in _data(out["before"])["objects"]
    z = _data(out["zoom"])
    assert not out["zoom"].is_error, _text(out["zoom"])
    assert z["zoom"]["objects_added"] == ["square#2"] and "square#2" in z["window_text"]
    obj = _data(out["object"])
    assert obj["label"] == "square" and 4.2 <= obj["first_seen"] <= 4.45
    assert obj["attributes"]["found_by"] == "zoom zoom1"
    assert out["unknown"].is_error and "no object 'cat#1'" in _text(out["unknown"])
    assert out["bad_zoom"].is_error and "less than or equal to 30" in _text(out["bad_zoom"])
    hits = _data(out["search"])["hits"]
    assert hits and hits[0]["match"] == "exact" and any("square#2" in ln for ln in hits[0]["lines"])


# ------------------------------------------------------------------------------------- HTTP


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_streamable_http_on_loopback(tmp_path):
    import socket

    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "VIDCHAT_CACHE": str(tmp_path / "cache")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "vidchat.cli.main", "mcp", "--http", "--port", str(port)],
        cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.2)

        async def go():
            with anyio.fail_after(60):
                async with Client(f"http://127.0.0.1:{port}/mcp") as client:
                    names = {t.name for t in (await client.list_tools()).tools}
                    bad = await client.call_tool("textualize", {"video": str(tmp_path / "x.mp4")})
                    return names, bad

        names, bad = anyio.run(go)
        assert names == TOOLS
        # DNS rebinding: a page on another host name that resolves to 127.0.0.1 is refused.
        import http.client

        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("POST", "/mcp", body=b"{}", headers={
            "Host": "evil.example", "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream"})  # fmt: skip
        assert conn.getresponse().status in (400, 403, 421)
        conn.close()
        assert bad.is_error and "no such file" in _text(bad)
        assert proc.poll() is None  # a bad call does not end the server
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_window_lines_are_cut_to_the_range():
    from tests.conversation.chat_helpers import small_record
    from vidchat.apps.mcp_server import lines_between
    from vidchat.text.render import render

    windows = render(small_record()).windows  # 10 s windows
    lines = lines_between(windows, 18, 25)
    assert any('"Look, the fountain is running again."' in ln for ln in lines)  # 00:20–00:24
    assert not any("Good morning" in ln for ln in lines)  # 00:03, same record, outside
    assert not any(ln.startswith("visible:") for ln in lines)


def test_object_tool_reports_track_masks_without_their_counts(tmp_path):
    """A record of schema 1.1 (sam2's masks as events) read by the object tool: the masks are on
    the track (upgraded on reading), shown as their share of the frame, not as run lengths."""
    import numpy as np

    from tests.media import video_info
    from vidchat.apps.mcp_server import VideoTools
    from vidchat.kernel.record import RLE, ObjectTrack, TrackPoint, VideoContext

    ctx = VideoContext(
        video=video_info(width=320, height=240),
        objects=[
            ObjectTrack(id="person#1", label="person", first_seen=1, last_seen=2, source="detect",
                        trajectory=[TrackPoint(t=1, box=(0, 0, 40, 80), score=0.9),
                                    TrackPoint(t=2, box=(40, 0, 80, 80), score=0.8)])
        ],
    )  # fmt: skip
    data = json.loads(ctx.to_json())
    data["schema_version"] = "1.1"
    mask = np.zeros((6, 8), bool)
    mask[0:3, 0:2] = True  # an eighth of the fast frame
    data["events"] = [
        {"start": 1.0, "end": 1.0, "kind": "mask", "text": "person#1 mask", "source": "sam2",
         "objects": ["person#1"], "data": {"rle": json.dumps(RLE.from_mask(mask).counts),
                                           "height": 6, "width": 8}},
    ]  # fmt: skip
    path = tmp_path / "old.json"
    path.write_text(json.dumps(data))
    obj = VideoTools("offline", "openai-compatible:http://127.0.0.1:9/v1@x").object(
        str(path), "person#1"
    )
    assert [p.get("mask_area") for p in obj["trajectory"]] == [0.125, None]
    assert "counts" not in json.dumps(obj) and obj["events"] == []
