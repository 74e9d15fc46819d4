"""Training losses (Sec. 3.3): reconstruction of x0, velocity term, optional lip-vertex term.

Shapes: B batch, T frames, E expression-code size, V vertices.

L = L_simple + lambda_vel * L_vel + lambda_lip * L_lip, with
  L_simple = || x0 - x0_hat ||^2                      (x0-prediction objective)
  L_vel    = || (x0[1:] - x0[:-1]) - (x0_hat[1:] - x0_hat[:-1]) ||^2   (temporal smoothness)
  L_lip    = || M(x0_hat)_lips - M(x0)_lips ||^2        (decoded lip vertices, procedural head)
"""

from __future__ import annotations

import torch


def reconstruction_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error over all elements; pred/target [B, T, E]."""
    assert pred.shape == target.shape, (pred.shape, target.shape)
    return (pred - target).pow(2).mean()


def velocity_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """MSE of first temporal differences; [B, T, E] with T >= 2."""
    assert pred.shape == target.shape and pred.shape[1] >= 2, (pred.shape, target.shape)
    return (pred.diff(dim=1) - target.diff(dim=1)).pow(2).mean()


def _reference_velocity_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Explicit frame loop (test oracle)."""
    total, count = pred.new_zeros(()), 0
    for i in range(1, pred.shape[1]):
        d = (pred[:, i] - pred[:, i - 1]) - (target[:, i] - target[:, i - 1])
        total = total + d.pow(2).sum()
        count += d.numel()
    return total / count


def lip_vertex_loss(pred_vertices: torch.Tensor, target_vertices: torch.Tensor,
                    lip_indices: torch.Tensor) -> torch.Tensor:
    """Mean squared lip-vertex distance; vertices [B, T, V, 3]."""
    diff = pred_vertices[..., lip_indices, :] - target_vertices[..., lip_indices, :]
    return diff.pow(2).sum(-1).mean()
