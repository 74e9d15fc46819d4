"""Losses of the official model (`eyenerf_model.py`, get_loss_dict): MSE on the cornea pixels,
the robust rotation prior on the iris texture, nerfstudio's interlevel and distortion losses.
Shapes: K rays (that hit the cornea), A rotation angles, C = 3 colour channels.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F

from .cornea import iris_texture_coords


def random_angles(num: int, device: torch.device, generator: torch.Generator | None = None):
    """`num` angles uniform in [0, 2 pi) drawn on `device` (the generator, when given, must live
    on that device: torch.rand refuses a CPU generator for CUDA tensors)."""
    if generator is not None and generator.device.type != torch.device(device).type:
        raise ValueError(f"generator on {generator.device} for tensors on {device}")
    return 2 * math.pi * torch.rand(num, device=device, generator=generator)


def rotate_coords(eye_coords: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """Rotate limbus-plane coordinates [K, 2] about the iris centre by each angle [A] ->
    [A, K, 2] (counter-clockwise, the official matrices [[c, -s], [s, c]])."""
    cos, sin = torch.cos(angles)[:, None], torch.sin(angles)[:, None]  # [A, 1]
    x, y = eye_coords[None, :, 0], eye_coords[None, :, 1]  # [1, K]
    return torch.stack([cos * x - sin * y, sin * x + cos * y], dim=-1)  # [A, K, 2]


def robust_rotation_prior(texture_rot: torch.Tensor, mode: str = "robust") -> torch.Tensor:
    """Rotation prior on T evaluated at A rotations of each point, texture_rot [A, K, C].

    "robust" (official): per point, a rotation whose colour is, in any channel, above
    p90 + std or below p10 - std of that channel over the rotations is an outlier; the loss is
    the MSE of the outliers' (all channels') deviation from the mean over rotations. An empty
    outlier set gives 0 (the official mse of an empty tensor is NaN, whose step its
    mixed-precision grad scaler then skips). "all": the MSE of every deviation from the mean.
    """
    assert texture_rot.ndim == 3, texture_rot.shape
    mean = texture_rot.mean(dim=0, keepdim=True)  # [1, K, C]
    diff = texture_rot - mean
    if mode == "all":
        return (diff**2).mean()
    p90 = torch.quantile(texture_rot, 0.9, dim=0, keepdim=True)
    p10 = torch.quantile(texture_rot, 0.1, dim=0, keepdim=True)
    std = texture_rot.std(dim=0, keepdim=True)  # unbiased, as torch.std
    bad = ((texture_rot > p90 + std) | (texture_rot < p10 - std)).any(dim=-1)  # [A, K]
    if not bool(bad.any()):
        return diff.sum() * 0.0
    return F.mse_loss(diff[bad], torch.zeros_like(diff[bad]))


def rotation_prior_loss(
    texture: Callable[[torch.Tensor], torch.Tensor],
    eye_coords: torch.Tensor,
    num_angles: int = 20,
    mode: str = "robust",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Evaluate T at `num_angles` random rotations (one set per batch, official) of the
    limbus-plane coordinates [K, 2] and apply `robust_rotation_prior`."""
    angles = random_angles(num_angles, eye_coords.device, generator)
    rotated = rotate_coords(eye_coords, angles)  # [A, K, 2]; scaling by 1/sqrt(2) commutes
    coords = iris_texture_coords(rotated.reshape(-1, 2))  # official: rotate, then clip
    values = texture(coords).reshape(num_angles, eye_coords.shape[0], -1)  # [A, K, C]
    return robust_rotation_prior(values, mode)


def reconstruction_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """MSE over the cornea rays that hit the refined cap (the official drops the others)."""
    if pred.shape[0] == 0:
        return pred.sum() * 0.0
    return F.mse_loss(pred, target)


def field_losses(weights_list: list, ray_samples_list: list) -> dict[str, torch.Tensor]:
    """nerfstudio's interlevel (proposal) and distortion losses, unweighted."""
    from nerfstudio.model_components.losses import distortion_loss, interlevel_loss

    if weights_list[0].shape[0] == 0:
        zero = weights_list[-1].sum() * 0.0
        return {"interlevel": zero, "distortion": zero}
    return {"interlevel": interlevel_loss(weights_list, ray_samples_list),
            "distortion": distortion_loss(weights_list, ray_samples_list)}
