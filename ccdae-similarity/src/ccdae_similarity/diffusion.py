"""DDPM negative ELBO as the image likelihood -log p(x|h) (the paper's text-conditioned
generative model; Ho et al. 2020, Eq. 5 of that paper for the KL terms).

Indexing follows diffusers: t = 0..T-1, alpha_bar[t] = prod_{s<=t} (1 - beta_s).
For t >= 1, with posterior variance beta_tilde_t,
    L_{t-1} = KL(q(x_{t-1}|x_t,x_0) || p_theta(x_{t-1}|x_t)) = w_t ||eps - eps_theta(x_t,t,h)||^2,
    w_t = beta_t / (2 alpha_t (1 - alpha_bar_{t-1})).
The prior term L_T and the t = 0 decoder term are dropped: L_T does not depend on h, and every
term that depends on x alone cancels exactly in the symmetrised CC:DAE distance (ccdae.py).
Shapes: N items, n_t timesteps, C H W image.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def linear_alpha_bar(num_steps: int) -> torch.Tensor:
    """alpha_bar for DDPM's linear betas rescaled to `num_steps` (1e-4..0.02 at T=1000). [T]"""
    scale = 1000.0 / num_steps
    betas = torch.linspace(1e-4 * scale, min(0.02 * scale, 0.5), num_steps, dtype=torch.float64)
    return torch.cumprod(1 - betas, 0).float()


def q_sample(x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor,
             alpha_bar: torch.Tensor) -> torch.Tensor:
    """x_t = sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) eps. x0, noise [N,C,H,W], t [N]."""
    ab = alpha_bar[t].view(-1, 1, 1, 1)
    return ab.sqrt() * x0 + (1 - ab).sqrt() * noise


def elbo_weights(alpha_bar: torch.Tensor, kind: str = "elbo") -> torch.Tensor:
    """Per-timestep weight of ||eps - eps_theta||^2. [T] (entry 0 is 0: decoder term dropped)."""
    ab = alpha_bar.double()
    ab_prev = torch.cat([ab.new_ones(1), ab[:-1]])
    beta = 1 - ab / ab_prev
    w = beta / (2 * (1 - beta) * (1 - ab_prev).clamp_min(1e-12))
    if kind == "uniform":  # the "simple" loss weighting (Ho et al.), used by diffusion classifiers
        w = torch.full_like(ab, 0.5)
    elif kind != "elbo":
        raise ValueError(f"elbo weighting {kind!r}: expected 'elbo' or 'uniform'")
    w[0] = 0.0
    return w.float()


def _reference_kl_term(x0: torch.Tensor, eps: torch.Tensor, eps_hat: torch.Tensor, t: int,
                       alpha_bar: torch.Tensor) -> torch.Tensor:
    """KL(q(x_{t-1}|x_t,x0) || N(mu_theta, beta_tilde)) computed from the Gaussian means
    directly (slow, obviously correct); used to test elbo_weights. Returns a scalar."""
    ab, ab_prev = alpha_bar[t].double(), alpha_bar[t - 1].double()
    beta = 1 - ab / ab_prev
    x_t = ab.sqrt() * x0 + (1 - ab).sqrt() * eps
    mu_q = (ab_prev.sqrt() * beta / (1 - ab)) * x0 + ((1 - beta).sqrt() * (1 - ab_prev)
                                                       / (1 - ab)) * x_t
    mu_p = (x_t - beta / (1 - ab).sqrt() * eps_hat) / (1 - beta).sqrt()
    var = beta * (1 - ab_prev) / (1 - ab)
    return ((mu_q - mu_p) ** 2).sum() / (2 * var)


def stratified_timesteps(num_steps: int, n: int) -> torch.Tensor:
    """n timesteps spread evenly over 1..T-1 (deterministic strata midpoints). [n] long."""
    n = max(1, min(n, num_steps - 1))
    edges = torch.linspace(1, num_steps, n + 1, dtype=torch.float64)
    return ((edges[:-1] + edges[1:]) / 2).floor().long().clamp(1, num_steps - 1)


def negative_elbo(eps_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                  x0: torch.Tensor, timesteps: torch.Tensor, noise: torch.Tensor,
                  alpha_bar: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Monte-Carlo -ELBO (up to h-independent constants) with common random numbers.

    Args:
        eps_fn: (x_t [N,C,H,W], t [N]) -> eps_theta [N,C,H,W] (condition already bound).
        x0: [N,C,H,W] data in [-1, 1].  timesteps: [n_t].  noise: [n_t,C,H,W], shared by all N
            items so that differences across descriptions have low variance.
    Returns: [N] nats.
    """
    num_steps = len(alpha_bar)
    total = x0.new_zeros(len(x0))
    for k, t in enumerate(timesteps.tolist()):
        eps = noise[k].expand_as(x0)  # [N,C,H,W]
        tt = torch.full((len(x0),), t, dtype=torch.long, device=x0.device)
        x_t = q_sample(x0, tt, eps, alpha_bar)
        err = ((eps - eps_fn(x_t, tt)) ** 2).flatten(1).sum(1)  # [N]
        total = total + weights[t] * err
    return total * (num_steps - 1) / len(timesteps)
