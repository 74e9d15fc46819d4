"""Diffusion over expression-code sequences with diffusers' schedulers.

Shapes: B batch, T frames, E expression-code size.

Forward process q(x_t | x_0) = N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I) (DDPM, Ho et al.
Eq. 4) via `DDPMScheduler.add_noise`; training draws t uniformly. The network predicts x_0
(`prediction_type="sample"`, as in motion diffusion models) or epsilon. Sampling runs DDPM
ancestral steps or DDIM (eta = 0) with classifier-free guidance.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from diffusers import DDIMScheduler, DDPMScheduler

from .runtime import ConfigError


def make_scheduler(kind: str, train_steps: int, beta_schedule: str, prediction: str):
    """A diffusers scheduler: kind in {"ddpm", "ddim"} (DDPM is also the training scheduler)."""
    common = {"num_train_timesteps": train_steps, "beta_schedule": beta_schedule,
              "prediction_type": prediction, "clip_sample": False}
    if kind == "ddpm":
        return DDPMScheduler(**common, variance_type="fixed_small")
    if kind == "ddim":
        return DDIMScheduler(**common, set_alpha_to_one=True)
    raise ConfigError(f"unknown sampler {kind!r}", "expected 'ddpm' or 'ddim'")


def q_sample(scheduler, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """x_t = sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) noise (scheduler's add_noise)."""
    return scheduler.add_noise(x0, noise, t)


def _reference_q_sample(alphas_cumprod: torch.Tensor, x0: torch.Tensor, noise: torch.Tensor,
                        t: torch.Tensor) -> torch.Tensor:
    """Slow, explicit Eq. 4 for tests."""
    out = torch.empty_like(x0)
    for b in range(x0.shape[0]):
        ab = alphas_cumprod[t[b]]
        out[b] = ab.sqrt() * x0[b] + (1 - ab).sqrt() * noise[b]
    return out


def x0_from_eps(alphas_cumprod: torch.Tensor, x_t: torch.Tensor, eps: torch.Tensor,
                t: torch.Tensor) -> torch.Tensor:
    """Invert the forward process given the noise: x0 = (x_t - sqrt(1-ab) eps) / sqrt(ab)."""
    ab = alphas_cumprod.to(x_t.device)[t].view(-1, *([1] * (x_t.dim() - 1))).to(x_t.dtype)
    return (x_t - (1 - ab).sqrt() * eps) / ab.sqrt()


@torch.no_grad()
def sample(denoise: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], shape: tuple,
           scheduler, num_steps: int, generator: torch.Generator | None = None,
           device: torch.device | str = "cpu", progress: bool = False) -> torch.Tensor:
    """Run the reverse process from pure noise.

    Args:
        denoise: f(x_t [B, T, E], t [B]) -> model output (x0 or eps, as the scheduler expects);
            classifier-free guidance is applied inside f.
        shape: (B, T, E).
        num_steps: inference steps (DDPM uses the schedule's own spacing).
    Returns:
        [B, T, E] x0 sample.
    """
    x = torch.randn(shape, generator=generator, device="cpu").to(device)
    scheduler.set_timesteps(num_steps, device=device)
    steps = scheduler.timesteps
    if progress:
        from tqdm import tqdm

        steps = tqdm(steps, desc="sampling", leave=False)
    for t in steps:
        tt = torch.full((shape[0],), int(t), device=device, dtype=torch.long)
        out = denoise(x, tt)
        x = scheduler.step(out, t, x, generator=generator).prev_sample
    return x
