"""GAN objectives and GSM regularisers (Sec. 3.5; official `training/loss.py`).

- Non-saturating logistic loss (StyleGAN2): L_G = softplus(-D(G(z))), L_D = softplus(D(G(z)))
  + softplus(-D(x)).
- Lazy R1 on real images: (gamma / 2) * ||grad_x D(x)||^2, applied every `interval` D steps and
  scaled by the interval (StyleGAN2 Sec. 3.1 / Appendix B).
- Scale regulariser: L1 of the pre-activation (log) scale texture above `ref_scale` (official
  reg_weight 0.1, ref_scale -5, clamp on), summed over x/y/z: keeps Gaussians small.
- Opacity regulariser: inside the UV mask, the opacities of a texel summed over the shells should
  be 1 (official opacity_reg 1.0): one opaque layer per surface point.
- Discriminator-input blur fading out over training (official blur_init_sigma 10).

Shapes: B batch, S shells, R texture resolution.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def g_nonsaturating(fake_logits: torch.Tensor) -> torch.Tensor:
    """mean softplus(-D(G(z)))."""
    return F.softplus(-fake_logits).mean()


def d_logistic(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """mean softplus(D(G(z))) + mean softplus(-D(x))."""
    return F.softplus(fake_logits).mean() + F.softplus(-real_logits).mean()


def r1_penalty(real_img: torch.Tensor, real_logits: torch.Tensor) -> torch.Tensor:
    """Per-sample ||grad_x D(x)||^2, mean over the batch; real_img must require grad."""
    (grad,) = torch.autograd.grad(real_logits.sum(), real_img, create_graph=True)
    return grad.square().sum([1, 2, 3]).mean()


def scale_regularizer(log_scale_tex: torch.Tensor, ref_scale: float, uv_mask: torch.Tensor,
                      clamp: bool = True) -> torch.Tensor:
    """L1 of log-scales above ref_scale inside the UV mask, summed over the 3 axes and averaged
    over the masked texels of every sample and shell (official `loss_clamp_l1`, whose
    denominator counts texels, not texel-axes).

    Args:
        log_scale_tex: [B, S, 3, R, R] pre-activation scales. uv_mask: [R, R] in [0, 1].
    """
    diff = log_scale_tex - ref_scale
    loss_map = diff.clamp(min=0).abs() if clamp else diff.abs()
    batch, shells = log_scale_tex.shape[:2]
    weight = uv_mask[None, None, None]
    return (loss_map * weight).sum() / (uv_mask.sum() * batch * shells).clamp(min=1e-8)


def opacity_regularizer(opacity_tex: torch.Tensor, uv_mask: torch.Tensor) -> torch.Tensor:
    """mean over masked texels of |sum_s sigmoid(opacity_s) - 1|.

    Args:
        opacity_tex: [B, S, 1, R, R] pre-activation opacities. uv_mask: [R, R].
    """
    total = torch.sigmoid(opacity_tex).sum(dim=(1, 2))  # [B, R, R]
    loss = (total - 1).abs() * uv_mask
    return loss.sum() / (uv_mask.sum() * total.shape[0]).clamp(min=1e-8)


def blur_sigma(step: int, init_sigma: float, fade_steps: int) -> float:
    """Linear fade of the D-input blur: init_sigma at step 0, zero after fade_steps."""
    if fade_steps <= 0:
        return 0.0
    return max(1.0 - step / fade_steps, 0.0) * init_sigma


def blur(img: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur with support floor(3 sigma) (official `run_D` blur)."""
    size = math.floor(sigma * 3)
    if size <= 0:
        return img
    x = torch.arange(-size, size + 1, device=img.device, dtype=img.dtype)
    f = torch.exp2(-(x / sigma).square())
    f = f / f.sum()
    ch = img.shape[1]
    img = F.conv2d(F.pad(img, (size, size, 0, 0), mode="replicate"),
                   f.reshape(1, 1, 1, -1).repeat(ch, 1, 1, 1), groups=ch)
    return F.conv2d(F.pad(img, (0, 0, size, size), mode="replicate"),
                    f.reshape(1, 1, -1, 1).repeat(ch, 1, 1, 1), groups=ch)
