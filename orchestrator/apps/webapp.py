"""The web app: choose or upload a video, watch it textualize, then chat with it in the browser.

FastAPI serves one small page (``apps/web/``) and a JSON API. FastAPI rather than Gradio:
the page needs a real ``<video>`` element that citations and object ids seek, a canvas overlay
that highlights the chosen object's box, and answers streamed token by token; a hand-written
page does all three in ~300 lines of plain JavaScript without fighting a component library,
works offline (no CDN, no analytics), and installs nothing beyond FastAPI and uvicorn.

State is per *job*: one video, its record and its chat session, named by a random id that only
the browser tab that created it knows (kept in the page's memory, not a cookie), so two tabs on
two videos never mix. Uploads are streamed to disk with a size limit, checked by extension and
then by ffprobe (`vidchat.kernel.video.probe`) against duration and pixel limits; a bad or aborted
upload is removed and answers one clear line, never a traceback. The server binds to loopback
unless told otherwise.

Security: the operator decides, the client chooses. LLMs and profiles are offered by NAME from
the lists given to ``vidchat serve`` (`AppConfig.llms`, `AppConfig.profiles`); a client never
sends a URL, a model path or a profile path. Requests whose Host header is not allowed
(`AppConfig.allowed_hosts`, loopback names by default) are refused, which stops a DNS-rebinding
page from driving the API. Every response carries ``X-Content-Type-Options: nosniff``, a frame
ban and a Content-Security-Policy the page works under; messages to the client name the user's
file, never a server path.

API (all JSON unless noted):

- ``GET /api/config``: profiles, LLM choices, samples, upload limit.
- ``PUT /api/upload?name=FILE&profile=P&llm=L`` (raw file body) and
  ``POST /api/sample {name, profile, llm}``: start a job -> ``{job}``.
- ``GET /api/jobs/{job}``: progress, then the record's summary (objects with trajectories).
- ``GET /api/jobs/{job}/video`` (the video, range requests), ``/timeline.png``,
  ``/timeline.html`` (plotly), ``/annotated.mp4`` (drawn on first request), ``/speech.vtt``.
- ``POST /api/jobs/{job}/ask {question, llm}``: the answer as NDJSON lines ``{"delta": …}``,
  then ``{"answer": …}`` (or ``{"error": …}``).
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

# Imported at module level (not lazily like other heavy libraries): FastAPI resolves the route
# functions' annotations from this module's globals. Only `vidchat serve` imports this module.
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from starlette.requests import ClientDisconnect

from vidchat.kernel.errors import InputError, VidchatError

if TYPE_CHECKING:
    from vidchat.conversation.session import ChatSession
    from vidchat.kernel.record import VideoContext, VideoInfo
    from vidchat.pipeline.core import Pipeline
    from vidchat.pipeline.events import PipelineEvent

log = logging.getLogger("vidchat.webapp")

__all__ = ["ALLOWED_SUFFIXES", "AppConfig", "Job", "create_app", "serve", "to_webvtt"]

WEB_DIR = Path(__file__).with_name("web")
ALLOWED_SUFFIXES = frozenset(
    {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".ogv"}
)
# What Chromium plays natively; anything else is transcoded once for the player.
_PLAYABLE = {("mp4", "h264"), ("mov", "h264"), ("webm", "vp8"), ("webm", "vp9"), ("mp4", "av1")}
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
MAX_UPLOAD_MB = 500.0
MAX_DURATION_S = 3600.0  # an hour of video: perception time grows with length
MAX_PIXELS = 3840 * 2160  # 4K UHD: larger frames cost memory and a slow player transcode

# --------------------------------------------------------------------------- LLM choices
# The operator's allowlist: `vidchat serve --llm CHOICE` (repeatable). A choice is a name the
# client may send; the spec behind it stays on the server. CHOICE is either a flag that is its
# own name (``local``, ``local:qwen1.5b`` — shipped model names, no paths) or ``NAME=SPEC`` for
# anything else (``lab=http://10.0.0.5:8000/v1@qwen``, ``big=local:/models/x.gguf``).

DEFAULT_LLMS = ["local"]
_LLM_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:+-]{0,63}$")


def parse_llm_choice(text: str) -> tuple[str, str]:
    """``(name, spec)`` of one operator choice; ConfigError when it cannot be offered by name."""
    from vidchat.kernel.errors import ConfigError

    text = text.strip()
    name, sep, spec = text.partition("=")
    if not sep:
        name = spec = text
    name, spec = name.strip(), spec.strip()
    if not _LLM_NAME.match(name) or "//" in name:
        raise ConfigError(
            f"LLM choice {text!r}: the name clients pick must be letters, digits and . _ : + - "
            "(no URL or path); write NAME=SPEC, e.g. lab=http://host:8000/v1@model"
        )
    if not spec:
        raise ConfigError(f"LLM choice {text!r}: nothing after '='")
    return name, spec


def llm_choices(choices: list[str]) -> dict[str, str]:
    """The operator's choices as ``{name: spec}``, in order; ConfigError on a bad or repeated
    name or a spec the LLM layer refuses."""
    from vidchat.kernel.errors import ConfigError
    from vidchat.llm.config import resolve_llm_config

    out: dict[str, str] = {}
    for c in choices:
        name, spec = parse_llm_choice(c)
        if name in out:
            raise ConfigError(f"LLM choice {name!r} given twice")
        resolve_llm_config(None, spec)  # a bad spec fails at start, not in a client's request
        out[name] = spec
    return out


# ----------------------------------------------------------------------------- settings


class AppConfig(BaseModel):
    """Settings of one server (everything a client may choose from is listed here)."""

    max_upload_mb: float = Field(MAX_UPLOAD_MB, gt=0, description="largest accepted upload")
    max_duration_s: float = Field(MAX_DURATION_S, gt=0, description="longest accepted video")
    max_pixels: int = Field(MAX_PIXELS, gt=0, description="largest accepted frame (w x h)")
    profiles: list[str] = Field(
        default_factory=list, description="profile names or YAML paths offered (default: built-ins)"
    )
    llm_choices: list[str] = Field(
        default_factory=lambda: list(DEFAULT_LLMS),
        description="LLMs offered by name: 'local', 'local:NAME' or 'NAME=SPEC' (see above)",
    )
    allowed_hosts: list[str] = Field(
        default_factory=lambda: list(LOOPBACK_HOSTS),
        description="Host header values accepted (no port); '*' accepts any (not advised)",
    )
    work_dir: Path | None = Field(None, description="where uploads go (default: a temp folder)")
    max_jobs: int = Field(32, ge=1, description="jobs kept; the oldest are forgotten first")


@dataclass
class Job:
    """One video in one browser tab: its textualization, record and chat session."""

    id: str
    source: Path
    profile: str
    llm: str
    llm_name: str | None = None  # the name the client chose (the spec stays on the server)
    profile_name: str | None = None  # likewise for the profile (its path stays on the server)
    state: str = "queued"  # queued -> preparing -> perceiving -> ready | error
    message: str = ""
    perceivers: dict[str, str] = field(default_factory=dict)
    decode: float = 0.0  # 0..1 of the video decoded
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    info: VideoInfo | None = None
    playable: Path | None = None
    ctx: VideoContext | None = None
    session: ChatSession | None = None
    session_llm: str | None = None
    timeline_png: Path | None = None
    timeline_axis: tuple[float, float] = (0.0, 1.0)
    lock: threading.Lock = field(default_factory=threading.Lock)  # one answer at a time
    draw_lock: threading.Lock = field(default_factory=threading.Lock)  # one annotated video


class _JobProgress:
    """Subscribes to the pipeline's progress events and records them on the job (the page
    polls them): each perceiver's state, the share of the video decoded."""

    def __init__(self, job: Job) -> None:
        self.job = job

    def __call__(self, event: PipelineEvent) -> None:
        from vidchat.pipeline import events as ev
        from vidchat.pipeline.progress import finished_label

        if isinstance(event, ev.Probed):
            for level in event.levels:
                for name in level:
                    self.job.perceivers.setdefault(name, "waiting")
        elif isinstance(event, ev.PerceiverStarted):
            self.job.perceivers[event.name] = "running"
        elif isinstance(event, ev.PerceiverFinished):
            self.job.perceivers[event.name] = finished_label(event)
        elif isinstance(event, ev.FramesDecoded):
            self.job.decode = event.fraction


def _profile_names(entries: list[str]) -> dict[str, str]:
    """``{name: name_or_path}`` of the offered profiles: clients see and send names only."""
    from vidchat.kernel.errors import ConfigError
    from vidchat.pipeline.profiles import builtin_profiles, load_profile

    out: dict[str, str] = {}
    for entry in entries or builtin_profiles():
        name = entry if entry in builtin_profiles() else load_profile(entry).name
        if name in out and out[name] != entry:
            raise ConfigError(f"two offered profiles are both named {name!r}: rename one")
        out[name] = entry
    return out


class _State:
    def __init__(self, config: AppConfig) -> None:
        from vidchat.pipeline.profiles import DEFAULT_PROFILE

        self.config = config
        self.profile_paths = _profile_names(config.profiles)
        # The CLI's default profile first: it is what the page selects when nobody chooses.
        names = list(self.profile_paths)
        if DEFAULT_PROFILE in names:
            names = [DEFAULT_PROFILE, *(p for p in names if p != DEFAULT_PROFILE)]
        self.profiles = names
        self.llms = llm_choices(config.llm_choices)
        self._profile_status: dict[str, dict[str, Any]] | None = None
        self.jobs: dict[str, Job] = {}
        self.jobs_lock = threading.Lock()
        self.pipelines: dict[str, Pipeline] = {}
        # One run at a time per pipeline: perceivers hold models that are not thread-safe.
        self.pipeline_locks: dict[str, threading.Lock] = {}
        self.work = Path(config.work_dir or tempfile.mkdtemp(prefix="vidchat-web-"))
        self.work.mkdir(parents=True, exist_ok=True)

    def profile_status(self) -> dict[str, dict[str, Any]]:
        """Per offered profile: whether its models can load here now (offline), and if not why.
        Computed once: nothing is loaded or downloaded (`vidchat.cli.models`)."""
        if self._profile_status is None:
            from vidchat.pipeline.inventory import profile_models
            from vidchat.pipeline.profiles import load_profile

            status: dict[str, dict[str, Any]] = {}
            for name in self.profiles:
                try:
                    rows = profile_models(load_profile(self.profile_paths[name]))
                    missing = [
                        f"{r.user}: {r.perceiver_reason or r.status.detail}"
                        for r in rows
                        if not r.status.available or not r.perceiver_ok
                    ]
                except VidchatError as e:
                    missing = [str(e)]
                status[name] = {"available": not missing, "reason": "; ".join(missing)[:300]}
            self._profile_status = status
        return self._profile_status

    def add(self, job: Job) -> None:
        with self.jobs_lock:
            self.jobs[job.id] = job
            while len(self.jobs) > self.config.max_jobs:
                old = next(iter(self.jobs))
                self.jobs.pop(old)
                shutil.rmtree(self.work / old, ignore_errors=True)

    def get(self, job_id: str) -> Job:
        job = self.jobs.get(job_id)
        if job is None:
            raise _NotFound(
                f"no job {job_id!r} (the server may have restarted; open the video again)"
            )
        return job

    def pipeline(self, profile: str) -> tuple[Pipeline, threading.Lock]:
        with self.jobs_lock:
            if profile not in self.pipelines:
                from vidchat.pipeline.core import Pipeline

                self.pipelines[profile] = Pipeline(profile)
                self.pipeline_locks[profile] = threading.Lock()
            return self.pipelines[profile], self.pipeline_locks[profile]


class _NotFound(VidchatError):
    pass


class _OverLimit(InputError):
    """An upload over the server's duration or pixel limit (the message says which)."""


class AskRequest(BaseModel):
    question: str = Field(min_length=1, max_length=4000)
    llm: str | None = None


class SampleRequest(BaseModel):
    name: str
    profile: str | None = None
    llm: str | None = None


# ------------------------------------------------------------------------------------ the job


def _check_profile(state: _State, profile: str | None) -> str:
    """The server-side profile (name or path) for the client's choice of NAME."""
    profile = profile or state.profiles[0]
    if profile not in state.profile_paths:
        raise InputError(
            f"unknown profile {profile[:80]!r}; choose one of: {', '.join(state.profiles)}"
        )
    status = state.profile_status().get(profile, {})
    if status and not status["available"]:
        raise InputError(f"profile {profile!r} is unavailable here: {status['reason']}")
    return state.profile_paths[profile]


def _check_llm(state: _State, name: str | None) -> str:
    """The operator's LLM spec for the client's choice of NAME (never the client's text)."""
    name = (name or next(iter(state.llms))).strip()
    if name not in state.llms:
        raise InputError(
            f"unknown LLM {name[:80]!r}; this server offers: {', '.join(state.llms)}"
        )
    return state.llms[name]


def _llm_name(state: _State, spec: str) -> str:
    return next((n for n, s in state.llms.items() if s == spec), "?")


# Absolute paths in a message (a server's folders are nobody else's business): keep the last
# component, which is what the user uploaded or chose.
_ABS_PATH = re.compile(r"(?<![\w.:/])/(?:[^\s/'\"()\[\],;]+/)+([^\s/'\"()\[\],;]*)")


def public_message(text: str, job: Job | None = None) -> str:
    """`text` with every absolute server path reduced to its file name."""
    if job is not None:
        text = text.replace(str(job.source), Path(job.source).name)
    return _ABS_PATH.sub(lambda m: m.group(1) or "…", text)


def _playable(info: VideoInfo, dest: Path) -> Path:
    """The video as the browser can play it: the file itself, or an h264 copy made once."""
    from vidchat.kernel.video import ffmpeg_url

    fmt = Path(info.path).suffix.lower().lstrip(".").replace("m4v", "mp4")
    if (fmt, (info.codec or "").lower()) in _PLAYABLE and info.rotation == 0:
        return Path(info.path)
    out = dest / "player.mp4"
    cmd = [
        "ffmpeg",
        "-nostdin",
        "-hide_banner",
        "-loglevel",
        "error",
        "-y",
        "-i",
        ffmpeg_url(info.path),
        "-map",
        "0:v:0",
        "-map",
        f"0:a:{info.audio_track or 0}?",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-crf",
        "26",
        "-pix_fmt",
        "yuv420p",
        "-vf",
        "scale=trunc(iw/2)*2:trunc(ih/2)*2",
        "-c:a",
        "aac",
        "-movflags",
        "+faststart",
        ffmpeg_url(out),
    ]
    r = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if r.returncode != 0:
        why = r.stderr.strip().splitlines()[-1] if r.stderr.strip() else f"exit {r.returncode}"
        raise InputError(f"could not prepare {info.name} for the player: {why[-200:]}")
    return out


def _run_job(state: _State, job: Job) -> None:
    from vidchat.apps.visual import timeline_png
    from vidchat.kernel.video import probe

    folder = state.work / job.id
    folder.mkdir(parents=True, exist_ok=True)
    try:
        job.state, job.message = "preparing", "checking the video"
        job.info = probe(job.source)
        job.playable = _playable(job.info, folder)
        job.state, job.message = "perceiving", "textualizing"
        _start_llm(job)  # load the local model while perception runs
        pipeline, lock = state.pipeline(job.profile)
        if not lock.acquire(blocking=False):
            job.message = "waiting for another video to finish textualizing"
            lock.acquire()
        try:
            job.message = "textualizing"
            ctx = pipeline.run(job.source, on_event=_JobProgress(job))
        finally:
            lock.release()
        plot = timeline_png(ctx, folder / "timeline.png", width_in=10)
        job.timeline_png = plot.path
        job.timeline_axis = (plot.axis_left, plot.axis_right)
        job.ctx = ctx
        _prefill(job)  # the record is ready: the first question will start from the cache
        job.decode = 1.0
        failed = [p.name for p in ctx.provenance if p.status == "failed"]
        job.message = (
            f"{len(ctx.objects)} objects, {len(ctx.speech)} speech segments, "
            f"{len(ctx.events)} events" + (f"; failed: {', '.join(failed)}" if failed else "")
        )
        job.state = "ready"
    except VidchatError as e:
        job.state, job.message = "error", public_message(str(e), job)
    except Exception as e:  # a bug, not the user's fault: log it, say it in one line
        log.exception("job %s failed", job.id)
        job.state = "error"
        job.message = public_message(f"textualization failed: {type(e).__name__}: {e}", job)
    finally:
        job.finished = time.monotonic()


def _start(state: _State, source: Path, profile: str, llm: str, job_id: str | None = None) -> Job:
    job = Job(id=job_id or secrets.token_urlsafe(12), source=source, profile=profile, llm=llm)
    job.llm_name = _llm_name(state, llm)
    job.profile_name = next((n for n, p in state.profile_paths.items() if p == profile), None)
    state.add(job)
    threading.Thread(
        target=_run_job, args=(state, job), name=f"vidchat-job-{job.id}", daemon=True
    ).start()
    return job


def _summary(job: Job) -> dict[str, Any]:
    out: dict[str, Any] = {
        "job": job.id,
        "state": job.state,
        "message": job.message,
        "profile": job.profile_name or job.profile,
        "llm": job.llm_name or job.llm,
        "perceivers": job.perceivers,
        "decode": round(job.decode, 3),
        "elapsed": round((job.finished or time.monotonic()) - job.started, 1),
    }
    if job.info is not None:
        out["video"] = {
            "name": Path(job.source).name,
            "duration": job.info.duration,
            "width": job.info.width,
            "height": job.info.height,
        }
    if job.ctx is not None:
        from vidchat.apps.visual import color_for

        out["objects"] = [
            {
                "id": o.id,
                "label": o.label,
                "first_seen": o.first_seen,
                "last_seen": o.last_seen,
                "color": "#{:02x}{:02x}{:02x}".format(*color_for(o.id)),
                "trajectory": [[p.t, *p.box] for p in o.trajectory],
            }
            for o in job.ctx.objects
        ]
        out["timeline_axis"] = job.timeline_axis
        out["provenance"] = [
            {
                "name": p.name,
                "status": p.status,
                "reason": public_message(p.reason, job) if p.reason else p.reason,
                "seconds": p.seconds,
            }
            for p in job.ctx.provenance
        ]
    return out


def _ready(job: Job) -> Job:
    if job.ctx is None:
        raise InputError(f"the video is not textualized yet ({job.state}: {job.message})")
    return job


def _annotated(state: _State, job: Job) -> Path:
    """The annotated video, drawn once per job (in a worker thread; one drawing at a time)."""
    from vidchat.apps.visual import annotate

    out = state.work / job.id / "annotated.mp4"
    with job.draw_lock:
        if not out.exists():
            assert job.ctx is not None
            annotate(job.source, job.ctx, out, max_side=1280)
    return out


def to_webvtt(ctx: VideoContext) -> str:
    """The record's speech as WebVTT subtitles for the page's player."""

    def stamp(t: float) -> str:
        ms = round(t * 1000)
        return f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"

    cues = ["WEBVTT", ""]
    for seg in ctx.speech:
        # A cue's text cannot contain "-->" or a blank line; speech is untrusted text.
        text = " ".join(seg.text.replace("-->", "->").split())
        if text and seg.end > seg.start:
            cues += [f"{stamp(seg.start)} --> {stamp(seg.end)}", text, ""]
    return "\n".join(cues)


def _session_for(job: Job, llm: str) -> ChatSession:
    from vidchat.conversation.session import ChatSession
    from vidchat.llm.config import resolve_llm_config
    from vidchat.pipeline.profiles import load_profile

    if job.session is None or job.session_llm != llm:
        prof = load_profile(job.profile)
        assert job.ctx is not None
        job.session = ChatSession(job.ctx, llm=resolve_llm_config(prof.llm, llm), profile=prof)
        job.session_llm = llm
    return job.session


def _start_llm(job: Job) -> None:
    """Start the job's local LLM server in the background and have it read the instructions
    (a no-op for remote LLMs)."""
    from vidchat.conversation.prompt import instructions_prefix
    from vidchat.llm.config import resolve_llm_config
    from vidchat.llm.factory import start_local_server
    from vidchat.pipeline.profiles import load_profile

    try:
        config = resolve_llm_config(load_profile(job.profile).llm, job.llm)
        start_local_server(config, instructions_prefix())
    except Exception as e:  # the first question reports any real problem, in one line
        log.info("starting the LLM for job %s failed: %s", job.id, e)


def _prefill(job: Job) -> None:
    """Start processing the job's record on its LLM in the background (local server only), so
    the first question does not wait for the whole record to be read."""

    def run() -> None:
        try:
            with job.lock:
                session = _session_for(job, job.llm)
            session.prefill()
        except Exception as e:  # the first question reports any real problem, in one line
            log.info("prefill for job %s failed: %s", job.id, e)

    threading.Thread(target=run, name=f"vidchat-prefill-{job.id}", daemon=True).start()


def _answer_lines(job: Job, question: str, llm: str) -> Iterator[bytes]:
    def line(obj: dict[str, Any]) -> bytes:
        return (json.dumps(obj, ensure_ascii=False) + "\n").encode()

    # One answer at a time per job; a second tab on the same job waits here.
    with job.lock:
        try:
            session = _session_for(job, llm)
            stream = session.stream(question)
            try:
                for chunk in stream:
                    yield line({"delta": chunk})
            finally:
                stream.close()
            answer = session.last_answer
            if answer is not None:
                data = answer.model_dump(mode="json")
                data["llm"] = session.describe_llm()
                yield line({"answer": data})
        except VidchatError as e:
            yield line({"error": public_message(str(e), job)})
        except Exception as e:
            log.exception("answer failed")
            yield line({"error": public_message(f"the LLM failed: {type(e).__name__}: {e}", job)})


# ------------------------------------------------------------------------------------ the app


def host_allowed(header: str | None, allowed: list[str]) -> bool:
    """Whether a Host header names this server (`allowed`, compared without the port)."""
    if "*" in allowed:
        return True
    if not header:
        return False
    host = header.strip().lower()
    if host.startswith("["):  # [::1]:7860
        host = host[1 : host.find("]")] if "]" in host else host
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    return host.rstrip(".") in {h.lower().strip("[]") for h in allowed}


def origin_allowed(origin: str | None, allowed: list[str]) -> bool:
    """Whether a request's Origin (sent by browsers on cross-site and most same-site requests)
    is this server; no Origin (curl, scripts, same-origin GETs) is allowed."""
    if origin is None:
        return True
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(origin)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and host_allowed(parts.netloc, allowed)


# The page loads only its own script, style and media; nothing may frame it. The plotly timeline
# (inline script, generated from the record) is a sandboxed page with no access to the API.
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' blob:; connect-src 'self'; font-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SANDBOXED_CSP = (
    "sandbox allow-scripts; default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; "
    "style-src 'unsafe-inline'; img-src data: blob:; font-src data:; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}


def _cleanup_upload(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)


def create_app(config: AppConfig | None = None) -> FastAPI:
    """The FastAPI application (serve it with uvicorn, or `serve`)."""
    state = _State(config or AppConfig())
    app = FastAPI(title="vidchat", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.vidchat = state
    app.mount("/static", StaticFiles(directory=WEB_DIR), name="static")

    @app.middleware("http")
    async def _guard(request: Request, call_next):
        if not host_allowed(request.headers.get("host"), state.config.allowed_hosts):
            # A page on another name (DNS rebinding) reaches loopback with its own Host.
            response: Response = JSONResponse(
                {"error": "this host name is not allowed (vidchat serve --allowed-host)"},
                status_code=421,
            )
        elif request.method not in ("GET", "HEAD") and not origin_allowed(
            request.headers.get("origin"), state.config.allowed_hosts
        ):
            # Another site's page posting to this server (cross-site request forgery).
            response = JSONResponse(
                {"error": "requests from another site's page are refused"}, status_code=403
            )
        else:
            response = await call_next(request)
        for k, v in SECURITY_HEADERS.items():
            response.headers.setdefault(k, v)
        sandboxed = request.url.path.endswith("/timeline.html")
        response.headers["Content-Security-Policy"] = SANDBOXED_CSP if sandboxed else PAGE_CSP
        return response

    @app.exception_handler(VidchatError)
    async def _user_error(request: Request, exc: VidchatError) -> JSONResponse:
        code = 404 if isinstance(exc, _NotFound) else 400
        return JSONResponse({"error": public_message(str(exc))}, status_code=code)

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        log.exception("request %s failed", request.url.path, exc_info=exc)
        return JSONResponse(
            {"error": f"internal error ({type(exc).__name__}); the server log has the details"},
            status_code=500,
        )

    @app.get("/")
    async def index() -> FileResponse:
        return FileResponse(WEB_DIR / "index.html", media_type="text/html")

    @app.get("/api/config")
    async def get_config() -> dict[str, Any]:
        from vidchat.kernel.samples import SAMPLES, sample_path

        samples = []
        for name in SAMPLES:
            try:
                sample_path(name)
                samples.append(name)
            except InputError:
                pass  # not installed here: not offered
        return {
            "profiles": state.profiles,
            "default_profile": state.profiles[0],
            "profile_status": state.profile_status(),
            "llms": list(state.llms),
            "samples": samples,
            "max_upload_mb": state.config.max_upload_mb,
            "max_duration_s": state.config.max_duration_s,
            "max_pixels": state.config.max_pixels,
            "suffixes": sorted(ALLOWED_SUFFIXES),
        }

    def check_limits(info: VideoInfo, name: str) -> None:
        cfg = state.config
        if info.duration > cfg.max_duration_s:
            raise _OverLimit(
                f"{name} is {info.duration / 60:.1f} min long; this server accepts videos up to "
                f"{cfg.max_duration_s / 60:g} min"
            )
        if info.width * info.height > cfg.max_pixels:
            raise _OverLimit(
                f"{name} is {info.width}x{info.height} ({info.width * info.height / 1e6:.1f} "
                f"megapixels); this server accepts up to {cfg.max_pixels / 1e6:.1f} megapixels "
                "a frame (e.g. 3840x2160)"
            )

    @app.put("/api/upload")
    async def upload(
        request: Request, name: str, profile: str | None = None, llm: str | None = None
    ) -> dict[str, Any]:
        from vidchat.kernel.video import probe

        prof, flag = _check_profile(state, profile), _check_llm(state, llm)
        name = Path(name.replace("\\", "/")).name[:200] or "upload"
        suffix = Path(name).suffix.lower()
        if suffix not in ALLOWED_SUFFIXES:
            raise InputError(
                f"{name!r} is not a video file this app accepts "
                f"(expected one of {', '.join(sorted(ALLOWED_SUFFIXES))})"
            )
        limit = int(state.config.max_upload_mb * 1024 * 1024)
        try:
            declared = int(request.headers.get("content-length") or 0)
        except ValueError:
            declared = 0
        too_big = f"{name} is larger than the {state.config.max_upload_mb:g} MB upload limit"
        if declared > limit:
            return JSONResponse({"error": too_big}, status_code=413)  # type: ignore[return-value]
        job_id = secrets.token_urlsafe(12)
        folder = state.work / job_id
        folder.mkdir(parents=True)
        # The user's file name (sanitized) so the record and the chat name the video as they do.
        safe = re.sub(r"[^\w.\- ]", "_", name).strip(" .-")[:120] or "upload"
        dest = folder / (safe if safe.lower().endswith(suffix) else f"{safe}{suffix}")
        size = 0
        try:
            with dest.open("wb") as f:
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > limit:
                        break
                    f.write(chunk)
        except ClientDisconnect:  # the client went away mid-upload: nobody reads the answer
            _cleanup_upload(folder)
            log.info("upload %s aborted by the client; partial file removed", job_id)
            return JSONResponse({"error": f"{name}: upload aborted"}, status_code=400)  # type: ignore[return-value]
        except OSError as e:  # the server's disk failed (full?)
            _cleanup_upload(folder)
            log.warning("upload %s failed: %s", job_id, e)
            raise InputError(f"{name} could not be stored on the server") from None
        except BaseException:  # cancelled (server shutting down)
            _cleanup_upload(folder)
            raise
        if size > limit:
            _cleanup_upload(folder)
            return JSONResponse({"error": too_big}, status_code=413)  # type: ignore[return-value]
        if size == 0:
            _cleanup_upload(folder)
            raise InputError(f"{name} is empty (0 bytes)")
        try:
            # type check by content, before any perceiver sees it
            info = await run_in_threadpool(probe, dest)
            check_limits(info, name)
        except _OverLimit:
            _cleanup_upload(folder)
            raise
        except InputError as e:
            _cleanup_upload(folder)
            msg = str(e).replace(str(dest), name).replace(str(folder), "")
            raise InputError(f"{name} is not a usable video: {public_message(msg)}") from None
        except BaseException:
            _cleanup_upload(folder)
            raise
        job = _start(state, dest, prof, flag, job_id)
        return {"job": job.id}

    @app.post("/api/sample")
    async def sample(req: SampleRequest) -> dict[str, Any]:
        from vidchat.kernel.samples import sample_path

        prof, flag = _check_profile(state, req.profile), _check_llm(state, req.llm)
        job = _start(state, sample_path(req.name), prof, flag)
        return {"job": job.id}

    @app.get("/api/jobs/{job_id}")
    async def job_status(job_id: str) -> dict[str, Any]:
        return _summary(state.get(job_id))

    @app.get("/api/jobs/{job_id}/video")
    async def job_video(job_id: str) -> FileResponse:
        job = state.get(job_id)
        if job.playable is None:
            raise _NotFound("the video is not ready yet")
        return FileResponse(job.playable)

    @app.get("/api/jobs/{job_id}/timeline.png")
    async def job_timeline(job_id: str) -> FileResponse:
        job = state.get(job_id)
        if job.timeline_png is None:
            raise _NotFound("the timeline is not ready yet")
        return FileResponse(job.timeline_png, media_type="image/png")

    @app.get("/api/jobs/{job_id}/speech.vtt")
    async def job_subtitles(job_id: str) -> Response:
        job = _ready(state.get(job_id))
        assert job.ctx is not None
        return Response(to_webvtt(job.ctx), media_type="text/vtt")

    @app.get("/api/jobs/{job_id}/timeline.html")
    async def job_timeline_html(job_id: str) -> FileResponse:
        from vidchat.apps.visual import timeline_html

        job = _ready(state.get(job_id))
        out = state.work / job.id / "timeline.html"
        if not out.exists():
            assert job.ctx is not None
            await run_in_threadpool(timeline_html, job.ctx, out)
        return FileResponse(out, media_type="text/html")

    @app.get("/api/jobs/{job_id}/annotated.mp4")
    async def job_annotated(job_id: str) -> FileResponse:
        job = _ready(state.get(job_id))
        out = await run_in_threadpool(_annotated, state, job)
        return FileResponse(
            out, media_type="video/mp4", filename=f"{Path(job.source).stem}.annotated.mp4"
        )

    @app.post("/api/jobs/{job_id}/ask")
    async def ask(job_id: str, req: AskRequest) -> StreamingResponse:
        job = _ready(state.get(job_id))
        flag = _check_llm(state, req.llm) if req.llm else job.llm
        return StreamingResponse(
            _answer_lines(job, req.question, flag), media_type="application/x-ndjson"
        )

    return app


def serve(host: str = "127.0.0.1", port: int = 7860, config: AppConfig | None = None) -> None:
    """Run the app with uvicorn until interrupted."""
    import uvicorn

    if host not in LOOPBACK_HOSTS:
        log.warning("vidchat serve: listening on %s: anyone who can reach it can use it", host)
    uvicorn.run(create_app(config), host=host, port=port, log_level="warning")
