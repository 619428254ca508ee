"""The web app trusts no client choice: LLMs and profiles by name only, Host allowlist, security
headers, uploads limited and cleaned up, no server paths in what a client reads.

A real server (uvicorn in a thread, loopback) with the toy perceivers; a loopback listener
proves that no client-supplied URL makes the server connect anywhere.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from vidchat import perceivers
from vidchat.apps.webapp import (
    AppConfig,
    create_app,
    host_allowed,
    parse_llm_choice,
    public_message,
)
from vidchat.kernel.errors import ConfigError
from vidchat.kernel.record import Event
from vidchat.perceivers.base import Perceiver
from vidchat.pipeline.profiles import load_profile
from vidchat.testing import videos


class PathyPerceiver(Perceiver):
    """Fails with a message that holds absolute server paths (as library errors do)."""

    name = "pathy"
    version = "1"
    inputs = frozenset({"fast"})

    def perceive(self, media):  # type: ignore[no-untyped-def]
        for _ in media.frames("fast"):
            pass
        raise RuntimeError("cannot load /srv/models/secret/weights.pt (see /var/log/x.log)")
        yield Event(start=0, end=0, kind="never", text="", source=self.name)


class Listener:
    """A loopback TCP listener that counts connections (and reads what arrives)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.sock.close()


@pytest.fixture(scope="module")
def listener():
    lis = Listener()
    yield lis
    lis.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory, listener):
    import uvicorn

    d = tmp_path_factory.mktemp("profiles")
    toy = d / "toy.yaml"
    toy.write_text("name: toy\nperceivers:\n  pathy: null\nsampling: {fast_fps: 2.0}\n")
    perceivers.register_perceiver("pathy", PathyPerceiver)
    load_profile(str(toy))
    work = tmp_path_factory.mktemp("web")
    cfg = AppConfig(
        profiles=[str(toy)],
        max_upload_mb=1,
        max_duration_s=1.5,
        max_pixels=200 * 120,
        work_dir=work,
        llm_choices=["local", f"lab=http://127.0.0.1:{listener.port}/v1@m"],
        allowed_hosts=["127.0.0.1", "localhost", "::1", "vidchat.lan"],
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(
        uvicorn.Config(create_app(cfg), host="127.0.0.1", port=port, log_level="critical")
    )
    t = threading.Thread(target=srv.run, daemon=True)
    t.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", port, work
    srv.should_exit = True
    t.join(10)


def req(url, method="GET", data=None, **headers):  # type: ignore[no-untyped-def]
    r = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(r, timeout=30) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def post(url, body):  # type: ignore[no-untyped-def]
    data = json.dumps(body).encode()
    code, _, raw = req(url, "POST", data, **{"Content-Type": "application/json"})
    return code, json.loads(raw or b"null")


def raw_get(port: int, path: str, host: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.putrequest("GET", path, skip_host=True)
    conn.putheader("Host", host)
    conn.endheaders()
    r = conn.getresponse()
    body = r.read()
    conn.close()
    return r.status, body


def wait_job(base: str, job: str) -> dict:
    deadline = time.monotonic() + 60
    while True:
        _, _, raw = req(f"{base}/api/jobs/{job}")
        s = json.loads(raw)
        if s["state"] in ("ready", "error"):
            return s
        assert time.monotonic() < deadline, s
        time.sleep(0.1)


# --------------------------------------------------------------------------- Host allowlist


def test_host_header_allowlist(server):
    _, port, _ = server
    for host in (f"127.0.0.1:{port}", "localhost", f"[::1]:{port}", "vidchat.lan:80"):
        status, _ = raw_get(port, "/api/config", host)
        assert status == 200, host
    for host in ("evil.example", f"evil.example:{port}", "127.0.0.1.evil.example", ""):
        status, body = raw_get(port, "/api/config", host)
        assert status in (400, 421), host  # 400: the HTTP layer refuses an empty Host
        if status == 421:
            assert b"host name is not allowed" in body


def test_other_sites_pages_cannot_post(server):
    base, _, _ = server
    body = json.dumps({"name": "bikes", "profile": "toy"}).encode()
    for origin in ("http://evil.example", "null", "https://127.0.0.1.evil.example"):
        status, _, raw = req(f"{base}/api/sample", "POST", body, Origin=origin,
                             **{"Content-Type": "application/json"})  # fmt: skip
        assert status == 403 and b"another site" in raw, origin
    status, _, _ = req(f"{base}/api/sample", "POST", body, Origin=base,
                       **{"Content-Type": "application/json"})  # fmt: skip
    assert status == 200  # the page itself


def test_host_matching_rules():
    allowed = ["localhost", "127.0.0.1", "::1"]
    assert host_allowed("LOCALHOST:7860", allowed) and host_allowed("[::1]:1", allowed)
    assert host_allowed("localhost.", allowed)
    assert not host_allowed(None, allowed) and not host_allowed("localhost.evil", allowed)
    assert host_allowed("anything", ["*"])


# --------------------------------------------------------------------------------- headers


def test_security_headers_on_every_response(server):
    base, _, _ = server
    for path in ("/", "/api/config", "/static/app.js", "/api/jobs/nope"):
        _, headers, _ = req(base + path)
        h = {k.lower(): v for k, v in headers.items()}
        assert h["x-content-type-options"] == "nosniff", path
        assert h["x-frame-options"] == "DENY", path
        csp = h["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp, path
        assert "unsafe-inline" not in csp.split("script-src")[1].split(";")[0], path
    _, headers, _ = req(base + "/api/jobs/nope/timeline.html")
    csp = {k.lower(): v for k, v in headers.items()}["content-security-policy"]
    assert csp.startswith("sandbox allow-scripts;")  # plotly page: no access to the API


# ------------------------------------------------------------------- choices by name only


def test_config_offers_names_only(server, listener):
    base, _, _ = server
    _, _, raw = req(base + "/api/config")
    cfg = json.loads(raw)
    assert cfg["llms"] == ["local", "lab"] and cfg["profiles"] == ["toy"]
    assert str(listener.port) not in raw.decode()  # the endpoint's URL stays on the server
    assert cfg["max_duration_s"] == 1.5 and cfg["max_pixels"] == 24000


@pytest.mark.parametrize(
    "llm",
    [
        "http://127.0.0.1:{port}/v1@x",
        "openai-compatible:http://127.0.0.1:{port}/v1",
        "openai:gpt-4o-mini",
        "local:/etc/passwd",
        "local:/nonexistent/model.gguf",
    ],
)
def test_client_chosen_urls_and_paths_are_refused_and_never_contacted(server, listener, llm):
    base, _, _ = server
    before = listener.connections
    llm = llm.format(port=listener.port)
    code, body = post(f"{base}/api/sample", {"name": "bikes", "profile": "toy", "llm": llm})
    # the same answer whether a path exists or not: nothing is learnt about the server's files
    assert code == 400 and body["error"] == f"unknown LLM {llm!r}; this server offers: local, lab"
    status, _, raw = req(f"{base}/api/upload?name=a.mp4&profile=toy&llm={llm}", "PUT", b"x")
    assert status == 400 and b"unknown LLM" in raw
    time.sleep(0.3)
    assert listener.connections == before


def test_profile_paths_are_refused(server):
    base, _, _ = server
    for profile in ("/etc/passwd", "../profiles/offline.yaml", "offline"):
        code, body = post(f"{base}/api/sample", {"name": "bikes", "profile": profile})
        assert code == 400 and "unknown profile" in body["error"] and "choose one of: toy" in (
            body["error"]
        ), body


def test_ask_with_a_url_is_refused_before_any_connection(server, listener, tmp_path):
    base, _, _ = server
    clip = videos.named(tmp_path, "spaces_quotes")  # 1 s, 160x96: inside the limits
    status, _, raw = req(f"{base}/api/upload?name=clip.mp4&profile=toy", "PUT", clip.read_bytes())
    assert status == 200, raw
    job = json.loads(raw)["job"]
    s = wait_job(base, job)
    assert s["state"] == "ready" and s["llm"] == "local" and s["profile"] == "toy"
    before = listener.connections
    code, _, raw = req(
        f"{base}/api/jobs/{job}/ask",
        "POST",
        json.dumps({"question": "hi", "llm": f"http://127.0.0.1:{listener.port}/v1@m"}).encode(),
        **{"Content-Type": "application/json"},
    )
    assert code == 400 and b"unknown LLM" in raw
    time.sleep(0.3)
    assert listener.connections == before
    # The record's failure reason reaches the client without the server's paths.
    reason = next(p for p in s["provenance"] if p["name"] == "pathy")["reason"]
    assert "weights.pt" in reason and "/srv" not in reason and "/var/log" not in reason


# ------------------------------------------------------------------------------- uploads


def test_upload_limits_each_say_which(server, tmp_path):
    base, _, _ = server
    long = videos.no_audio(tmp_path)  # 2 s > 1.5 s
    status, _, raw = req(f"{base}/api/upload?name=long.mp4&profile=toy", "PUT", long.read_bytes())
    msg = json.loads(raw)["error"]
    assert status == 400 and "long.mp4 is 0.0 min long" in msg and "up to 0.025 min" in msg
    big = videos.odd_size(tmp_path)  # 333x199 > 24000 pixels
    status, _, raw = req(f"{base}/api/upload?name=big.mp4&profile=toy", "PUT", big.read_bytes())
    msg = json.loads(raw)["error"]
    assert status == 400 and "333x199" in msg and "megapixels" in msg
    assert "/" not in msg.split("accepts")[0]  # no server path


def test_aborted_and_refused_uploads_leave_nothing(server, tmp_path, caplog):
    import logging

    caplog.set_level(logging.INFO, logger="vidchat.webapp")
    base, port, work = server

    def job_folders() -> set[str]:
        return {p.name for p in Path(work).iterdir() if p.is_dir()}

    before = job_folders()
    # Aborted: the client promises 900 kB, sends 100 kB and hangs up.
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(
        b"PUT /api/upload?name=cut.mp4&profile=toy HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Length: 900000\r\n\r\n" + b"\0" * 100_000
    )
    time.sleep(0.5)
    s.close()
    # Refused after the bytes arrived: not a video.
    status, _, raw = req(f"{base}/api/upload?name=t.mp4&profile=toy", "PUT", b"text " * 1000)
    assert status == 400 and b"not a usable video" in raw and b"/" not in json.loads(raw)[
        "error"
    ].encode().split(b"video:")[0]
    deadline = time.monotonic() + 10
    while job_folders() - before:
        assert time.monotonic() < deadline, job_folders() - before
        time.sleep(0.1)
    deadline = time.monotonic() + 5
    while not any("aborted by the client" in r.getMessage() for r in caplog.records):
        assert time.monotonic() < deadline, [r.getMessage() for r in caplog.records]
        time.sleep(0.1)
    assert not [r for r in caplog.records if r.exc_info]  # said in one line, no traceback


# ---------------------------------------------------------------------------- messages


def test_public_message_drops_server_paths():
    msg = "/srv/up/abc/clip.mp4: not a readable video (/usr/lib/x86_64/libfoo.so: bad)"
    assert public_message(msg) == "clip.mp4: not a readable video (libfoo.so: bad)"
    assert public_message("see https://example.com/a/b and 3/4") == (
        "see https://example.com/a/b and 3/4"
    )


# ------------------------------------------------------------------------- operator choices


def test_llm_choice_names():
    assert parse_llm_choice("local") == ("local", "local")
    assert parse_llm_choice("local:qwen1.5b") == ("local:qwen1.5b", "local:qwen1.5b")
    assert parse_llm_choice("lab=http://10.0.0.5:8000/v1@qwen") == (
        "lab",
        "http://10.0.0.5:8000/v1@qwen",
    )
    for bad in ("http://10.0.0.5:8000/v1", "local:/models/x.gguf", "a b=local", "x="):
        with pytest.raises(ConfigError):
            parse_llm_choice(bad)


def test_serve_command_takes_the_operators_lists():
    import argparse

    from vidchat.cli.serve import add_commands

    parser = argparse.ArgumentParser(prog="vidchat")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["serve", "--llm", "http://127.0.0.1:9/v1"])
    with pytest.raises(ConfigError, match="NAME=SPEC"):
        args.func(args)
    args = parser.parse_args(["serve", "--max-megapixels", "0"])
    with pytest.raises(ConfigError, match="--max-megapixels must be positive"):
        args.func(args)
