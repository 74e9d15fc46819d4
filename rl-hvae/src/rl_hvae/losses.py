"""ELBO, free nats, KL warm-up, and the RL (Q-value) objective of the paper.

Equation labels (R1-R5) are defined in the README, section "The method"; the paper's own
derivation is in its Sec. 4 and the official `train_with_RL` of ruyianry/rep_hierarchy_rl.
Levels are ordered bottom (l = 1, index 0) to top (l = L, index L-1). B = batch.
"""

from __future__ import annotations

import torch

from .distributions import kl_sample, likelihood_log_prob
from .model import HierarchicalVAE, Pass


def level_kls(p: Pass) -> list[torch.Tensor]:
    """Per level, the single-sample KL log q(z_l|.) - log p(z_l|z_{>l}) elementwise [B, ...]."""
    return [kl_sample(q, prior, z) for q, prior, z in zip(p.posteriors, p.priors, p.z)]


def free_nats_kl(kl: torch.Tensor, free_nats: float) -> torch.Tensor:
    """Free nats (Kingma et al. 2016) as hvae-oodd applies them: the budget of one level is
    spread over its unit dimension and each element's KL is floored at free_nats / units.

    kl: [B, units, ...] elementwise -> [B] summed.
    """
    if free_nats > 0:
        kl = torch.clamp(kl, min=free_nats / kl.shape[1])
    return kl.flatten(1).sum(1)


def kl_beta(step: int, warmup_steps: int) -> float:
    """Deterministic KL warm-up: beta rises linearly 0 -> 1 over `warmup_steps` (0 = off)."""
    return 1.0 if warmup_steps <= 0 else min(1.0, step / warmup_steps)


def free_nats_schedule(step: int, free_nats: float, total_steps: int) -> float:
    """Free-nats cooldown of hvae-oodd: constant for the first half, linear to 0 in the second."""
    if free_nats <= 0 or total_steps <= 0:
        return 0.0
    half = total_steps // 2
    if step < half:
        return free_nats
    return max(0.0, free_nats * (1 - (step - half) / max(1, total_steps - half)))


def negative_elbo(log_px_z: torch.Tensor, kls: list[torch.Tensor], beta: float = 1.0,
                  free_nats: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """R1: -ELBO = -log p(x|z) + beta * sum_l KL_l (training loss) and the true ELBO, both [B].

    Args:
        log_px_z: [B] reconstruction log-likelihood.
        kls: per level elementwise KL [B, ...] (from `level_kls`).
    """
    kl_loss = sum(free_nats_kl(kl, free_nats) for kl in kls)
    kl_true = sum(kl.flatten(1).sum(1) for kl in kls)
    return -log_px_z + beta * kl_loss, log_px_z - kl_true


def elbo_loss(model: HierarchicalVAE, x: torch.Tensor, beta: float = 1.0,
              free_nats: float = 0.0) -> tuple[torch.Tensor, dict[str, float]]:
    """Plain HVAE objective: mean of R1 over the batch (the `hvae` and `free_bits` methods)."""
    p = model(x)
    kls = level_kls(p)
    loss, elbo = negative_elbo(likelihood_log_prob(model.arch.likelihood, p.logits, x), kls,
                               beta, free_nats)
    stats = {"elbo": elbo.mean().item(), **{f"kl_{i + 1}": k.flatten(1).sum(1).mean().item()
                                            for i, k in enumerate(kls)}}
    return loss.mean(), stats


def q_value(rewards: list[torch.Tensor], gamma: float) -> torch.Tensor:
    """R4: Q_t = sum_i gamma^i r_{t+i}, the discounted return from decision step t."""
    return sum(gamma**i * r for i, r in enumerate(rewards))


def skip_path_cost(model: HierarchicalVAE, x: torch.Tensor, p: Pass, kls: list[torch.Tensor],
                   n_prior: int, beta: float, free_nats: float) -> torch.Tensor:
    """R2/R3: the cost (negative reward) of the skip-generative path that explains x from the
    posterior latents of levels n_prior+1..L only, the lowest n_prior levels decoded from the
    mode of their conditional prior:

        c(n) = -log p(x | z_{>n}) + beta * sum_{l <= n+1} KL_l      (mean over the batch)

    The KL terms (levels 1..n+1, as the official code selects them) charge the information
    the path pays for; the reward of decision step n is r_n = -c(n).
    """
    if n_prior == 0:
        logits = p.logits  # no level skipped: the ordinary reconstruction of this pass
    else:
        z_in = [None if lvl < n_prior else z for lvl, z in enumerate(p.z)]
        logits, _, _ = model.generate(z_in, x.shape[0], use_mode=True)
    log_px = likelihood_log_prob(model.arch.likelihood, logits, x)
    loss, _ = negative_elbo(log_px, kls[: n_prior + 1], beta, free_nats)
    return loss.mean()


def rl_loss(model: HierarchicalVAE, x: torch.Tensor, t: int, gamma: float, beta: float = 1.0,
            free_nats: float = 0.0) -> tuple[torch.Tensor, dict[str, float]]:
    """R5: the policy-gradient objective of decision step t (0-based level index).

    The inference network of each level is the policy and its reparameterised sample z_l the
    action; the state is the latent of the level below. Because actions are reparameterised,
    grad E[Q_t] = E[grad Q_t] and no score-function estimator is needed (Sec. 4.3). Minimising
    the cost-to-go sum_i gamma^i c(t+i) maximises the Q-value of step t.
    """
    p = model(x)
    kls = level_kls(p)
    costs = [skip_path_cost(model, x, p, kls, n, beta, free_nats)
             for n in range(t, model.n_levels)]
    loss = q_value(costs, gamma)
    with torch.no_grad():
        _, elbo = negative_elbo(likelihood_log_prob(model.arch.likelihood, p.logits, x), kls)
    stats = {"elbo": elbo.mean().item(), "q_cost": loss.item(), "rl_t": float(t),
             **{f"kl_{i + 1}": k.flatten(1).sum(1).mean().item() for i, k in enumerate(kls)}}
    return loss, stats
