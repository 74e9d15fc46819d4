"""Evaluation metrics on decoded meshes (Sec. 4), with the community's conventions.

Shapes: T frames, V vertices, K samples.

* LVE (lip vertex error): per frame the maximal squared L2 distance over lip vertices, averaged
  over frames (FaceFormer/CodeTalker evaluation scripts square the distance).
* FDD (upper-face dynamics deviation, CodeTalker): per upper-face vertex, the std over time of
  its squared displacement from the neutral mesh; averaged over vertices; FDD = gt - pred
  (positive = generated upper face moves less than the ground truth).
* Diversity: K samples for the same audio are split in two halves and paired; the mean per-vertex
  L2 distance of each pair, averaged (FaceDiffuser-style protocol; K = 10 there).
* Lip-sync correlation: Pearson correlation between per-frame audio RMS energy and mouth opening.
"""

from __future__ import annotations

import torch


def lip_vertex_error(pred: torch.Tensor, gt: torch.Tensor, lip_indices: torch.Tensor) -> float:
    """pred, gt: [T, V, 3]."""
    d2 = (pred[:, lip_indices] - gt[:, lip_indices]).pow(2).sum(-1)  # [T, L]
    return float(d2.max(dim=1).values.mean())


def _reference_lip_vertex_error(pred, gt, lip_indices) -> float:
    per_frame = []
    for f in range(pred.shape[0]):
        per_frame.append(max(float(((pred[f, v] - gt[f, v]) ** 2).sum()) for v in lip_indices))
    return sum(per_frame) / len(per_frame)


def upper_face_dynamics(vertices: torch.Tensor, neutral: torch.Tensor,
                        upper_indices: torch.Tensor) -> float:
    """Mean over upper-face vertices of std_t ||v_t - v_neutral||^2; vertices [T, V, 3]."""
    motion = (vertices[:, upper_indices] - neutral[upper_indices]).pow(2).sum(-1)  # [T, U]
    return float(motion.std(dim=0, unbiased=False).mean())


def fdd(pred: torch.Tensor, gt: torch.Tensor, neutral: torch.Tensor,
        upper_indices: torch.Tensor) -> float:
    return upper_face_dynamics(gt, neutral, upper_indices) - upper_face_dynamics(
        pred, neutral, upper_indices)


def diversity(samples: torch.Tensor) -> float:
    """samples: [K, T, V, 3], K >= 2 -> mean pairwise (half-split) per-vertex L2 distance."""
    k = samples.shape[0]
    if k < 2:
        raise ValueError("diversity needs at least 2 samples")
    half = k // 2
    a, b = samples[:half], samples[half: 2 * half]
    return float((a - b).norm(dim=-1).mean())


def pearson(x: torch.Tensor, y: torch.Tensor) -> float:
    x, y = x.double() - x.double().mean(), y.double() - y.double().mean()
    denom = x.norm() * y.norm()
    return float((x * y).sum() / denom) if denom > 0 else 0.0
