"""Diagonal Gaussians and the pixel likelihoods (Bernoulli, discretised logistic).

Shapes: B batch, D any trailing latent or pixel dims. Log-densities are summed per example.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

LOG_2PI = math.log(2 * math.pi)


def _sum_per_example(t: torch.Tensor) -> torch.Tensor:
    """[B, ...] -> [B]."""
    return t.flatten(1).sum(1)


@dataclass
class Gaussian:
    """N(mean, diag(std^2)); mean and std are [B, ...]."""

    mean: torch.Tensor
    std: torch.Tensor

    def rsample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        """Reparameterised sample z = mean + std * eps (the policy's action, Sec. 4)."""
        eps = torch.randn(self.mean.shape, generator=generator, device=self.mean.device,
                          dtype=self.mean.dtype)
        return self.mean + self.std * eps

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log N(z; mean, std^2) summed over all but the batch dim -> [B]."""
        var = self.std**2
        return _sum_per_example(-0.5 * (LOG_2PI + torch.log(var) + (z - self.mean) ** 2 / var))

    def log_prob_elementwise(self, z: torch.Tensor) -> torch.Tensor:
        """log N(z; mean, std^2) per element -> [B, ...]."""
        var = self.std**2
        return -0.5 * (LOG_2PI + torch.log(var) + (z - self.mean) ** 2 / var)


def kl_analytic(q: Gaussian, p: Gaussian) -> torch.Tensor:
    """KL(q || p) of diagonal Gaussians in closed form, summed per example -> [B]."""
    var_ratio = (q.std / p.std) ** 2
    mean_term = ((q.mean - p.mean) / p.std) ** 2
    return _sum_per_example(0.5 * (var_ratio + mean_term - 1 - torch.log(var_ratio)))


def kl_sample(q: Gaussian, p: Gaussian, z: torch.Tensor) -> torch.Tensor:
    """Single-sample KL estimate log q(z) - log p(z) per element -> [B, ...].

    This is the estimator the official code uses (`kl_elementwise`); its expectation over
    z ~ q is `kl_analytic`. Elementwise so that free nats can be applied per unit.
    """
    return q.log_prob_elementwise(z) - p.log_prob_elementwise(z)


def bernoulli_log_prob(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """log p(x | logits) for binary x, summed per example -> [B]."""
    return -_sum_per_example(F.binary_cross_entropy_with_logits(logits, x, reduction="none"))


def discretized_logistic_log_prob(params: torch.Tensor, x: torch.Tensor,
                                  bins: int = 256) -> torch.Tensor:
    """log p(x) under a per-subpixel logistic discretised to `bins` levels (x in [0, 1]).

    params: [B, 2C, H, W] = (mean, log_scale); x: [B, C, H, W]. Edge bins take the tails
    (PixelCNN++ convention), used by the official CIFAR-10 script.
    """
    mean, log_scale = params.chunk(2, dim=1)
    mean = torch.sigmoid(mean)
    inv_scale = torch.exp(-log_scale.clamp(min=-7.0))
    half = 0.5 / (bins - 1)
    upper = torch.sigmoid((x + half - mean) * inv_scale)
    lower = torch.sigmoid((x - half - mean) * inv_scale)
    upper = torch.where(x >= 1 - 1e-6, torch.ones_like(upper), upper)
    lower = torch.where(x <= 1e-6, torch.zeros_like(lower), lower)
    return _sum_per_example(torch.log((upper - lower).clamp(min=1e-12)))


def likelihood_log_prob(kind: str, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Dispatch on the likelihood name -> [B]."""
    if kind == "bernoulli":
        return bernoulli_log_prob(params, x)
    if kind == "discretized_logistic":
        return discretized_logistic_log_prob(params, x)
    raise ValueError(f"unknown likelihood {kind!r}")


def likelihood_mean(kind: str, params: torch.Tensor) -> torch.Tensor:
    """Expected pixel value in [0, 1], for figures."""
    if kind == "bernoulli":
        return torch.sigmoid(params)
    return torch.sigmoid(params.chunk(2, dim=1)[0])
