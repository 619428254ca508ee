"""Loopback HTTP servers for the LLM tests.

- `ScriptedServer`: a tiny OpenAI-shaped server (http.server in a thread) that answers each
  request with the next step of a script — an HTTP error, a hang, a malformed body, a slow SSE
  stream, a stream that stops mid-answer until the client hangs up — and records what it saw.
  It exists to inject faults the real servers cannot be made to produce on demand.
- `closed_port`: a port nothing listens on (connection refused).
- `transformers_serve`: the real ``transformers serve`` on a local model folder, as a bounded
  subprocess that is always terminated.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


@dataclass
class Reply:
    """A plain HTTP answer: status, body, extra headers."""

    status: int = 200
    body: str | bytes | dict | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Hang:
    """Accept the request and answer nothing for `seconds` (then close)."""

    seconds: float


@dataclass
class Stream:
    """A 200 SSE stream of chat-completion chunks carrying `pieces`, `delay_s` apart; with
    `hang_after`, it stops sending (without closing) after that many pieces.

    With `block_after`, it sends that many pieces and then nothing until the client closes the
    connection (counted in `ScriptedServer.disconnects`), so a test can cancel mid-answer however
    slow or busy the machine is: the answer cannot finish first. Only if no close comes within
    `block_s` does it send the rest, which the test then sees as a failure to cancel.
    """

    pieces: list[str]
    delay_s: float = 0.0
    hang_after: int | None = None
    hang_s: float = 5.0
    block_after: int | None = None
    block_s: float = 120.0


Step = Reply | Hang | Stream


def completion(text: str, model: str = "scripted") -> dict:
    """A valid non-streamed chat.completion body."""
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
    }


def _chunk(delta: dict, finish: str | None = None) -> bytes:
    body = {
        "id": "chatcmpl-test",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": "scripted",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return f"data: {json.dumps(body)}\n\n".encode()


@dataclass
class Seen:
    """One request the server received."""

    path: str
    body: dict
    authorization: str | None
    at: float


class ScriptedServer:
    """An OpenAI-shaped server on 127.0.0.1 answering request *i* with ``script[i]`` (the last
    step repeats). Use as a context manager; `base_url` ends in ``/v1``.

    `seen` lists the requests; `disconnects` counts streams the client closed early (a write
    to the socket failed) — how tests observe that cancelling closed the HTTP stream.
    """

    def __init__(self, script: list[Step]) -> None:
        if not script:
            raise ValueError("ScriptedServer needs at least one step")
        self.script = script
        self.seen: list[Seen] = []
        self.disconnects = 0
        self._lock = threading.Lock()
        self._closing = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:  # quiet test output
                pass

            def do_POST(self) -> None:
                n = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(n) if n else b""
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = {"_raw": raw.decode(errors="replace")}
                with server._lock:
                    server.seen.append(
                        Seen(self.path, body, self.headers.get("authorization"), time.monotonic())
                    )
                    step = server.script[min(len(server.seen) - 1, len(server.script) - 1)]
                try:
                    server._answer(self, step)
                except (BrokenPipeError, ConnectionResetError):
                    with server._lock:
                        server.disconnects += 1

        self._httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        """The server's ``http://127.0.0.1:PORT/v1``."""
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def _answer(self, h: BaseHTTPRequestHandler, step: Step) -> None:
        if isinstance(step, Hang):
            # Wait on an event, not sleep: closing the server releases hung handlers at once.
            self._closing.wait(step.seconds)
            h.close_connection = True
            return
        if isinstance(step, Reply):
            body = step.body
            if isinstance(body, dict):
                data = json.dumps(body).encode()
            elif isinstance(body, str):
                data = body.encode()
            else:
                data = body or b""
            h.send_response(step.status)
            if "content-type" not in {k.lower() for k in step.headers}:
                h.send_header("content-type", "application/json")
            h.send_header("content-length", str(len(data)))
            for k, v in step.headers.items():
                h.send_header(k, v)
            h.end_headers()
            h.wfile.write(data)
            return
        h.send_response(200)
        h.send_header("content-type", "text/event-stream")
        h.send_header("cache-control", "no-cache")
        h.close_connection = True  # the stream ends when the connection does
        h.end_headers()
        h.wfile.write(_chunk({"role": "assistant", "content": ""}))
        h.wfile.flush()
        for i, piece in enumerate(step.pieces):
            blocks = step.block_after is not None and i == step.block_after
            if blocks and self._client_closed_within(h, step.block_s):
                with self._lock:
                    self.disconnects += 1
                return
            if step.hang_after is not None and i >= step.hang_after:
                self._closing.wait(step.hang_s)
                return
            if step.delay_s and self._closing.wait(step.delay_s):
                return
            h.wfile.write(_chunk({"content": piece}))
            h.wfile.flush()
        h.wfile.write(_chunk({}, finish="stop"))
        h.wfile.write(b"data: [DONE]\n\n")
        h.wfile.flush()

    def _client_closed_within(self, h: BaseHTTPRequestHandler, seconds: float) -> bool:
        """Wait (without sending) until the client closes the connection: True; False when
        `seconds` pass or the server closes first."""
        sock = h.connection
        deadline = time.monotonic() + seconds
        while not self._closing.is_set() and time.monotonic() < deadline:
            if not select.select([sock], [], [], 0.1)[0]:
                continue
            try:
                if not sock.recv(1, socket.MSG_PEEK):
                    return True  # end of stream: the client hung up
            except OSError:
                return True  # reset by the client
            self._closing.wait(0.1)  # bytes from the client (never expected): keep waiting
        return False

    def __enter__(self) -> ScriptedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closing.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        # A client dropping an idle keep-alive connection is normal here, not a test failure.
        exc = sys.exc_info()[1]
        if not isinstance(exc, (ConnectionResetError, BrokenPipeError)):
            super().handle_error(request, client_address)


def closed_port() -> int:
    """A loopback port with nothing listening (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# transformers imports torchvision, whose CUDA wheel lacks its CPU ops here; the same fix the
# LLM layer applies in process must run inside the server process before transformers loads.
_SERVE_LAUNCHER = (
    "import importlib.util, sys\n"
    "if importlib.util.find_spec('torchvision') is not None:\n"
    "    from vidchat.kernel.compat import ensure_torchvision\n"
    "    ensure_torchvision()\n"
    "from transformers.cli.transformers import main\n"
    "sys.argv = ['transformers', 'serve', *sys.argv[1:]]\n"
    "sys.exit(main())\n"
)


@contextlib.contextmanager
def transformers_serve(
    folder: Path, *, ready_timeout_s: float = 180.0, log: Path | None = None
) -> Iterator[str]:
    """Run ``transformers serve FOLDER`` on a free loopback port; yield its ``/v1`` base URL.

    Readiness is a bounded poll of ``/health``; on exit (or failure) the process is terminated,
    then killed if it does not stop within 10 s. Offline: HF_HUB_OFFLINE=1.
    """
    port = closed_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    # The launcher imports `perceivers` from the repository root.
    root = Path(__file__).resolve().parents[2]
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
    out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115 - closed below
    cmd = [sys.executable, "-c", _SERVE_LAUNCHER, str(folder), "--host", "127.0.0.1"]
    proc = subprocess.Popen(
        [*cmd, "--port", str(port), "--log-level", "warning"],
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + ready_timeout_s
        while True:
            if proc.poll() is not None:
                tail = log.read_text(errors="replace")[-2000:] if log else ""
                raise RuntimeError(f"transformers serve exited with {proc.returncode}: {tail}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"transformers serve not ready within {ready_timeout_s}s")
            time.sleep(0.5)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        if log:
            out.close()  # type: ignore[union-attr]
