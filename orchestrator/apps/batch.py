"""Batch textualization: many videos, one job, resumable, on a local process pool or on Ray.

`run_batch(inputs, outdir, ...)` textualizes every video named by `inputs` (files, folders walked
recursively by extension, or manifests: CSV or JSONL with an ``id`` and a ``path`` per row) and
writes, per video, ``<id>.json`` (the record) and ``<id>.txt`` (its rendering), each atomically.
After each video one line is appended (and fsynced) to ``manifest.jsonl``: id, input hash,
status, seconds per perceiver, error. ``summary.json`` is written at the end.

Statuses: ``ok``; ``degraded`` (a record was written but a perceiver failed, or was skipped
because it cannot run here: its package or weights are missing); ``failed`` (no
record: bad input, or the worker died twice on it); ``timeout`` (the worker was killed after
``timeout_per_video`` seconds). Anything but ``ok`` makes the job's exit code 1.

Workers build their `Pipeline` once (models loaded once, kept for every video). The job process
alone writes outputs, so both engines produce byte-identical records for the same inputs (the
provenance timings aside, see `comparable_record`). A video that hangs (a stuck ffmpeg or model)
is stopped by killing its worker process — with its process group, so ffmpeg goes too — and
replacing it; a worker that dies is replaced and its video retried once.

Resume (``resume=True``): a video is done when both its outputs exist, the record parses and its
``video.sha256`` equals the input's current hash; those are skipped. Anything else (no outputs,
only the ``.json``, a changed input, a failed video) is redone. Outputs are written ``.json``
first, ``.txt`` second, manifest line last; a job killed between the two files leaves a
``.json`` without ``.txt``, which resume treats as partial and redoes. A video whose outputs are
complete but whose manifest line was lost to the kill gets its line rebuilt from the record
(``"recovered": true``) instead of being redone.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import hashlib
import json
import logging
import multiprocessing
import os
import re
import signal
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from vidchat.kernel.errors import VidchatError
from vidchat.kernel.record import atomic_write_text
from vidchat.kernel.video import file_sha256 as video_file_sha256

if TYPE_CHECKING:
    from vidchat.pipeline.core import Pipeline
    from vidchat.pipeline.profiles import Profile

log = logging.getLogger("vidchat.batch")

VIDEO_EXTENSIONS = frozenset({
    ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".mts", ".m2ts",
    ".wmv", ".flv", ".3gp", ".ogv", ".mxf",
})  # fmt: skip
MANIFEST_SUFFIXES = frozenset({".csv", ".jsonl"})
MANIFEST_NAME = "manifest.jsonl"
SUMMARY_NAME = "summary.json"

Engine = Literal["local", "ray"]
Status = Literal["ok", "degraded", "failed", "timeout"]


class BatchError(VidchatError):
    """The job cannot start or go on (bad inputs list, unwritable output folder, full disk)."""


# ---------------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class BatchItem:
    """One video of the job: its output id (a safe file name stem) and its path."""

    id: str
    path: str


_UNSAFE = re.compile(r"[^\w.\-]+")


def safe_id(text: str) -> str:
    """A file-name-safe id: letters (any script), digits, ``._-``; other runs become ``_``."""
    s = _UNSAFE.sub("_", text).strip("._")[:100]
    return s or "video"


def _read_manifest(path: Path) -> list[tuple[str, str]]:
    """(id, path) rows of a CSV (header with ``id`` and ``path``) or JSONL manifest.

    Relative paths are relative to the manifest's folder.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise BatchError(f"manifest {path}: cannot read it ({e})") from None
    rows: list[dict[str, Any]] = []
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(text.splitlines())
        if not reader.fieldnames or not {"id", "path"} <= set(reader.fieldnames):
            raise BatchError(
                f"manifest {path}: expected a CSV header with 'id' and 'path', "
                f"got {reader.fieldnames}"
            )
        rows = list(reader)
    else:
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise BatchError(f"manifest {path} line {n}: invalid JSON ({e.msg})") from None
            if not isinstance(row, dict):
                raise BatchError(f"manifest {path} line {n}: expected an object, got {row!r}")
            rows.append(row)
    out = []
    for n, row in enumerate(rows, 1):
        vid, vpath = row.get("id"), row.get("path")
        if not vid or not vpath:
            raise BatchError(f"manifest {path} row {n}: expected 'id' and 'path', got {row}")
        p = Path(str(vpath)).expanduser()
        out.append((str(vid), str(p if p.is_absolute() else path.parent / p)))
    return out


def _walk(folder: Path) -> list[Path]:
    """Video files under `folder`, recursively, sorted. A sub-folder named like a video
    (``x.mp4/``) is listed as an input of its own (it then fails cleanly as 'a directory')."""
    found: list[Path] = []
    for root, dirs, files in os.walk(folder):
        for d in list(dirs):
            if Path(d).suffix.lower() in VIDEO_EXTENSIONS:
                found.append(Path(root) / d)
                dirs.remove(d)
        found += [Path(root) / f for f in files if Path(f).suffix.lower() in VIDEO_EXTENSIONS]
    return sorted(found)


def collect_inputs(inputs: Iterable[str | os.PathLike[str]]) -> list[BatchItem]:
    """The job's videos from files, folders and manifests, each with a unique id.

    Files and folder entries get the id of their file stem; stems that occur more than once
    all get a short hash of their path appended (so an id does not depend on input order).
    Manifest ids are kept (made file-name-safe); a duplicate id is an error. A path that does
    not exist is kept as an input: it is recorded as failed, the job goes on.
    """
    named: list[tuple[str, str]] = []  # from manifests: fixed ids
    loose: list[str] = []
    for raw in inputs:
        p = Path(raw).expanduser()
        if p.suffix.lower() in MANIFEST_SUFFIXES:
            if not p.is_file():
                raise BatchError(f"manifest {p}: no such file (expected CSV or JSONL)")
            named += _read_manifest(p)
        elif p.is_dir():
            loose += [str(f) for f in _walk(p)]
        else:
            loose.append(str(p))
    items: list[BatchItem] = []
    seen: dict[str, str] = {}
    for vid, path in named:
        sid = safe_id(vid)
        if sid in seen:
            raise BatchError(f"manifest id {vid!r} used twice ({seen[sid]} and {path})")
        seen[sid] = path
        items.append(BatchItem(sid, path))
    stems: dict[str, list[str]] = {}
    for path in dict.fromkeys(loose):  # the same file named twice is one video
        stems.setdefault(safe_id(Path(path).stem), []).append(path)
    for stem, paths in stems.items():
        for path in paths:
            sid = stem
            if len(paths) > 1 or sid in seen:
                sid = f"{stem}-{hashlib.sha1(path.encode()).hexdigest()[:8]}"
            seen[sid] = path
            items.append(BatchItem(sid, path))
    if not items:
        raise BatchError(
            "no videos found in the inputs (expected files, folders with "
            f"{', '.join(sorted(VIDEO_EXTENSIONS)[:5])}… files, or .csv/.jsonl manifests)"
        )
    return items


def file_sha256(path: str | os.PathLike[str]) -> str | None:
    """Hex SHA-256 of a regular file's bytes; None when it is not a readable regular file."""
    try:
        import stat

        if not stat.S_ISREG(os.stat(path).st_mode):
            return None  # a folder or a FIFO: opening a FIFO would block forever
        # The memoized hash `probe` uses too, so the worker does not read the file again.
        return video_file_sha256(Path(path))
    except OSError:
        return None


# ---------------------------------------------------------------------------------- results


class VideoResult(BaseModel):
    """What a worker returns for one video; the manifest line is this minus record and text."""

    model_config = ConfigDict(extra="forbid")

    id: str
    path: str
    sha256: str | None = None
    status: Status
    seconds: dict[str, float] = Field(default_factory=dict, description="per perceiver")
    total_seconds: float = 0.0
    error: str | None = None
    attempts: int = 1
    worker: str | None = None
    recovered: bool = False
    record: str | None = Field(None, description="the record JSON (not in the manifest)")
    text: str | None = Field(None, description="the rendering (not in the manifest)")

    def manifest_line(self) -> dict[str, Any]:
        line = self.model_dump(exclude={"record", "text"})
        line["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        return line


def _result_from_record(item: BatchItem, record_json: str, text: str | None) -> VideoResult:
    from vidchat.kernel.record import VideoContext

    ctx = VideoContext.from_json(record_json)
    # A perceiver that failed or could not run here leaves the record without its part.
    failed = [p for p in ctx.provenance if p.degraded]
    return VideoResult(
        id=item.id,
        path=item.path,
        sha256=ctx.video.sha256,
        status="degraded" if failed else "ok",
        seconds={p.name: p.seconds for p in ctx.provenance},
        error="; ".join(f"{p.name}: {p.reason}" for p in failed) or None,
        record=record_json,
        text=text,
    )


def process_video(pipeline: Pipeline, item: BatchItem, worker: str | None = None) -> VideoResult:
    """Textualize and render one video in a worker; a bad input becomes a failed result."""
    from vidchat.text.render import render

    t0 = time.perf_counter()
    try:
        ctx = pipeline.run(item.path)
        prof = pipeline.profile
        text = render(ctx, budget_tokens=prof.render.budget_tokens, window_s=prof.render.window_s)
        result = _result_from_record(item, ctx.to_json(), text.text)
    except VidchatError as e:
        result = VideoResult(id=item.id, path=item.path, status="failed", error=str(e))
    except Exception as e:  # a bug or a library crash on this input: recorded, the job goes on
        log.debug("video %s failed", item.path, exc_info=True)
        msg = f"{type(e).__name__}: {e}".strip().splitlines()[0]
        result = VideoResult(id=item.id, path=item.path, status="failed", error=msg)
    if result.sha256 is None:
        result.sha256 = file_sha256(item.path)
    result.total_seconds = round(time.perf_counter() - t0, 3)
    result.worker = worker
    _limit_torch_threads()
    return result


def comparable_record(record_json: str | dict[str, Any]) -> dict[str, Any]:
    """A record as a dict without what legitimately differs between two runs of the same job:
    each perceiver's ``seconds`` and ``cached`` flag (a resumed or repeated run reuses cached
    results and takes other times). Everything else — video facts, objects, speech, events,
    provenance status/reason/options/model/items — must be equal."""
    data = (
        json.loads(record_json)
        if isinstance(record_json, str)
        else json.loads(json.dumps(record_json))
    )
    for p in data.get("provenance", []):
        p.pop("seconds", None)
        p.pop("cached", None)
    return data


# ---------------------------------------------------------------------------------- workers


def _threads_per_worker(workers: int) -> int:
    return max(1, (os.cpu_count() or 1) // max(1, workers))


def _limit_torch_threads() -> None:
    """Keep torch at this worker's share of the cores (N workers x all cores oversubscribes)."""
    import sys

    n = os.environ.get("VIDCHAT_WORKER_THREADS")
    torch = sys.modules.get("torch")
    if n and torch is not None and torch.get_num_threads() != int(n):
        torch.set_num_threads(int(n))


def _init_worker(
    profile: Profile, cache: bool, setup: Callable[[], None] | None, threads: int
) -> Pipeline:
    """Build the worker's Pipeline once and load its models (kept for every video)."""
    # Before torch/onnx/BLAS are imported: they size their thread pools from these.
    os.environ["VIDCHAT_WORKER_THREADS"] = str(threads)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    if setup is not None:
        setup()
    from vidchat.pipeline.core import Pipeline

    pipeline = Pipeline(profile, cache=cache, progress=False)
    for p in pipeline.perceivers:
        try:
            if p.availability().ok:
                p.ensure_loaded()
        except Exception:  # the pipeline records it per video, as a failed perceiver
            log.debug("loading %s failed", p.name, exc_info=True)
    _limit_torch_threads()
    return pipeline


def _die_with_parent() -> None:
    """When the job process dies (SIGKILL), end this worker's process group (it and its ffmpeg)
    within a second instead of finishing a video nobody will write."""
    import threading

    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os.killpg(0, signal.SIGKILL)

    threading.Thread(target=watch, name="watch-parent", daemon=True).start()


def _local_worker_main(
    conn: Any, profile: Profile, cache: bool, setup: Callable[[], None] | None, threads: int
) -> None:
    """A local worker process: build the pipeline, then answer one item at a time."""
    os.setpgrp()  # its own process group: the job kills it together with its ffmpeg children
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the job's to handle
    _die_with_parent()
    try:
        pipeline = _init_worker(profile, cache, setup, threads)
    except BaseException as e:
        conn.send(("init_error", f"{type(e).__name__}: {e}"))
        return
    name = f"local-{os.getpid()}"
    conn.send(("ready", name))
    while True:
        try:
            item = conn.recv()
        except EOFError:
            return
        if item is None:
            return
        conn.send(("result", process_video(pipeline, item, name)))


@dataclass
class _Died:
    reason: str


@dataclass
class _Slot:
    handle: Any
    ready: bool = False
    busy: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class _LocalEngine:
    """A pool of spawned worker processes, one item at a time each, killable one by one."""

    name = "local"

    def __init__(self, profile: Profile, workers: int, cache: bool, setup: Any) -> None:
        # spawn: a fresh interpreter (no forked threads or locks from the job process).
        self._ctx = multiprocessing.get_context("spawn")
        self._args = (profile, cache, setup, _threads_per_worker(workers))
        self.start_failures = 0
        self.slots = [self._start() for _ in range(workers)]

    def _start(self) -> _Slot:
        parent, child = self._ctx.Pipe()
        proc = self._ctx.Process(target=_local_worker_main, args=(child, *self._args), daemon=True)
        proc.start()
        child.close()
        return _Slot(handle=proc, extra={"conn": parent})

    def submit(self, i: int, item: BatchItem) -> None:
        s = self.slots[i]
        s.busy = True
        s.extra["conn"].send(item)

    def wait(self, timeout: float) -> list[tuple[int, VideoResult | _Died]]:
        from multiprocessing.connection import wait

        conns = {id(s.extra["conn"]): i for i, s in enumerate(self.slots)}
        sentinels = {s.handle.sentinel: i for i, s in enumerate(self.slots)}
        ready = wait([s.extra["conn"] for s in self.slots] + list(sentinels), timeout)
        out: list[tuple[int, VideoResult | _Died]] = []
        hit: set[int] = set()
        for r in ready:
            i = conns.get(id(r), sentinels.get(r))  # type: ignore[arg-type]
            if i is None or i in hit:
                continue
            hit.add(i)
            s = self.slots[i]
            try:
                kind, payload = s.extra["conn"].recv() if s.extra["conn"].poll() else (None, None)
            except (EOFError, OSError):
                kind, payload = None, None
            if kind == "ready":
                s.ready = True
            elif kind == "init_error":
                raise BatchError(f"a local worker could not build the pipeline: {payload}")
            elif kind == "result":
                s.busy = False
                out.append((i, payload))
            elif not s.handle.is_alive():
                code = s.handle.exitcode
                why = (
                    f"killed by {signal.Signals(-code).name}"
                    if code and code < 0
                    else f"exit status {code}"
                )
                was_busy, was_ready = s.busy, s.ready
                self.replace(i)
                if was_busy:
                    out.append((i, _Died(f"worker process died ({why})")))
                elif not was_ready:
                    self.start_failures += 1
                    if self.start_failures >= 3:  # e.g. a crash loading a model: do not loop
                        raise BatchError(f"local workers die while starting ({why})")
        return out

    def replace(self, i: int) -> None:
        s = self.slots[i]
        proc = s.handle
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # the worker and its ffmpeg children
        if proc.is_alive():
            proc.kill()
        proc.join(5)
        s.extra["conn"].close()
        self.slots[i] = self._start()

    def close(self) -> None:
        for s in self.slots:
            with contextlib.suppress(OSError):
                s.extra["conn"].send(None)
        for s in self.slots:
            s.handle.join(5)
            if s.handle.is_alive():
                try:
                    os.killpg(s.handle.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    s.handle.kill()
                s.handle.join(5)


class RayWorker:
    """The Ray actor's body: a Pipeline built once, one video per call."""

    def __init__(
        self, profile: Profile, cache: bool, setup: Callable[[], None] | None, threads: int
    ) -> None:
        self.pipeline = _init_worker(profile, cache, setup, threads)
        self.name = f"ray-{os.getpid()}"

    def ready(self) -> str:
        return self.name

    def process(self, item: BatchItem) -> VideoResult:
        return process_video(self.pipeline, item, self.name)


@dataclass(frozen=True)
class PerceiverResources:
    """What one perceiver needs while it runs (Ray schedules actors by it)."""

    cpus: float
    gpus: float


def perceiver_resources(profile: Profile) -> dict[str, PerceiverResources]:
    """Per perceiver: ``num_cpus``/``num_gpus`` class attributes when it declares them, else 1
    CPU, plus 1 GPU when its options name a CUDA device."""
    from vidchat.perceivers import get_perceiver

    out = {}
    for name, opts in profile.perceivers.items():
        cls = get_perceiver(name)
        device = str((opts or {}).get("device") or "")
        gpus = float(getattr(cls, "num_gpus", 1.0 if device.startswith("cuda") else 0.0))
        out[name] = PerceiverResources(float(getattr(cls, "num_cpus", 1.0)), gpus)
    return out


def actor_resources(profile: Profile) -> PerceiverResources:
    """One actor runs a level's perceivers at once (threads) and levels one after another:
    CPUs = the largest sum over a level; GPUs = the largest single need (they share one)."""
    from vidchat.perceivers import get_perceiver
    from vidchat.pipeline.core import plan_levels

    res = perceiver_resources(profile)
    levels = plan_levels({n: get_perceiver(n)(o) for n, o in profile.perceivers.items()})
    cpus = max((sum(res[n].cpus for n in lv) for lv in levels), default=1.0)
    gpus = max((r.gpus for r in res.values()), default=0.0)
    return PerceiverResources(cpus, gpus)


def _ray_cause(e: BaseException) -> str:
    """The last line of a Ray error that names the cause (Ray's messages are pages long)."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    named = [ln for ln in lines if "Error" in ln and not ln.startswith(("File ", "Traceback"))]
    return (named or lines or [type(e).__name__])[-1][:300]


class _RayEngine:
    """Ray actors, each holding a Pipeline; a hung or dead actor is killed and replaced."""

    name = "ray"

    def __init__(
        self, profile: Profile, workers: int, cache: bool, setup: Any, address: str | None
    ) -> None:
        try:
            import ray
        except ImportError:
            raise BatchError(
                "the ray engine needs Ray: pip install 'vidchat[ray]' (or ray==2.60.0)"
            ) from None
        self.ray = ray
        self.owns_ray = False
        if not ray.is_initialized():
            kw: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            if address:
                kw["address"] = address
            else:
                kw["num_cpus"] = os.cpu_count() or 1
            try:
                ray.init(**kw)
            except Exception as e:
                raise BatchError(
                    f"could not start or reach Ray ({address or 'local'}): {_ray_cause(e)}"
                ) from None
            self.owns_ray = True
        need = actor_resources(profile)
        total = ray.cluster_resources()
        # Never ask for more than a worker's share of the cluster, or actors would wait forever.
        cpus = min(need.cpus, max(0.1, float(total.get("CPU", 1)) / workers))
        gpus = min(need.gpus, float(total.get("GPU", 0)) / workers) if need.gpus else 0.0
        self.resources = {"num_cpus": cpus, "num_gpus": gpus}
        self._actor_cls = ray.remote(max_restarts=0, max_task_retries=0, **self.resources)(
            RayWorker
        )
        self._args = (profile, cache, setup, max(1, int(cpus)))
        self.slots = [self._start() for _ in range(workers)]

    def _start(self) -> _Slot:
        actor = self._actor_cls.remote(*self._args)
        return _Slot(handle=actor, extra={"ref": actor.ready.remote(), "kind": "ready"})

    def submit(self, i: int, item: BatchItem) -> None:
        s = self.slots[i]
        s.busy = True
        s.extra.update(ref=s.handle.process.remote(item), kind="result")

    def wait(self, timeout: float) -> list[tuple[int, VideoResult | _Died]]:
        ray = self.ray
        refs = {s.extra["ref"]: i for i, s in enumerate(self.slots) if s.extra.get("ref")}
        if not refs:
            time.sleep(timeout)
            return []
        ray.wait(list(refs), num_returns=1, timeout=timeout)
        done, _ = ray.wait(list(refs), num_returns=len(refs), timeout=0)
        out: list[tuple[int, VideoResult | _Died]] = []
        for ref in done:
            i = refs[ref]
            s = self.slots[i]
            kind = s.extra.pop("kind")
            s.extra["ref"] = None
            try:
                value = ray.get(ref)
            except ray.exceptions.RayActorError as e:
                if kind == "ready":  # died building its pipeline: every new one would too
                    raise BatchError(
                        f"a Ray worker could not build the pipeline: {_ray_cause(e)}"
                    ) from None
                was_busy = s.busy
                self.replace(i)
                if was_busy:
                    out.append((i, _Died(f"Ray worker died ({type(e).__name__})")))
                continue
            except ray.exceptions.RayTaskError as e:
                if kind == "ready":
                    raise BatchError(
                        f"a Ray worker could not build the pipeline: {_ray_cause(e)}"
                    ) from None
                s.busy = False
                out.append((i, _Died(f"Ray task failed: {_ray_cause(e)}")))
                continue
            if kind == "ready":
                s.ready = True
            else:
                s.busy = False
                out.append((i, value))
        return out

    def replace(self, i: int) -> None:
        # Ray kills the actor's child processes (a stuck ffmpeg) with it: checked by
        # test_ray_timeout_kills_hung_actor.
        with contextlib.suppress(Exception):  # already dead
            self.ray.kill(self.slots[i].handle, no_restart=True)
        self.slots[i] = self._start()

    def close(self) -> None:
        for s in self.slots:
            with contextlib.suppress(Exception):
                self.ray.kill(s.handle, no_restart=True)
        if self.owns_ray:
            self.ray.shutdown()


# ---------------------------------------------------------------------------------- outputs


class _Outputs:
    """The output folder: per-video files, the run manifest, the summary."""

    def __init__(self, outdir: Path) -> None:
        self.dir = outdir
        self.manifest = outdir / MANIFEST_NAME
        try:
            outdir.mkdir(parents=True, exist_ok=True)
            # A real write (create, fsync, rename, delete) before any work: an unwritable or full
            # output folder fails now, in one line, not after an hour of textualizing.
            probe = atomic_write_text(outdir / ".vidchat-write-test", "ok\n" * 1024)
            probe.unlink()
        except OSError as e:
            raise BatchError(f"output folder {outdir} is not writable: {_os_error(e)}") from None

    def json_path(self, vid: str) -> Path:
        return self.dir / f"{vid}.json"

    def txt_path(self, vid: str) -> Path:
        return self.dir / f"{vid}.txt"

    def logged_ok(self) -> set[str]:
        """Ids with a record-bearing line (ok/degraded) in the manifest (a torn last line from a
        killed job is ignored)."""
        ids: set[str] = set()
        try:
            lines = self.manifest.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return ids
        for line in lines:
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(row, dict) and row.get("status") in ("ok", "degraded"):
                ids.add(str(row.get("id")))
        return ids

    def done(self, item: BatchItem) -> str | None:
        """The finished record's JSON when this video's outputs are complete and match the input's
        current hash; None when it must be (re)done."""
        j, t = self.json_path(item.id), self.txt_path(item.id)
        if not (j.is_file() and t.is_file()):
            return None
        try:
            text = j.read_text(encoding="utf-8")
            sha = json.loads(text)["video"]["sha256"]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return text if sha and sha == file_sha256(item.path) else None

    def write(self, result: VideoResult) -> None:
        """The record, then its rendering, each atomically; on failure neither is left behind."""
        if result.record is None:
            return
        j, t = self.json_path(result.id), self.txt_path(result.id)
        try:
            atomic_write_text(j, result.record)
            atomic_write_text(t, (result.text or "") + "\n")
        except OSError as e:
            j.unlink(missing_ok=True)
            t.unlink(missing_ok=True)
            raise BatchError(f"cannot write the outputs of {result.id} in {self.dir}: "
                             f"{_os_error(e)}") from None  # fmt: skip

    def append(self, result: VideoResult) -> None:
        """One manifest line, in one write, flushed and fsynced (a killed job loses at most the
        line being written, which readers skip)."""
        line = json.dumps(result.manifest_line(), ensure_ascii=False) + "\n"
        try:
            with open(self.manifest, "a+b") as f:
                f.seek(0, os.SEEK_END)
                if f.tell() > 0:
                    f.seek(-1, os.SEEK_END)
                    if f.read(1) != b"\n":  # a torn line from a killed run: end it first
                        line = "\n" + line
                f.write(line.encode("utf-8"))
                f.flush()
                os.fsync(f.fileno())
        except OSError as e:
            raise BatchError(f"cannot append to {self.manifest}: {_os_error(e)}") from None

    def summary(self, summary: BatchSummary) -> None:
        try:
            atomic_write_text(self.dir / SUMMARY_NAME, summary.model_dump_json(indent=1))
        except OSError as e:
            raise BatchError(f"cannot write {self.dir / SUMMARY_NAME}: {_os_error(e)}") from None


def _os_error(e: OSError) -> str:
    name = errno.errorcode.get(e.errno or 0, "")
    what = {errno.ENOSPC: "no space left on device", errno.EROFS: "read-only file system"}
    return f"{what.get(e.errno or 0, e.strerror or str(e))} ({name or type(e).__name__})"


# ---------------------------------------------------------------------------------- the job


class BatchSummary(BaseModel):
    """The job's outcome (also written to ``summary.json``)."""

    total: int
    ok: int = 0
    degraded: int = 0
    failed: int = 0
    timeout: int = 0
    skipped: int = Field(0, description="already done (resume)")
    recovered: int = Field(0, description="done before, manifest line rebuilt (resume)")
    seconds: float = 0.0
    videos_per_minute: float = 0.0
    engine: str
    workers: int
    resources: dict[str, float] = Field(default_factory=dict)
    not_ok: dict[str, str] = Field(default_factory=dict, description="id -> status: error")

    @property
    def exit_code(self) -> int:
        """0 when every video is ok, 1 otherwise."""
        return 0 if (self.degraded + self.failed + self.timeout) == 0 else 1


class _Bar:
    """One rich progress bar on stderr: videos done, failed, rate and time left."""

    def __init__(self, total: int, enabled: bool) -> None:
        self._p = None
        self.t0 = time.monotonic()
        self.done = self.bad = 0
        if enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
            )

            self._p = Progress(
                TextColumn("batch"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[failed]} failed · {task.fields[rate]}"),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=Console(stderr=True),
            )
            self._p.__enter__()
            self._task = self._p.add_task("batch", total=total, failed=0, rate="– videos/min")

    def advance(self, ok: bool) -> None:
        self.done += 1
        self.bad += not ok
        if self._p is not None:
            minutes = max(time.monotonic() - self.t0, 1e-6) / 60
            self._p.update(self._task, advance=1, failed=self.bad,
                           rate=f"{self.done / minutes:.1f} videos/min")  # fmt: skip

    def close(self) -> None:
        if self._p is not None:
            self._p.__exit__(None, None, None)


def run_batch(
    inputs: Sequence[str | os.PathLike[str]],
    outdir: str | os.PathLike[str],
    *,
    profile: str | Profile | None = None,
    workers: int = 1,
    engine: Engine = "local",
    ray_address: str | None = None,
    resume: bool = False,
    timeout_per_video: float | None = None,
    cache: bool = True,
    progress: bool = False,
    setup: Callable[[], None] | None = None,
    retries: int = 1,
) -> BatchSummary:
    """Textualize every input video into `outdir`; see the module docstring.

    `setup` is a picklable (module-level) function each worker calls before building its
    pipeline (e.g. to register plugin perceivers). `retries`: how many more times a video is
    tried when its worker dies under it (a timeout is not retried).
    """
    from vidchat.pipeline.profiles import load_profile

    if workers < 1:
        raise BatchError(f"--workers must be at least 1, got {workers}")
    if timeout_per_video is not None and timeout_per_video <= 0:
        raise BatchError(f"--timeout-per-video must be positive, got {timeout_per_video}")
    if engine not in ("local", "ray"):
        raise BatchError(f"unknown engine {engine!r}; expected local or ray")
    prof = load_profile(profile)
    items = collect_inputs(inputs)
    out = _Outputs(Path(outdir))
    summary = BatchSummary(total=len(items), engine=engine, workers=workers)
    t0 = time.monotonic()
    todo: deque[tuple[BatchItem, int]] = deque()
    logged = out.logged_ok() if resume else set()
    for item in items:
        record = out.done(item) if resume else None
        if record is None:
            todo.append((item, 1))
        elif item.id in logged:
            summary.skipped += 1
        else:  # complete outputs, manifest line lost to a kill: rebuild the line, do not redo
            r = _result_from_record(item, record, None)
            r.recovered = True
            out.append(r)
            summary.recovered += 1
            _count(summary, r)
    bar = _Bar(len(todo), progress)

    def finish(r: VideoResult) -> None:
        out.write(r)
        out.append(r)
        _count(summary, r)
        bar.advance(r.status == "ok")

    eng: _LocalEngine | _RayEngine | None = None
    try:
        if todo:
            n = min(workers, len(todo))
            eng = (
                _LocalEngine(prof, n, cache, setup)
                if engine == "local"
                else _RayEngine(prof, n, cache, setup, ray_address)
            )
            if isinstance(eng, _RayEngine):
                summary.resources = eng.resources
            _schedule(eng, todo, timeout_per_video, retries, finish)
    finally:
        bar.close()
        if eng is not None:
            eng.close()
    summary.seconds = round(time.monotonic() - t0, 3)
    processed = summary.total - summary.skipped - summary.recovered
    summary.videos_per_minute = round(processed / max(summary.seconds, 1e-9) * 60, 2)
    out.summary(summary)
    return summary


def _count(summary: BatchSummary, r: VideoResult) -> None:
    setattr(summary, r.status, getattr(summary, r.status) + 1)
    if r.status != "ok":
        summary.not_ok[r.id] = f"{r.status}: {r.error}"


def _schedule(
    eng: _LocalEngine | _RayEngine,
    todo: deque[tuple[BatchItem, int]],
    timeout: float | None,
    retries: int,
    finish: Callable[[VideoResult], None],
) -> None:
    """Hand one item at a time to each ready worker; collect results; kill what overruns."""
    running: dict[int, tuple[BatchItem, float, int]] = {}
    while todo or running:
        for i, s in enumerate(eng.slots):
            if todo and s.ready and not s.busy:
                item, attempt = todo.popleft()
                eng.submit(i, item)
                running[i] = (item, time.monotonic(), attempt)
        wait_s = 0.5
        if timeout is not None and running:
            nearest = min(t for _, t, _ in running.values()) + timeout - time.monotonic()
            wait_s = max(0.01, min(wait_s, nearest))
        for i, ev in eng.wait(wait_s):
            if i not in running:
                continue
            item, started, attempt = running.pop(i)
            if isinstance(ev, VideoResult):
                ev.attempts = attempt
                finish(ev)
            elif attempt <= retries:
                log.warning("%s: %s; trying again on a new worker", item.path, ev.reason)
                todo.appendleft((item, attempt + 1))
            else:
                finish(_failed(item, ev.reason, "failed", attempt, started))
        if timeout is not None:
            now = time.monotonic()
            for i, (item, started, attempt) in list(running.items()):
                if now - started > timeout:
                    running.pop(i)
                    eng.replace(i)  # kill the hung worker (and its ffmpeg), start a fresh one
                    why = f"no result after {timeout:g} s: worker killed"
                    finish(_failed(item, why, "timeout", attempt, started))


def _failed(
    item: BatchItem, error: str, status: Status, attempt: int, started: float
) -> VideoResult:
    return VideoResult(
        id=item.id, path=item.path, status=status, error=error, attempts=attempt,
        total_seconds=round(time.monotonic() - started, 3),
        # Never hash here: the job process must not block on a FIFO or a hung network mount.
        sha256=None,
    )  # fmt: skip


__all__ = [
    "MANIFEST_NAME",
    "SUMMARY_NAME",
    "VIDEO_EXTENSIONS",
    "BatchError",
    "BatchItem",
    "BatchSummary",
    "PerceiverResources",
    "RayWorker",
    "VideoResult",
    "actor_resources",
    "collect_inputs",
    "comparable_record",
    "file_sha256",
    "perceiver_resources",
    "process_video",
    "run_batch",
    "safe_id",
]
