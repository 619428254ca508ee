"""Make ``import torchvision`` work where its compiled ops cannot load.

The only torchvision wheel that pins torch 2.13.0 (torchvision 0.28.0) is a CUDA build. On a CPU
torch its ``_C`` extension fails to load, so ``torchvision::nms`` is never defined and the import
dies in ``torchvision._meta_registrations`` ("operator torchvision::nms does not exist").
ultralytics imports torchvision during model warm-up and then uses ``torchvision.ops.nms``.

`ensure_torchvision` imports torchvision; only if that fails because the real op is missing does
it define ``torchvision::nms`` (and ``qnms``, which the meta registrations also reference) with a
pure-torch CPU kernel, re-import, and tell torchvision its ops are present. Where torchvision
works, it is a plain import. The other compiled ops (roi_align, deform_conv…) stay missing:
roi_align has its own pure-Python path, the rest fail when called, naming the missing operator.
"""

from __future__ import annotations

import threading
from types import ModuleType
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import torch

__all__ = ["ensure_torchvision", "nms_reference", "torchvision_mode"]

_NMS_SCHEMA = "(Tensor dets, Tensor scores, float iou_threshold) -> Tensor"

_lock = threading.Lock()
_mode: Literal["native", "fallback"] | None = None
# The torch.library.Library that holds our registrations: it unregisters them when collected.
_lib: object | None = None


def nms_reference(dets: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy non-maximum suppression, the semantics of ``torchvision.ops.nms`` in plain torch.

    Boxes are ``(x1, y1, x2, y2)``; boxes are visited by decreasing score (stable for ties, like
    torchvision's CPU kernel) and a box is dropped when its IoU with a kept box is *greater* than
    `iou_threshold` (a NaN IoU, from two empty boxes, drops nothing — as in torchvision). Returns
    int64 indices of the kept boxes in decreasing score order.
    """
    import torch

    if dets.dim() != 2 or dets.size(1) != 4:
        raise ValueError(f"nms: boxes must be a (N, 4) tensor, got shape {tuple(dets.shape)}")
    if scores.dim() != 1 or scores.size(0) != dets.size(0):
        raise ValueError(
            f"nms: scores must be a (N,) tensor matching {dets.size(0)} boxes, "
            f"got shape {tuple(scores.shape)}"
        )
    if dets.numel() == 0:
        return torch.empty(0, dtype=torch.long, device=dets.device)
    order = torch.sort(scores, dim=0, descending=True, stable=True).indices
    boxes = dets[order]
    x1, y1, x2, y2 = boxes.unbind(1)
    areas = (x2 - x1) * (y2 - y1)
    keep: list[int] = []
    # One pass per *kept* box, each vectorized over the boxes still alive: O(kept x N) work
    # without the N x N IoU matrix (ultralytics sends up to 30k boxes before NMS).
    alive = torch.arange(boxes.size(0), device=dets.device)
    while alive.numel() > 0:
        i = int(alive[0])
        keep.append(i)
        rest = alive[1:]
        w = (torch.minimum(x2[i], x2[rest]) - torch.maximum(x1[i], x1[rest])).clamp(min=0)
        h = (torch.minimum(y2[i], y2[rest]) - torch.maximum(y1[i], y1[rest])).clamp(min=0)
        inter = w * h
        iou = inter / (areas[i] + areas[rest] - inter)
        alive = rest[~(iou > iou_threshold)]
    return order[torch.tensor(keep, dtype=torch.long, device=dets.device)]


def _qnms_reference(dets: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    # torchvision passes the integer representation of quantized tensors. IoU does not change
    # under the shared scale and zero point, so NMS on those integers (as float64) is the same.
    import torch

    return nms_reference(dets.to(torch.float64), scores.to(torch.float64), iou_threshold)


def _op_defined(name: str) -> bool:
    import torch

    return hasattr(torch.ops.torchvision, name)


def _register_fallback_ops() -> None:
    """Define the ops torchvision's import needs and give them CPU kernels (once)."""
    global _lib
    import torch

    lib = torch.library.Library("torchvision", "FRAGMENT")
    for name, kernel in (("nms", nms_reference), ("qnms", _qnms_reference)):
        if not _op_defined(name):
            lib.define(name + _NMS_SCHEMA)
            lib.impl(name, kernel, "CPU")
    _lib = lib


def _is_missing_op_error(e: BaseException) -> bool:
    return "torchvision::nms" in str(e) and "does not exist" in str(e)


def ensure_torchvision() -> ModuleType:
    """Import torchvision, registering a CPU ``torchvision::nms`` first if its own is missing.

    Idempotent and thread-safe; where torchvision's compiled ops load, it only imports it.
    Returns the torchvision module.
    """
    global _mode
    with _lock:
        if _mode is not None:
            import torchvision

            return torchvision
        try:
            import torchvision
        except RuntimeError as e:
            if not _is_missing_op_error(e) or _op_defined("nms"):
                raise
            # The failed import left its finished submodules in sys.modules; the retry reuses
            # them and re-runs only the failed part (_meta_registrations), now against our ops.
            _register_fallback_ops()
            import torchvision
            import torchvision.extension

            # Loading `_C` failed, so torchvision believes it has no ops and `ops.nms` would refuse
            # to run; `nms` exists now. (Set after the import: at import time `True` would make
            # the meta registrations look up roi_align & co., which do not exist.)
            torchvision.extension._has_ops = lambda: True
            _mode = "fallback"
            return torchvision
        _mode = "native"
        return torchvision


def torchvision_mode() -> Literal["native", "fallback"] | None:
    """How torchvision got imported: its own ops, our CPU fallback, or not yet (None)."""
    return _mode


def import_transformers() -> ModuleType:
    """transformers, after making torchvision importable (transformers imports it whenever it is
    installed). Weight-loading progress bars are turned off: they would interleave with vidchat's
    own progress display and with streamed answers."""
    import importlib.util

    if importlib.util.find_spec("torchvision") is not None:
        ensure_torchvision()
    import transformers

    transformers.utils.logging.disable_progress_bar()
    return transformers
