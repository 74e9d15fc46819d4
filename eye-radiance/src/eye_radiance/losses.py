"""Photometric loss on cornea pixels and the radial prior on the iris texture (Sec. 3.2-3.3)."""

from __future__ import annotations

import math

import torch

from .model import IrisTexture


def photometric_loss(pred: torch.Tensor, target: torch.Tensor, hit: torch.Tensor) -> torch.Tensor:
    """L_recon: mean squared error over rays that hit the (refined) cornea. [N, 3], [N, 3], [N]."""
    if not hit.any():
        return pred.sum() * 0.0
    return ((pred - target) ** 2)[hit].mean()


def rotate_uv(uv: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """Rotate texture coordinates [N, 2] about the limbus centre by angle [N] (radians)."""
    cos, sin = torch.cos(angle), torch.sin(angle)
    return torch.stack([cos * uv[:, 0] - sin * uv[:, 1], sin * uv[:, 0] + cos * uv[:, 1]], dim=1)


def radial_prior(
    texture: IrisTexture,
    uv: torch.Tensor,
    eye: torch.Tensor,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """L_radial = || T(p) - T(R p) ||^2 with R a random rotation about the iris centre (Sec. 3.2):
    zero exactly when the texture is radially symmetric, so the prior keeps angular detail (the
    scene) out of the iris. uv [N, 2], eye [N] -> scalar (mean over rays and channels)."""
    angle = torch.rand(uv.shape[0], generator=generator, device=uv.device) * 2 * math.pi
    return ((texture(uv, eye) - texture(rotate_uv(uv, angle), eye)) ** 2).mean()
