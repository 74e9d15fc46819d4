"""Box conversions and (generalised) IoU.

Conventions: `cxcywh` = (centre x, centre y, width, height); `xyxy` = (x1, y1, x2, y2);
`xywh` = (x, y, width, height) as stored in CrowdHuman/COCO files. A *pair* box is 8 numbers:
body (first 4) then face (last 4), each cxcywh normalised to [0, 1] by image width/height.

Shapes: N, M numbers of boxes.
"""

from __future__ import annotations

import numpy as np
import torch


def box_cxcywh_to_xyxy(boxes: torch.Tensor) -> torch.Tensor:
    """[..., 4] cxcywh -> [..., 4] xyxy."""
    cx, cy, w, h = boxes.unbind(-1)
    return torch.stack([cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h], dim=-1)


def box_xyxy_to_cxcywh(boxes: torch.Tensor) -> torch.Tensor:
    """[..., 4] xyxy -> [..., 4] cxcywh."""
    x1, y1, x2, y2 = boxes.unbind(-1)
    return torch.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], dim=-1)


def xywh_to_xyxy(boxes: np.ndarray) -> np.ndarray:
    """[N, 4] xywh (numpy, pixels) -> [N, 4] xyxy."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], axis=1)


def xyxy_to_xywh(boxes: np.ndarray) -> np.ndarray:
    """[N, 4] xyxy (numpy, pixels) -> [N, 4] xywh."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)


def box_area(boxes: torch.Tensor) -> torch.Tensor:
    """[N, 4] xyxy -> [N] area."""
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def box_iou(boxes1: torch.Tensor, boxes2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Pairwise IoU and union of [N, 4] and [M, 4] xyxy boxes -> ([N, M], [N, M])."""
    area1, area2 = box_area(boxes1), box_area(boxes2)
    top_left = torch.max(boxes1[:, None, :2], boxes2[None, :, :2])  # [N, M, 2]
    bottom_right = torch.min(boxes1[:, None, 2:], boxes2[None, :, 2:])  # [N, M, 2]
    wh = (bottom_right - top_left).clamp(min=0)  # [N, M, 2]
    inter = wh[..., 0] * wh[..., 1]  # [N, M]
    union = area1[:, None] + area2[None, :] - inter
    return inter / union, union


def generalized_box_iou(boxes1: torch.Tensor, boxes2: torch.Tensor) -> torch.Tensor:
    """Pairwise GIoU (Rezatofighi et al. 2019) of [N, 4] and [M, 4] xyxy boxes -> [N, M].

    GIoU = IoU - (|C| - |A u B|) / |C| with C the smallest enclosing box; in [-1, 1].
    """
    assert boxes1.shape[-1] == 4 and boxes2.shape[-1] == 4, (boxes1.shape, boxes2.shape)
    iou, union = box_iou(boxes1, boxes2)
    top_left = torch.min(boxes1[:, None, :2], boxes2[None, :, :2])  # [N, M, 2]
    bottom_right = torch.max(boxes1[:, None, 2:], boxes2[None, :, 2:])  # [N, M, 2]
    wh = (bottom_right - top_left).clamp(min=0)
    enclosing = wh[..., 0] * wh[..., 1]  # [N, M]
    return iou - (enclosing - union) / enclosing


def numpy_iou(dt: np.ndarray, gt: np.ndarray, crowd: np.ndarray | None = None) -> np.ndarray:
    """Pairwise overlap of [D, 4] and [G, 4] xyxy boxes (numpy) -> [D, G].

    For a ground truth flagged `crowd` (ignore region) the overlap is intersection over the
    *detection* area (IoA), as in the CrowdHuman/Caltech evaluation tools.
    """
    dt = np.asarray(dt, dtype=np.float64).reshape(-1, 4)
    gt = np.asarray(gt, dtype=np.float64).reshape(-1, 4)
    iw = np.minimum(dt[:, None, 2], gt[None, :, 2]) - np.maximum(dt[:, None, 0], gt[None, :, 0])
    ih = np.minimum(dt[:, None, 3], gt[None, :, 3]) - np.maximum(dt[:, None, 1], gt[None, :, 1])
    inter = np.clip(iw, 0, None) * np.clip(ih, 0, None)  # [D, G]
    area_dt = ((dt[:, 2] - dt[:, 0]) * (dt[:, 3] - dt[:, 1]))[:, None]
    area_gt = ((gt[:, 2] - gt[:, 0]) * (gt[:, 3] - gt[:, 1]))[None, :]
    union = area_dt + area_gt - inter
    if crowd is not None:
        union = np.where(np.asarray(crowd, dtype=bool)[None, :], area_dt, union)
    return inter / np.maximum(union, 1e-12)
