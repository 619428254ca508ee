"""The CPU ``torchvision::nms`` fallback: brute-force NMS answers, and ultralytics imports."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from vidchat.kernel.compat import ensure_torchvision, nms_reference, torchvision_mode


def brute_force_nms(boxes: np.ndarray, scores: np.ndarray, thr: float) -> list[int]:
    """Textbook greedy NMS over Python scalars of the boxes' own dtype."""
    order = sorted(range(len(scores)), key=lambda i: -scores[i])  # sorted() is stable
    suppressed = [False] * len(order)
    keep = []
    for a, i in enumerate(order):
        if suppressed[a]:
            continue
        keep.append(i)
        x1, y1, x2, y2 = boxes[i]
        area_i = (x2 - x1) * (y2 - y1)
        for b in range(a + 1, len(order)):
            j = order[b]
            if suppressed[b]:
                continue
            u1, v1, u2, v2 = boxes[j]
            w = max(boxes.dtype.type(0), min(x2, u2) - max(x1, u1))
            h = max(boxes.dtype.type(0), min(y2, v2) - max(y1, v1))
            inter = w * h
            iou = inter / (area_i + (u2 - u1) * (v2 - v1) - inter)
            if iou > thr:
                suppressed[b] = True
    return keep


def random_boxes(rng: np.random.Generator, n: int, dtype: type) -> tuple[np.ndarray, np.ndarray]:
    # Clustered boxes so that plenty of them overlap, as detections of one object do.
    centers = rng.uniform(0, 200, size=(max(1, n // 8), 2))
    c = centers[rng.integers(0, len(centers), size=n)] + rng.normal(0, 6, size=(n, 2))
    wh = rng.uniform(5, 60, size=(n, 2))
    boxes = np.concatenate([c - wh / 2, c + wh / 2], axis=1).astype(dtype)
    scores = rng.uniform(0, 1, size=n).astype(dtype)
    return boxes, scores


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("thr", [0.3, 0.5, 0.7])
def test_nms_matches_brute_force(dtype: type, thr: float) -> None:
    tv = ensure_torchvision()
    rng = np.random.default_rng(int(thr * 10) + (dtype is np.float32))
    for n in (1, 7, 60, 300):
        boxes, scores = random_boxes(rng, n, dtype)
        expected = brute_force_nms(boxes, scores, thr)
        got = tv.ops.nms(torch.from_numpy(boxes), torch.from_numpy(scores), thr).tolist()
        assert got == expected, f"n={n}"
        # The kernel itself, as called by torch.ops (the fallback's implementation when active).
        assert nms_reference(torch.from_numpy(boxes), torch.from_numpy(scores), thr).tolist() == (
            expected
        )


def test_nms_edge_cases() -> None:
    tv = ensure_torchvision()
    empty = tv.ops.nms(torch.zeros((0, 4)), torch.zeros(0), 0.5)
    assert empty.dtype == torch.int64 and empty.shape == (0,)
    # Identical boxes: only the best survives; disjoint boxes: all survive, best first.
    same = torch.tensor([[0.0, 0, 10, 10]] * 3)
    assert tv.ops.nms(same, torch.tensor([0.2, 0.9, 0.5]), 0.5).tolist() == [1]
    apart = torch.tensor([[0.0, 0, 1, 1], [5, 5, 6, 6], [9, 9, 10, 10]])
    assert tv.ops.nms(apart, torch.tensor([0.1, 0.3, 0.2]), 0.5).tolist() == [1, 2, 0]
    # IoU exactly at the threshold is kept (torchvision suppresses only IoU > threshold).
    half = torch.tensor([[0.0, 0, 2, 1], [0, 0, 1, 1]])  # IoU 0.5
    assert tv.ops.nms(half, torch.tensor([0.9, 0.8]), 0.5).tolist() == [0, 1]
    assert tv.ops.nms(half, torch.tensor([0.9, 0.8]), 0.49).tolist() == [0]


def test_batched_nms_keeps_classes_apart() -> None:
    tv = ensure_torchvision()
    boxes = torch.tensor([[0.0, 0, 10, 10], [1, 1, 10, 10], [0, 0, 10, 10]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    idxs = torch.tensor([0, 0, 1])
    assert tv.ops.batched_nms(boxes, scores, idxs, 0.5).tolist() == [0, 2]


@pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor:UserWarning")
def test_quantized_nms_agrees_with_float() -> None:
    tv = ensure_torchvision()
    rng = np.random.default_rng(3)
    boxes, _ = random_boxes(rng, 40, np.float32)
    boxes = np.clip(boxes, 0, 250)
    scores = rng.permutation(np.arange(40, dtype=np.float32) / 40.0)  # distinct after quantizing
    qb = torch.quantize_per_tensor(torch.from_numpy(boxes), 1.0, 0, torch.quint8)
    qs = torch.quantize_per_tensor(torch.from_numpy(scores), 1 / 255, 0, torch.quint8)
    got = tv.ops.nms(qb, qs, 0.5).tolist()
    expected = brute_force_nms(
        qb.dequantize().numpy().astype(np.float64), qs.dequantize().numpy().astype(np.float64), 0.5
    )
    assert got == expected


def test_ensure_is_idempotent() -> None:
    first = ensure_torchvision()
    assert ensure_torchvision() is first
    assert torchvision_mode() in ("native", "fallback")


def test_fresh_interpreter_threads_then_ultralytics() -> None:
    """In a new process (torchvision not yet imported): racing threads, then ultralytics."""
    code = textwrap.dedent(
        """
        import sys, threading
        from vidchat.kernel.compat import ensure_torchvision, torchvision_mode
        mods, errors = [], []
        def work():
            try:
                mods.append(ensure_torchvision())
            except Exception as e:  # report, do not hide
                errors.append(repr(e))
        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads: t.start()
        for t in threads: t.join()
        assert not errors, errors
        assert len({id(m) for m in mods}) == 1
        import torch, ultralytics
        from ultralytics.utils.nms import non_max_suppression
        pred = torch.zeros((1, 6, 3))  # (batch, 4 box + 2 classes, anchors)
        pred[0, :4, 0] = torch.tensor([50.0, 50, 20, 20])
        pred[0, :4, 1] = torch.tensor([51.0, 50, 20, 20])
        pred[0, :4, 2] = torch.tensor([150.0, 50, 20, 20])
        pred[0, 4, :] = torch.tensor([0.9, 0.8, 0.7])
        out = non_max_suppression(pred, conf_thres=0.25, iou_thres=0.5)[0]
        assert "torchvision" in sys.modules
        print(torchvision_mode(), ultralytics.__version__, out.shape[0])
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "YOLO_OFFLINE": "1", "YOLO_VERBOSE": "false"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    mode, _version, kept = proc.stdout.split()
    assert mode in ("native", "fallback")
    assert kept == "2"  # the two overlapping boxes merged, the far one kept
